"""The seeds' launch commands (tests/data/seed_commands.txt), parsed, and adapted to the tiny pair on CPU."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from dflash_sglang import serving

DATA = Path(__file__).resolve().parents[1] / "data" / "seed_commands.txt"
LAUNCHER = ["python", "-m", "sglang.launch_server"]
_BORDER = re.compile(r"\| ?(.*?) ?\|?")  # a line of a card stored inside a markdown table
_EXPORT = re.compile(r"(#\s*)?export (\w+)=(\S*)")
_TIP_FLAG = re.compile(r"(--[\w-]+) WINDOW_SIZE")


@dataclass
class SeedCommand:
    seed: str  # the seed file the command comes from
    argv: list[str] = field(default_factory=list)  # after `python -m sglang.launch_server`
    env: dict[str, str] = field(default_factory=dict)  # `export` lines before it
    optional_env: dict[str, str] = field(default_factory=dict)  # commented `# export` lines: the card's options
    tip_flags: list[str] = field(default_factory=list)  # flags the card's tip adds, each taking WINDOW_SIZE

    @property
    def id(self) -> str:
        return self.seed.split("_")[0]


def _command_lines(lines: list[str]) -> list[str]:
    """Card lines without table borders, continuation lines joined."""
    joined, pending = [], ""
    for line in lines:
        match = _BORDER.fullmatch(line.strip())
        line = (match.group(1) if match and line.strip().startswith("|") else line).strip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    return [line for line in joined if line]


def _parse_command(seed: str, lines: list[str]) -> SeedCommand:
    command = SeedCommand(seed)
    for line in _command_lines(lines):
        export = _EXPORT.fullmatch(line)
        if export:
            (command.optional_env if export.group(1) else command.env)[export.group(2)] = export.group(3)
        elif not line.startswith("#"):
            tokens = shlex.split(line)
            assert tokens[:3] == LAUNCHER, tokens
            command.argv = tokens[3:]
    assert command.argv, f"no launch command in the block of {seed}"
    return command


def load(path: Path = DATA) -> list[SeedCommand]:
    blocks: list[tuple[str, str, list[str]]] = []
    for line in path.read_text().splitlines():
        if line.startswith("## "):
            seed, kind = line[3:].split()
            blocks.append((seed, kind, []))
        elif blocks:
            blocks[-1][2].append(line)
    commands = {seed: _parse_command(seed, lines) for seed, kind, lines in blocks if kind == "command"}
    for seed, kind, lines in blocks:
        if kind == "tip":
            commands[seed].tip_flags = _TIP_FLAG.findall(" ".join(lines))
    return list(commands.values())


def flag_value(argv: list[str], flag: str) -> str | None:
    """The last value given to `flag` (argparse's rule), None when absent."""
    value = None
    for i, token in enumerate(argv):
        if token == flag:
            value = argv[i + 1]
        elif token.startswith(flag + "="):
            value = token.split("=", 1)[1]
    return value


def without_flag(argv: list[str], flag: str) -> list[str]:
    """argv without `flag` and its value."""
    out, skip = [], False
    for token in argv:
        if skip:
            skip = False
        elif token == flag:
            skip = True
        elif not token.startswith(flag + "="):
            out.append(token)
    return out


def for_tiny_pair(argv: list[str], target: Path, drafter: Path) -> list[str]:
    """The command with the tiny pair's paths and the CPU flags appended (SGLang's parser keeps the last
    value of a flag). A GPU draft backend becomes torch_native, the only one that runs here."""
    swap = {"--model-path": str(target), "--speculative-draft-model-path": str(drafter)}
    out = [swap.get(argv[i - 1], token) if i else token for i, token in enumerate(argv)]
    out += serving.cpu_args()
    if flag_value(argv, "--speculative-draft-attention-backend") is not None:
        out += ["--speculative-draft-attention-backend", "torch_native"]
    return out
