"""The drafter's graph-capture path without a GPU: the capture decision (SGLang builtin's rules), what
is handed to SGLang's draft worker, the log line, and the start-up hint naming DFLASH_SGLANG_IMPL=builtin."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from dflash_sglang.sglang_adapter import draft_graphs
from dflash_sglang.sglang_adapter.draft_graphs import GraphSettings, decide, init_draft_cuda_graphs
from dflash_sglang.sglang_adapter.startup_hint import WAY_BACK, startup_stage

GPU = GraphSettings(device="cuda", decode_graphs=True, dp_attention=False, platform_captures=True, free_memory_gb=40.0)


def test_a_plain_gpu_launch_captures():
    assert decide(GPU) == draft_graphs.DraftGraphDecision(True, "")


@pytest.mark.parametrize(("change", "reason"), [
    pytest.param({"decode_graphs": False}, "--disable-cuda-graph", id="graphs-disabled"),
    pytest.param({"device": "cpu"}, "device cpu", id="cpu"),
    pytest.param({"platform_captures": False}, "out-of-tree platform", id="oot-platform"),
    pytest.param({"dp_attention": True}, "DP attention", id="dp-attention"),
    pytest.param({"free_memory_gb": 0.5}, "only 0.50 GB", id="low-memory"),
])
def test_each_rule_sends_the_drafter_eager_and_says_why(change, reason):
    decision = decide(dataclasses.replace(GPU, **change))
    assert not decision.capture and reason in decision.reason


def test_the_first_rule_wins_and_unmeasured_memory_does_not_block():
    assert "--disable-cuda-graph" in decide(dataclasses.replace(GPU, decode_graphs=False, device="cpu")).reason
    assert decide(dataclasses.replace(GPU, free_memory_gb=None)).capture
    assert decide(dataclasses.replace(GPU, device="cuda:1")).capture


class _DraftWorker:
    def __init__(self, runner) -> None:
        self.runner, self.calls = runner, []

    def init_cuda_graphs(self, capture_decode_cuda_graph: bool = True) -> None:
        self.calls.append(capture_decode_cuda_graph)
        if capture_decode_cuda_graph:
            self.runner.decode_cuda_graph_runner = type("Runner", (), {"capture_bs": [1, 2, 4, 8]})()


class _Runner:
    decode_cuda_graph_runner = None


def _log_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("dflash")]


@pytest.fixture
def caplog_ours(caplog, monkeypatch):
    from dflash_sglang.log import get_logger

    monkeypatch.setattr(get_logger(), "propagate", True)  # ours does not propagate; caplog listens at the root
    caplog.set_level(logging.INFO)
    return caplog


@pytest.mark.parametrize(("settings", "capture", "line"), [
    pytest.param(GPU, True, ": CUDA graphs captured for batch sizes [1, 2, 4, 8]", id="gpu"),
    pytest.param(dataclasses.replace(GPU, device="cpu", decode_graphs=False), False,
                 "runs eager: decode CUDA graphs are disabled", id="cpu"),
])
def test_sglang_is_told_whether_to_capture_and_one_line_says_what_happened(settings, capture, line, caplog_ours):
    runner = _Runner()
    worker = _DraftWorker(runner)
    assert init_draft_cuda_graphs(worker, runner, settings).capture is capture
    assert worker.calls == [capture]  # the draft worker's decode graphs: captured in TARGET_VERIFY mode, or not
    (logged,) = [m for m in _log_lines(caplog_ours) if "drafter block pass" in m]
    assert line in logged


class _Worker:
    device = "cuda:0"

    @startup_stage("drafter CUDA-graph capture")
    def init_cuda_graphs(self, fail: bool) -> str:
        if fail:
            raise RuntimeError("CUDA error: operation not permitted when stream is capturing")
        return "captured"


def test_a_failed_start_up_stage_names_the_way_back_and_keeps_the_error(caplog_ours):
    assert _Worker().init_cuda_graphs(False) == "captured"
    with pytest.raises(RuntimeError, match="stream is capturing") as info:
        _Worker().init_cuda_graphs(True)
    (note,) = info.value.__notes__
    assert WAY_BACK == "DFLASH_SGLANG_IMPL=builtin" and WAY_BACK in note
    assert "drafter CUDA-graph capture on cuda:0" in note
    assert any(WAY_BACK in line for line in _log_lines(caplog_ours))


def test_during_construction_the_device_comes_from_the_target_worker():
    class _Target:
        device = "cuda"

    class _Half:
        @startup_stage("construction")
        def __init__(self, server_args, gpu_id, nccl_port, target_worker) -> None:
            raise ValueError("draft model failed to load")

    with pytest.raises(ValueError) as info:
        _Half(None, 0, 0, target_worker=_Target())
    assert "(construction on cuda)" in info.value.__notes__[0]


def test_every_start_up_stage_of_our_worker_carries_the_hint():
    from dflash_sglang.sglang_adapter.worker import DFlashWorker

    for stage in (DFlashWorker.__init__, DFlashWorker.init_attention_backends, DFlashWorker.init_cuda_graphs):
        assert stage.__wrapped__.__qualname__.startswith("DFlashWorker."), stage  # functools.wraps of startup_stage
