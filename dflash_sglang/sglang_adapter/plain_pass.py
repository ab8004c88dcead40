"""The target pass of a plain decoding step (`auto`'s width 1): SGLang's own DECODE forward.

A plain step verifies the anchor alone. As a TARGET_VERIFY pass of one token it reads like every other
width, but it takes the verify path's attention: on this CPU our per-request verify SDPA with a mask
(cpu/verify_attention.py) instead of torch_native's decode loop that AR's server runs. As a DECODE
pass it is AR's forward: same attention, same logits path, plus the capture of the target features
that the drafter's context needs.

The DECODE pass runs only where no captured decode graph could replay it: SGLang captures the target's
decode graphs of a speculative server for TARGET_VERIFY at the block's width, and a graph runner given a
DECODE batch without spec_info would take it for one of its own (decode_cuda_graph_runner.can_run_graph
skips the width check when no width is set). With graphs, the plain step stays a TARGET_VERIFY pass,
which such a runner declines at width 1 and runs eagerly.

`DFLASH_SGLANG_PLAIN_PASS=verify` keeps the TARGET_VERIFY pass everywhere (a benchmark option).

A plain step runs up to a block of DECODE passes in a row (spec/plain_run.py), `DFLASH_SGLANG_PLAIN_RUN=n`
at most n (1 to the block; 1 is one pass per scheduler step). The TARGET_VERIFY pass runs one: it reads
the prefix from the scheduler's seq_lens, which a run's earlier tokens are not yet counted in.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from sglang.srt.model_executor.forward_batch_info import CaptureHiddenMode, ForwardBatch, ForwardMode
from sglang.srt.speculative.spec_info import SpeculativeAlgorithm

from dflash_sglang.log import get_logger
from dflash_sglang.named_option import named_option

PLAIN_PASS_ENV = "DFLASH_SGLANG_PLAIN_PASS"
DECODE, VERIFY = "decode", "verify"
CHOSEN_LINE = "DFLASH plain decoding steps: the target's %s pass (%s)"
PLAIN_RUN_ENV = "DFLASH_SGLANG_PLAIN_RUN"
RUN_LINE = "DFLASH plain decoding steps: up to %d target passes per scheduler step (%s)"


def plain_pass_mode(model_runner) -> str:
    """DECODE or VERIFY, once at start-up, with one line saying which and why."""
    if named_option(PLAIN_PASS_ENV, (DECODE, VERIFY)) == VERIFY:
        get_logger().info(CHOSEN_LINE, "TARGET_VERIFY", f"{PLAIN_PASS_ENV}={VERIFY}")
        return VERIFY
    if getattr(model_runner, "decode_cuda_graph_runner", None) is not None:
        get_logger().info(CHOSEN_LINE, "TARGET_VERIFY", "decode graphs are captured at the block's width")
        return VERIFY
    get_logger().info(CHOSEN_LINE, "DECODE", "no decode graphs: the forward AR's server runs")
    return DECODE


def plain_run_length(mode: str, block_size: int, environ: Mapping[str, str] = os.environ) -> int:
    """Target passes per plain step, once at start-up with one line saying how many and why."""
    asked = environ.get(PLAIN_RUN_ENV)
    if asked is None:
        run, why = block_size, f"the block; {PLAIN_RUN_ENV}=1 runs one"
    elif not asked.isdigit() or not 1 <= int(asked) <= block_size:
        raise ValueError(f"{PLAIN_RUN_ENV}: expected an integer from 1 to the block size {block_size}, "
                         f"got {asked!r}")
    else:
        run, why = int(asked), f"{PLAIN_RUN_ENV}={asked}"
    if mode != DECODE and run > 1:
        run, why = 1, "the TARGET_VERIFY pass reads its prefix from the scheduler's lengths"
    get_logger().info(RUN_LINE, run, why)
    return run


def first_tokens_streamed(batch) -> bool:
    """Whether every request's first token has reached the scheduler's output. Under the overlap scheduler
    a step's output is streamed after the next step has run, so a plain run right after a prefill holds
    back the new requests' first token by the whole run (TTFT p50 at c=1: 81 ms against AR's 28 ms with
    runs of 8, 2026-12-01); such a step runs one pass."""
    return all(len(req.output_ids) for req in batch.reqs)


def max_lengths(batch) -> torch.Tensor:
    """[bs] on the host: the length each request may reach (prompt + max_new_tokens), which bounds a
    plain run (spec/plain_run.py); a request without max_new_tokens is bounded by its context."""
    context = int(getattr(batch.model_config, "context_len", 1 << 30) or 1 << 30)
    return torch.tensor([len(req.origin_input_ids) + req.sampling_params.max_new_tokens
                         if req.sampling_params.max_new_tokens is not None else context for req in batch.reqs],
                        dtype=torch.int64)


@dataclass
class DecodeOutput:
    logits_output: object  # SGLang's LogitsProcessorOutput
    logits: torch.Tensor  # [bs, 1, vocab]
    target_features: torch.Tensor  # [bs, 1, n_feat*hidden]
    ran_graph: bool


def decode_pass(target_worker, batch, anchors: torch.Tensor, slots: torch.Tensor,
                seq_lens_cpu: torch.Tensor, column: int = 0) -> DecodeOutput:
    """anchors [bs] at positions batch.seq_lens + column (seq_lens_cpu [bs]: batch.seq_lens on the host),
    written to slots [bs]; a plain run's earlier tokens sit in the block's slots before `column`
    (spec/plain_run.py). The ScheduleBatch is lent to ForwardBatch.init_new as a DECODE batch (seq_lens
    counting the anchor) and restored."""
    fields = ("forward_mode", "input_ids", "spec_info", "spec_algorithm", "seq_lens", "seq_lens_cpu",
              "seq_lens_sum", "out_cache_loc")
    saved = {name: getattr(batch, name) for name in fields}
    try:
        batch.forward_mode = ForwardMode.DECODE
        batch.spec_info, batch.spec_algorithm = None, SpeculativeAlgorithm.NONE
        batch.input_ids = anchors
        batch.seq_lens = saved["seq_lens"] + (column + 1)  # [bs] DECODE counts the token it decodes
        batch.seq_lens_cpu = seq_lens_cpu + (column + 1)
        batch.seq_lens_sum = int(batch.seq_lens_cpu.sum())
        batch.out_cache_loc = slots
        forward_batch = ForwardBatch.init_new(batch, target_worker.model_runner,
                                              capture_hidden_mode=CaptureHiddenMode.FULL,
                                              return_hidden_states_before_norm=False)
    finally:
        for name, value in saved.items():
            setattr(batch, name, value)
    out = target_worker.forward_batch_generation(batch=None, forward_batch=forward_batch, is_verify=True)
    logits_output = out.logits_output
    bs = anchors.shape[0]
    return DecodeOutput(logits_output, logits_output.next_token_logits.view(bs, 1, -1),
                        logits_output.hidden_states.view(bs, 1, -1), bool(out.can_run_cuda_graph))
