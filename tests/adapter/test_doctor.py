"""`dflash-sglang doctor`: passes on this machine; names a missing SGLang attribute and a drafter that does
not fit its target, each with one line and a non-zero exit."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dflash_sglang import harness
from dflash_sglang.bundled import tiny_pair
from helpers.cli import assert_one_line_error, run_cli

CHECKS = ["sglang version", "device", "entry point", "drafter", "sglang api", "plugin hooks", "proven"]
# SGLang itself loses `_handle_dflash` (hooked by our CPU platform guard) and renames a parameter of
# `prepare_server_args` (hooked by legacy_args), in the doctor's own process, before the checks run.
BREAK_SGLANG = """
import sys
import sglang.srt.arg_groups.speculative_hook as speculative_hook
import sglang.srt.server_args as server_args
del speculative_hook._handle_dflash
server_args.prepare_server_args = lambda args: None
from dflash_sglang.cli import main
sys.exit(main(["doctor"]))
"""


def _error_lines(stderr: str) -> list[str]:
    """Our error line among SGLang's import-time log lines (which also go to stderr)."""
    return [line for line in stderr.splitlines() if line.startswith("dflash-sglang: error: ")]


def _drafter_copy(tmp_path: Path, **changes) -> Path:
    out = tmp_path / "drafter"
    shutil.copytree(tiny_pair()[1], out)
    config = json.loads((out / "config.json").read_text())
    config.update(changes)
    (out / "config.json").write_text(json.dumps(config))
    return out


def test_doctor_passes_on_this_machine():
    target, drafter = tiny_pair()
    result = run_cli("doctor", "--model-path", str(target), "--draft-path", str(drafter), timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert [line[5:].split(":")[0] for line in lines] == CHECKS, lines
    assert all(line.startswith("ok   ") for line in lines), lines
    assert "fits" in lines[3] and "block 8" in lines[3]
    assert lines[6].startswith("ok   proven: cpu: shown: greedy output equals AR's")  # this host has no GPU
    assert not _error_lines(result.stderr) and "Traceback" not in result.stderr


def test_doctor_names_a_missing_sglang_attribute():
    env = {**os.environ, **harness.environment()}  # already under the harness: no re-exec, the patch holds
    result = subprocess.run([sys.executable, "-c", BREAK_SGLANG], capture_output=True, text=True, env=env,
                            timeout=600)
    assert result.returncode == 2, result.stdout + result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    [error] = _error_lines(result.stderr)
    assert error.startswith("dflash-sglang: error: sglang api: "
                            "sglang.srt.arg_groups.speculative_hook._handle_dflash: expected it to exist, "
                            "got AttributeError"), error
    assert error.endswith("(and 1 more)"), error  # prepare_server_args lost its `argv` parameter
    lines = result.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["ok   sglang version", "ok   device", "ok   entry point",
                                                      "skip drafter"], lines


def test_doctor_rejects_a_drafter_narrower_than_its_target(tmp_path):
    target = tiny_pair()[0]
    hidden = json.loads((target / "config.json").read_text())["hidden_size"]
    drafter = _drafter_copy(tmp_path, hidden_size=2 * hidden)
    result = run_cli("doctor", "--model-path", str(target), "--draft-path", str(drafter), timeout=300)
    assert_one_line_error(result, f"drafter: {drafter} does not fit target {target}",
                          f"hidden_size: expected the target's hidden_size {hidden}, got {2 * hidden}")


def test_doctor_rejects_weights_that_do_not_match_the_drafter_config(tmp_path):
    target, bundled = tiny_pair()
    config = json.loads((bundled / "config.json").read_text())
    stored = [config["intermediate_size"], config["hidden_size"]]  # gate_proj as the checkpoint stores it
    drafter = _drafter_copy(tmp_path, intermediate_size=config["intermediate_size"] // 2)
    result = run_cli("doctor", "--model-path", str(target), "--draft-path", str(drafter), timeout=300)
    assert_one_line_error(result, "drafter: ", "expected shape", f"got {stored}")


@pytest.mark.parametrize("flag", ["--model-path", "--draft-path"])
def test_doctor_wants_both_paths_or_none(flag):
    result = run_cli("doctor", flag, str(tiny_pair()[0]), timeout=300)
    assert_one_line_error(result, "--draft-path and --model-path go together")
