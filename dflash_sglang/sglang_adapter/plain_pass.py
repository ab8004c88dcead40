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
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sglang.srt.model_executor.forward_batch_info import CaptureHiddenMode, ForwardBatch, ForwardMode
from sglang.srt.speculative.spec_info import SpeculativeAlgorithm

from dflash_sglang.log import get_logger
from dflash_sglang.named_option import named_option

PLAIN_PASS_ENV = "DFLASH_SGLANG_PLAIN_PASS"
DECODE, VERIFY = "decode", "verify"
CHOSEN_LINE = "DFLASH plain decoding steps: the target's %s pass (%s)"


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


@dataclass
class DecodeOutput:
    logits_output: object  # SGLang's LogitsProcessorOutput
    logits: torch.Tensor  # [bs, 1, vocab]
    target_features: torch.Tensor  # [bs, 1, n_feat*hidden]
    ran_graph: bool


def decode_pass(target_worker, batch, anchors: torch.Tensor, slots: torch.Tensor,
                seq_lens_cpu: torch.Tensor) -> DecodeOutput:
    """anchors [bs] at positions batch.seq_lens (seq_lens_cpu [bs] on the host), written to slots [bs].
    The ScheduleBatch is lent to ForwardBatch.init_new as a DECODE batch (seq_lens counting the anchor)
    and restored."""
    fields = ("forward_mode", "input_ids", "spec_info", "spec_algorithm", "seq_lens", "seq_lens_cpu",
              "seq_lens_sum", "out_cache_loc")
    saved = {name: getattr(batch, name) for name in fields}
    try:
        batch.forward_mode = ForwardMode.DECODE
        batch.spec_info, batch.spec_algorithm = None, SpeculativeAlgorithm.NONE
        batch.input_ids = anchors
        batch.seq_lens = saved["seq_lens"] + 1  # [bs] DECODE counts the token it decodes
        batch.seq_lens_cpu = seq_lens_cpu + 1
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
