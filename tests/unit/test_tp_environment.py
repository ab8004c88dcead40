"""What `--tp-size N` needs on a CPU host (harness/tensor_parallel.py), and that `env`, `serve` and the
e2e launcher set it only for N > 1. The e2e proof that it is enough is tests/e2e/test_dflash_tensor_parallel.py."""

from __future__ import annotations

import os

import pytest

from dflash_sglang import preset_launch, presets
from dflash_sglang.errors import UserError
from dflash_sglang.harness.driver import has_nvidia_driver
from dflash_sglang.harness.tensor_parallel import (
    BIND_ENV, NCCL_ENV, UNLOADABLE_NCCL, cpu_binding, tp_environment, tp_size_of,
)
from dflash_sglang.harness.threads import THREADS_ENV, threads_environment, threads_per_rank
from helpers.cli import run_cli

needs_cpu_host = pytest.mark.skipif(has_nvidia_driver(), reason="the harness is inactive on a GPU host")


@pytest.mark.parametrize("tp_size, cpus, expected", [
    pytest.param(2, [0, 1], "0|1", id="this-host"),
    pytest.param(2, [0, 1, 2, 3, 4], "0-1|2-3", id="odd-core-left-over"),
    pytest.param(2, [0, 2, 4, 6], "0,2|4,6", id="not-a-range"),
    pytest.param(4, [0, 1], "0|1|0|1", id="more-ranks-than-cores"),
])
def test_every_rank_gets_its_own_share_of_the_cores(tp_size, cpus, expected):
    assert cpu_binding(tp_size, cpus) == expected


def test_nothing_at_tp_1_and_the_callers_values_win():
    assert tp_environment(1, {}) == {}
    env = tp_environment(2, {BIND_ENV: "0|0"})
    assert set(env) == {NCCL_ENV}
    env = tp_environment(2, {})
    assert env[NCCL_ENV] == UNLOADABLE_NCCL
    assert len(env[BIND_ENV].split("|")) == 2


@pytest.mark.parametrize("cores, tp_size, expected", [
    pytest.param(2, 1, 1, id="this-host"),
    pytest.param(2, 2, 1, id="this-host-tp2"),
    pytest.param(1, 1, 1, id="one-core"),
    pytest.param(64, 1, 63, id="big-host"),
    pytest.param(9, 2, 4, id="big-host-tp2"),
])
def test_each_rank_gets_the_cores_left_after_one_is_kept_free(cores, tp_size, expected):
    assert threads_per_rank(cores, tp_size) == expected


def test_a_thread_count_the_caller_set_wins():
    assert threads_environment(1, {THREADS_ENV: "7"}) == {}
    assert threads_environment(1, {}) == {THREADS_ENV: str(threads_per_rank(len(os.sched_getaffinity(0)), 1))}


@pytest.mark.parametrize("args, expected", [
    ([], 1), (["--tp-size", "2"], 2), (["--tp-size=4"], 4), (["--tensor-parallel-size", "2"], 2),
    (["--tp-size", "2", "--tp-size", "1"], 1),  # SGLang's parser: the last one wins
])
def test_tp_size_is_read_from_the_command_line(args, expected):
    assert tp_size_of(args) == expected


def test_a_tp_size_that_is_not_a_number_is_a_user_error():
    with pytest.raises(UserError, match="--tp-size"):
        tp_size_of(["--tp-size", "two"])


def test_the_unloadable_nccl_name_does_not_load():
    import ctypes

    with pytest.raises(OSError):
        ctypes.CDLL(UNLOADABLE_NCCL)


@needs_cpu_host
def test_env_exports_the_tp_variables_only_when_asked(tmp_path, monkeypatch):
    for name in (BIND_ENV, NCCL_ENV, THREADS_ENV):
        monkeypatch.delenv(name, raising=False)
    plain = run_cli("env", "--dir", str(tmp_path))
    tp2 = run_cli("env", "--dir", str(tmp_path), "--tp-size", "2")
    assert plain.returncode == tp2.returncode == 0, plain.stderr + tp2.stderr
    assert BIND_ENV not in plain.stdout and NCCL_ENV not in plain.stdout
    assert any(line.startswith(f"export {THREADS_ENV}=") for line in plain.stdout.splitlines())
    assert f"export {NCCL_ENV}={UNLOADABLE_NCCL}" in tp2.stdout.splitlines()
    assert any(line.startswith(f"export {BIND_ENV}=") for line in tp2.stdout.splitlines())


@needs_cpu_host
def test_serve_sets_them_for_a_tp_size_after_the_double_dash(monkeypatch):
    for name in (BIND_ENV, NCCL_ENV, THREADS_ENV):
        monkeypatch.delenv(name, raising=False)
    preset = presets.load("tiny")
    plain = dict(preset_launch.launch_command(preset).env)
    tp2 = dict(preset_launch.launch_command(preset, extra=["--tp-size", "2"]).env)
    assert NCCL_ENV not in plain and BIND_ENV not in plain
    assert tp2[NCCL_ENV] == UNLOADABLE_NCCL and len(tp2[BIND_ENV].split("|")) == 2
