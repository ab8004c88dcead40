"""The drafter's block pass under SGLang's CUDA graphs, as SGLang's builtin DFLASH captures its own.

Mechanism (SGLang 0.5.23, read in `speculative/dflash_worker_v2.py::init_cuda_graphs` and
`model_executor/runner/decode_cuda_graph_runner.py`): the draft `TpModelWorker`'s decode graph runner
captures the draft model in TARGET_VERIFY mode, `blk` tokens per request, once per batch size of
`--cuda-graph-max-bs`'s list, with `input_embeds` as a graph input of DFlash-family draft runners.
At run time `ModelRunner.forward` replays the graph whenever the batch fits (else runs eager) and
says which in `ModelRunnerOutput.can_run_graph`; `SGLangStepModels.draft` already goes through it.
The target's verify graphs are SGLang's own (its decode runner, TARGET_VERIFY), untouched here.

What is ours: the decision whether to capture (the builtin's policy, as a pure function), the call,
and one log line saying what was captured or why the drafter runs eager. The greedy head stays
outside the graph: sampled requests need the drafter's logits, not only its argmax.
"""

from __future__ import annotations

from dataclasses import dataclass

from dflash_sglang.log import get_logger

MIN_FREE_GB = 1.0  # the builtin's floor: less than this after the target, and capture could OOM


@dataclass(frozen=True)
class GraphSettings:
    """What SGLang's configuration says, read once (see `read_settings`)."""

    device: str  # "cuda", "cpu", ...
    decode_graphs: bool  # False with --disable-cuda-graph
    dp_attention: bool
    platform_captures: bool  # False for an out-of-tree platform without graph capture
    free_memory_gb: float | None  # after the target is built; None where not measured (not CUDA)


@dataclass(frozen=True)
class DraftGraphDecision:
    capture: bool
    reason: str  # why the drafter runs eager; "" when captured


def decide(settings: GraphSettings) -> DraftGraphDecision:
    """The builtin's rules, first match wins; each eager reason names the setting behind it."""
    if not settings.decode_graphs:
        return DraftGraphDecision(False, "decode CUDA graphs are disabled "
                                         "(--disable-cuda-graph or --cuda-graph-backend-decode disabled)")
    if not settings.device.startswith("cuda"):
        return DraftGraphDecision(False, f"device {settings.device}: SGLang captures TARGET_VERIFY graphs on CUDA only")
    if not settings.platform_captures:
        return DraftGraphDecision(False, "this out-of-tree platform does not support graph capture")
    if settings.dp_attention:
        return DraftGraphDecision(False, "DP attention is enabled (the draft runs eager, as in SGLang's builtin)")
    if settings.free_memory_gb is not None and settings.free_memory_gb < MIN_FREE_GB:
        return DraftGraphDecision(False, f"only {settings.free_memory_gb:.2f} GB GPU memory is free after the "
                                         f"target (need {MIN_FREE_GB:.0f} GB)")
    return DraftGraphDecision(True, "")


def read_settings(device: str, gpu_id: int) -> GraphSettings:
    from sglang.srt.model_executor.cuda_graph_config import Backend
    from sglang.srt.platforms import current_platform
    from sglang.srt.runtime_context import get_exec, get_parallel
    from sglang.srt.utils.common import get_available_gpu_memory

    decode_graphs = get_exec().graph.cuda_graph_config.decode.backend != Backend.DISABLED
    platform_captures = not current_platform.is_out_of_tree() or bool(current_platform.capabilities.graph_capture)
    measure = decode_graphs and device.startswith("cuda")
    return GraphSettings(
        device=device, decode_graphs=decode_graphs, dp_attention=bool(get_parallel().attn_dp_enabled),
        platform_captures=platform_captures,
        free_memory_gb=get_available_gpu_memory(device, gpu_id) if measure else None,
    )


def init_draft_cuda_graphs(draft_worker, draft_runner, settings: GraphSettings) -> DraftGraphDecision:
    """Capture the drafter's block pass per batch size (or not, saying why); returns the decision."""
    decision = decide(settings)
    draft_worker.init_cuda_graphs(capture_decode_cuda_graph=decision.capture)
    runner = getattr(draft_runner, "decode_cuda_graph_runner", None)
    captured = list(getattr(runner, "capture_bs", []) or []) if decision.capture else []
    if decision.capture:
        get_logger().info("dflash-sglang drafter block pass: CUDA graphs captured for batch sizes %s "
                          "(larger batches run eager)", captured)
    else:
        get_logger().info("dflash-sglang drafter block pass runs eager: %s", decision.reason)
    return decision
