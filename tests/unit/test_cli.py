"""`dflash-sglang env`, `tiny-pair` and `harness build`, run as console commands."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from helpers.cli import assert_one_line_error, run_cli
from dflash_sglang.harness.driver import has_nvidia_driver

needs_cpu_host = pytest.mark.skipif(has_nvidia_driver(), reason="the harness is inactive on a GPU host")


@needs_cpu_host
def test_env_prints_exports_that_make_the_stub_loadable(tmp_path):
    # the caller's thread count is kept (make test sets one); without it, env picks one (harness/threads.py)
    unset = run_cli("env", "--dir", str(tmp_path), unset=("OMP_NUM_THREADS",))
    assert unset.stdout.strip().splitlines()[2].startswith("export OMP_NUM_THREADS="), unset.stdout
    result = run_cli("env", "--dir", str(tmp_path), env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "export SGLANG_USE_CPU_ENGINE=1"
    assert lines[1].startswith("export LD_LIBRARY_PATH=") and str(tmp_path) in lines[1]
    assert len(lines) == 2
    # The lines must work when evaluated by a shell, keeping the caller's LD_LIBRARY_PATH.
    script = result.stdout + 'echo "$SGLANG_USE_CPU_ENGINE|$LD_LIBRARY_PATH"'
    shell = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                           env={**os.environ, "LD_LIBRARY_PATH": "/opt/keep"})
    flag, ld_path = shell.stdout.strip().split("|")
    assert flag == "1"
    assert ld_path.split(":") == [str(tmp_path), "/opt/keep"]
    # The stub is a real shared library that the dynamic loader accepts under its soname.
    loaded = subprocess.run(
        ["python3", "-c", "import ctypes; lib = ctypes.CDLL('libcuda.so.1'); print(lib.cuDriverGetVersion())"],
        capture_output=True, text=True, env={**os.environ, "LD_LIBRARY_PATH": str(tmp_path)},
    )
    assert loaded.stdout.strip() == "100", loaded.stderr  # CUDA_ERROR_NO_DEVICE


@needs_cpu_host
def test_stub_defines_every_driver_symbol_the_wheels_import(tmp_path):
    from dflash_sglang.harness.stub import package_shared_objects, undefined_driver_symbols

    assert run_cli("harness", "build", "--dir", str(tmp_path)).returncode == 0
    wanted = set(undefined_driver_symbols(package_shared_objects()))
    nm = subprocess.run(["nm", "-D", "--defined-only", str(tmp_path / "libcuda.so.1")],
                        capture_output=True, text=True, check=True).stdout
    defined = {line.split()[-1] for line in nm.splitlines() if line.strip()}
    assert wanted and wanted <= defined, wanted - defined


def test_tiny_pair_prints_two_dirs():
    result = run_cli("tiny-pair")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert [line.split("=", 1)[0] for line in lines] == ["TARGET", "DRAFTER"]
    target, drafter = (Path(line.split("=", 1)[1]) for line in lines)
    assert json.loads((target / "config.json").read_text())["architectures"] == ["Qwen3ForCausalLM"]
    assert json.loads((drafter / "config.json").read_text())["architectures"] == ["DFlashDraftModel"]


@pytest.mark.parametrize("kind, architecture", [("dense", "Qwen3ForCausalLM"), ("hybrid", "Qwen3NextForCausalLM")])
def test_tiny_pair_kind_picks_the_pair(kind, architecture):
    result = run_cli("tiny-pair", "--kind", kind)
    assert result.returncode == 0, result.stderr
    found = dict(line.split("=", 1) for line in result.stdout.strip().splitlines())
    assert json.loads((Path(found["TARGET"]) / "config.json").read_text())["architectures"] == [architecture]
    drafter = json.loads((Path(found["DRAFTER"]) / "config.json").read_text())
    assert drafter["architectures"] == ["DFlashDraftModel"]
    assert drafter["dflash_config"]["target_layer_ids"][-1] < drafter["num_target_layers"] - 1


def test_tiny_pair_unknown_kind_is_an_argparse_error():
    result = run_cli("tiny-pair", "--kind", "moe")
    assert result.returncode == 2 and "invalid choice" in result.stderr


@needs_cpu_host
def test_missing_harness_dir_is_one_line_error(tmp_path):
    missing = tmp_path / "nope"
    assert_one_line_error(run_cli("harness", "build", "--dir", str(missing)), str(missing), "does not exist")
    assert_one_line_error(run_cli("env", "--dir", str(missing)), "does not exist")


@needs_cpu_host
def test_unwritable_harness_dir_is_one_line_error(tmp_path):
    if os.geteuid() == 0:
        unwritable = Path("/sys")  # sysfs refuses new files even to root
    else:
        unwritable = tmp_path / "ro"
        unwritable.mkdir(mode=0o500)
    assert_one_line_error(run_cli("harness", "build", "--dir", str(unwritable)), "is not writable")


@needs_cpu_host
def test_missing_c_compiler_is_one_line_error(tmp_path):
    result = run_cli("harness", "build", "--dir", str(tmp_path), env={"CC": "no-such-cc-anywhere"})
    assert_one_line_error(result, "no C compiler found", "no-such-cc-anywhere")


def test_unsupported_sglang_version_is_one_line_error(fake_sglang_version):
    result = run_cli("env", env=fake_sglang_version("0.4.0"))
    assert_one_line_error(result, "SGLang 0.4.0 is installed", "0.5.23")
