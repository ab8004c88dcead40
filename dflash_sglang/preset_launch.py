"""`dflash-sglang serve --preset NAME`: the exact `python -m sglang.launch_server` command of a preset,
printed (`--dry-run`) or run in place of this process.

On a host without an NVIDIA driver the command gets the CPU harness environment and the CPU flags, which
replace the preset's GPU values (attention backends, memory fraction) rather than repeat them. Extra
arguments after `--` go last, so SGLang's parser lets them win.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from dflash_sglang import harness, serving
from dflash_sglang.bundled import tiny_pair
from dflash_sglang.errors import UserError
from dflash_sglang.harness.tensor_parallel import tp_size_of
from dflash_sglang.presets import BUNDLED_PREFIX, Preset

WINDOW_FLAG = "--speculative-draft-window-size"
Flag = tuple[str, "str | None"]  # ("--tp-size", "1"); ("--trust-remote-code", None) for a switch
CPU_DRAFT_BACKEND = "torch_native"
# Preset field -> SGLang 0.5.23 flag, in the order they are printed.
FIELD_FLAGS = (
    ("block_size", "--speculative-num-draft-tokens"),
    ("attention_backend", "--attention-backend"),
    ("draft_attention_backend", "--speculative-draft-attention-backend"),
    ("mamba_strategy", "--mamba-radix-cache-strategy"),
    ("tp_size", "--tp-size"),
    ("mem_fraction", "--mem-fraction-static"),
    ("dtype", "--dtype"),
    ("device", "--device"),
)


@dataclass(frozen=True)
class LaunchCommand:
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]  # added to the caller's environment

    def shell(self) -> str:
        """One line a POSIX shell runs as is."""
        assignments = [f"{name}={shlex.quote(value)}" for name, value in self.env]
        return " ".join([*assignments, shlex.join(self.argv)])


def flag_pairs(args: Sequence[str]) -> list[Flag]:
    """Flat CLI tokens -> (flag, value) pairs; a flag followed by another flag is a switch."""
    pairs: list[Flag] = []
    for token in args:
        if token.startswith("--"):
            flag, eq, value = token.partition("=")
            pairs.append((flag, value if eq else None))
        else:
            assert pairs and pairs[-1][1] is None, f"value {token!r} follows no flag in {list(args)}"
            pairs[-1] = (pairs[-1][0], token)
    return pairs


def with_flags(pairs: list[Flag], overrides: list[Flag]) -> list[Flag]:
    """`pairs` with each override replacing the flag's value in place, or appended when absent."""
    wanted = dict(overrides)
    out = [(flag, wanted.pop(flag)) if flag in wanted else (flag, value) for flag, value in pairs]
    return out + list(wanted.items())


def model_dir(flag: str, given: Path | None, preset: Preset, role: str) -> str:
    """The --model-path / --speculative-draft-model-path value: a local DIR, or the preset's id."""
    default = getattr(preset, role)
    if given is not None:
        if not Path(given).is_dir():
            instead = f"omit it to use the preset's {default}" if default else "pass an existing model directory"
            raise UserError(f"{flag}: expected an existing local directory, got {str(given)!r}; {instead}")
        return str(given)
    if default is None:
        raise UserError(f"preset {preset.name}: the seeds give no hub id for the {role} of {preset.model}; "
                        f"pass {flag} DIR")
    if default.startswith(BUNDLED_PREFIX):
        target, drafter = tiny_pair()
        return str({"target": target, "drafter": drafter}[default.removeprefix(BUNDLED_PREFIX)])
    return default


def preset_flags(preset: Preset, long_context: bool = False) -> list[Flag]:
    pairs: list[Flag] = [("--speculative-algorithm", "DFLASH")]
    pairs += [(flag, str(getattr(preset, name))) for name, flag in FIELD_FLAGS if getattr(preset, name) is not None]
    if long_context:
        pairs.append((WINDOW_FLAG, str(long_context_window(preset))))
    if preset.trust_remote_code:
        pairs.append(("--trust-remote-code", None))
    return pairs + flag_pairs(preset.extra_args)


def long_context_window(preset: Preset) -> int:
    """The preset's draft window, for `--long-context`: the card's tip, off by default as on the card."""
    if preset.draft_window is None:
        raise UserError(f"--long-context: expected a preset whose model card gives the draft-window tip, got "
                        f"{preset.name}, which has no draft_window; pass -- {WINDOW_FLAG} N instead")
    return preset.draft_window


def cpu_flags(preset: Preset) -> list[Flag]:
    """The CPU flags ([] on a GPU host); the draft backend too when the preset names a GPU one."""
    pairs = flag_pairs(serving.cpu_args())
    if pairs and preset.draft_attention_backend is not None:
        pairs.append(("--speculative-draft-attention-backend", CPU_DRAFT_BACKEND))
    return pairs


def launch_command(preset: Preset, model_path: Path | None = None, draft_path: Path | None = None,
                   extra: Sequence[str] = (), long_context: bool = False) -> LaunchCommand:
    pairs: list[Flag] = [
        ("--model-path", model_dir("--model-path", model_path, preset, "target")),
        ("--speculative-draft-model-path", model_dir("--draft-path", draft_path, preset, "drafter")),
    ]
    pairs = with_flags(pairs + preset_flags(preset, long_context), cpu_flags(preset))
    tokens = [token for flag, value in pairs for token in ((flag,) if value is None else (flag, value))]
    env = dict(preset.env)
    env.update(harness.environment(tp_size=tp_size_of([*tokens, *extra])))  # {} on a GPU host
    return LaunchCommand(argv=(sys.executable, "-m", "sglang.launch_server", *tokens, *extra),
                         env=tuple(env.items()))


def run(command: LaunchCommand) -> NoReturn:
    """Become the server: signals reach it directly and its exit code is ours."""
    print(f"dflash-sglang: exec {command.shell()}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os.execve(command.argv[0], list(command.argv), {**os.environ, **dict(command.env)})
