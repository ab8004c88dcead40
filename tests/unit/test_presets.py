"""Presets (configs/*.json) and `dflash-sglang serve --preset NAME`: every preset parses, agrees with the
seeds' launch commands, and `--dry-run` prints the exact command."""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

import pytest

from dflash_sglang import harness, presets
from dflash_sglang.bundled import tiny_pair
from helpers import seed_commands
from helpers.cli import assert_one_line_error, run_cli
from helpers.seed_commands import flag_value

REPO = Path(__file__).resolve().parents[2]
# The models of the seeds' tables (002) and cards (000, 001, 003, 004), plus our tiny pair.
SEED_MODELS = {"Qwen3-Coder-Next", "Qwen3-Coder-30B-A3B", "Qwen3.5-4B", "Qwen3.5-9B", "Qwen3.5-27B",
               "Qwen3.5-35B-A3B", "Qwen3.6-27B", "gpt-oss-20b", "gpt-oss-120b", "Qwen3-4B", "Qwen3-8B",
               "Llama-3.1-8B-Instruct", "Kimi-K2.5", "tiny pair"}
CPU_HOST = not harness.has_nvidia_driver()
CPU_TAIL = ["--device", "cpu", "--disable-cuda-graph", "--max-total-tokens", "8192", "--sleep-on-idle"]


def test_every_preset_file_parses():
    files = sorted(p.stem for p in (REPO / "configs").glob("*.json"))
    assert presets.names() == files and len(files) == len(SEED_MODELS)
    loaded = [presets.load(name) for name in files]
    assert {p.model for p in loaded} == SEED_MODELS
    for preset in loaded:
        assert preset.drafter.startswith(("z-lab/", presets.BUNDLED_PREFIX)), preset


def test_the_package_reads_the_repo_configs_folder():
    assert Path(str(presets.preset_dir())).resolve() == (REPO / "configs").resolve()


@pytest.mark.parametrize("command", seed_commands.load(), ids=lambda c: c.id)
def test_preset_agrees_with_the_seed_command(command):
    drafter = flag_value(command.argv, "--speculative-draft-model-path")
    [preset] = [presets.load(n) for n in presets.names() if presets.load(n).drafter == drafter]
    assert preset.target.startswith(flag_value(command.argv, "--model-path"))  # 001's prose adds -Instruct
    expected = {
        "block_size": flag_value(command.argv, "--speculative-num-draft-tokens"),
        "attention_backend": flag_value(command.argv, "--attention-backend"),
        "draft_attention_backend": flag_value(command.argv, "--speculative-draft-attention-backend"),
        "mamba_strategy": flag_value(command.argv, "--mamba-scheduler-strategy"),
        "tp_size": flag_value(command.argv, "--tp-size"),
        "mem_fraction": flag_value(command.argv, "--mem-fraction-static"),
        "dtype": flag_value(command.argv, "--dtype"),
    }
    for name, value in expected.items():
        if value is not None or name != "block_size":  # 001 states its block size in prose only
            assert (None if getattr(preset, name) is None else str(getattr(preset, name))) == value, name
    assert preset.trust_remote_code is ("--trust-remote-code" in command.argv)
    assert dict(preset.env) == command.env
    assert all(command.seed in dict(preset.source)[name] for name in ("drafter", "tp_size"))


def test_a_value_without_its_source_is_refused():
    raw = json.loads((REPO / "configs" / "qwen3.5-9b.json").read_text())
    del raw["source"]["mamba_strategy"]
    with pytest.raises(ValueError, match=r"source: expected a note for every set field, got none for \['mamba_strategy'\]"):
        presets.from_dict("qwen3.5-9b", raw)


@pytest.mark.parametrize("field, value, message", [
    ("block_size", 1, "block_size: expected an int >= 2, got 1"),
    ("mamba_strategy", "fast", "mamba_strategy: expected one of"),
    ("mem_fraction", 1.5, r"mem_fraction: expected a float in \(0, 1\), got 1.5"),
    ("max_tokens", 5, r"got unknown \['max_tokens'\]"),
])
def test_a_bad_field_is_refused_by_name(field, value, message):
    raw = json.loads((REPO / "configs" / "qwen3.5-9b.json").read_text())
    raw[field] = value
    with pytest.raises(ValueError, match=message):
        presets.from_dict("qwen3.5-9b", raw)


def _dry_run(*args: str) -> tuple[dict[str, str], list[str]]:
    result = run_cli("serve", "--dry-run", *args)
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.strip().splitlines()
    tokens = shlex.split(line)
    count = next(i for i, t in enumerate(tokens) if not re.match(r"[A-Z_][A-Z0-9_]*=", t))
    env, argv = dict(t.split("=", 1) for t in tokens[:count]), tokens[count:]
    assert Path(argv[0]).resolve() == Path(sys.executable).resolve()
    if CPU_HOST:
        assert env["SGLANG_USE_CPU_ENGINE"] == "1"
        assert Path(env["LD_LIBRARY_PATH"].split(":")[0]).resolve() == harness.default_dir().resolve()
    return env, argv[1:]


def test_dry_run_prints_the_tiny_pair_command():
    target, drafter = tiny_pair()
    _, argv = _dry_run("--preset", "tiny")
    assert argv == ["-m", "sglang.launch_server", "--model-path", str(target), "--speculative-draft-model-path",
                    str(drafter), "--speculative-algorithm", "DFLASH", "--speculative-num-draft-tokens", "8",
                    "--attention-backend", "torch_native", "--speculative-draft-attention-backend", "torch_native",
                    "--tp-size", "1", "--mem-fraction-static", "0.2", "--dtype", "float32", *CPU_TAIL]


def test_dry_run_prints_the_seed_command_with_modern_flags():
    env, argv = _dry_run("--preset", "qwen3-coder-next")
    backend, memory = ("torch_native", "0.2") if CPU_HOST else ("fa3", "0.75")  # CPU flags replace GPU values
    assert argv == ["-m", "sglang.launch_server", "--model-path", "Qwen/Qwen3-Coder-Next",
                    "--speculative-draft-model-path", "z-lab/Qwen3-Coder-Next-DFlash",
                    "--speculative-algorithm", "DFLASH", "--speculative-num-draft-tokens", "16",
                    "--attention-backend", backend, "--mamba-radix-cache-strategy", "extra_buffer",
                    "--tp-size", "1", "--mem-fraction-static", memory, "--trust-remote-code",
                    *(CPU_TAIL if CPU_HOST else [])]


def test_dry_run_takes_local_paths_preset_env_and_extra_args():
    target, drafter = tiny_pair()
    env, argv = _dry_run("--preset", "qwen3.5-35b-a3b", "--model-path", str(target), "--draft-path", str(drafter),
                         "--", "--port", "31000", "--log-level=debug")
    assert flag_value(argv, "--model-path") == str(target)
    assert flag_value(argv, "--speculative-draft-model-path") == str(drafter)
    assert argv[-3:] == ["--port", "31000", "--log-level=debug"]
    assert env["SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN"] == "1"
    if CPU_HOST:  # the card's fa4 draft backend cannot run here
        assert flag_value(argv, "--speculative-draft-attention-backend") == "torch_native"


def test_unknown_preset_is_one_line_listing_the_choices():
    result = run_cli("serve", "--preset", "qwen9", "--dry-run")
    assert_one_line_error(result, "unknown preset 'qwen9': expected one of", *presets.names())


def test_missing_local_path_is_one_line_error(tmp_path):
    missing = tmp_path / "nope"
    result = run_cli("serve", "--preset", "qwen3-8b", "--model-path", str(missing), "--dry-run")
    assert_one_line_error(result, f"--model-path: expected an existing local directory, got '{missing}'",
                          "omit it to use the preset's Qwen/Qwen3-8B")
    result = run_cli("serve", "--preset", "tiny", "--draft-path", str(missing), "--dry-run")
    assert_one_line_error(result, "--draft-path: expected an existing local directory")


def test_preset_without_a_target_id_asks_for_a_path():
    result = run_cli("serve", "--preset", "kimi-k2.5", "--dry-run")
    assert_one_line_error(result, "the seeds give no hub id for the target of Kimi-K2.5; pass --model-path DIR")


@pytest.mark.parametrize("command", seed_commands.load(), ids=lambda c: c.id)
def test_a_card_with_the_window_tip_gives_its_preset_a_draft_window(command):
    """Issue 10: the tip's window is the preset's `draft_window`, documented, and only `--long-context` adds it."""
    drafter = flag_value(command.argv, "--speculative-draft-model-path")
    [preset] = [presets.load(n) for n in presets.names() if presets.load(n).drafter == drafter]
    if not command.tip_flags:
        assert preset.draft_window is None
        return
    assert preset.draft_window is not None and preset.draft_window >= (preset.block_size or 16)
    assert command.seed in dict(preset.source)["draft_window"]
    _, argv = _dry_run("--preset", preset.name)
    assert flag_value(argv, "--speculative-draft-window-size") is None  # the card's command has no window
    _, argv = _dry_run("--preset", preset.name, "--long-context")
    assert flag_value(argv, "--speculative-draft-window-size") == str(preset.draft_window)


def test_long_context_without_a_window_tip_is_one_line():
    result = run_cli("serve", "--preset", "tiny", "--long-context", "--dry-run")
    assert_one_line_error(result, "--long-context: expected a preset whose model card gives the draft-window tip",
                          "got tiny", "--speculative-draft-window-size N")
