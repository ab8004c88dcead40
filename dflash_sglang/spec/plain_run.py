"""A plain run: several plain decoding steps inside one scheduler step.

Plain decoding (`auto`'s width 1) verifies the anchor alone: one target forward over one token, a sample
of its processed distribution, one committed token. Around every step, whatever it commits, SGLang's
scheduler and its sibling processes do the same work: pick the batch, reserve the block's KV slots,
process the result, stream and detokenize it. On a small target that work is a large share of a plain
step, and on this 2-core CPU the tokenizer and detokenizer processes take their share of the same cores.

A run repeats the plain step up to `run` times (at most the block, whose KV slots the scheduler reserved)
before it hands back: the k-th token is the target's sample after every token before it, exactly as AR
decodes, and its K/V goes to the block's k-th reserved slot. The scheduler receives the run as one step
that committed `run` tokens; a stop token inside the run ends the request there, as a stop inside a
verified block does (the tokens after it are dropped with their slots).

Runs serve batches without per-token logit state (penalties, grammars, logit bias, logprobs: those are
updated by the scheduler between steps, so such batches decode one token per step).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

import torch

from dflash_sglang.spec.logit_processing import process_logits
from dflash_sglang.spec.posterior import posterior_tokens
from dflash_sglang.spec.step import StepInput, TargetOutput
from dflash_sglang.spec.types import Acceptance, Candidates, DraftBlock


class PlainRunModels(Protocol):
    def reserve_block(self, block: DraftBlock) -> None:
        """The block's KV slots, without drafting."""

    def verify_plain(self, candidates: Candidates, column: int) -> TargetOutput:
        """The target's pass over the anchor alone ([bs, 1]) at the block's `column`: its K/V goes to
        that column's reserved slot, and `commit` commits it."""

    def commit(self, candidates: Candidates, acceptance: Acceptance, target: TargetOutput) -> None: ...


def run_length(limit: int, seq_lens: torch.Tensor, max_lengths: torch.Tensor | None) -> int:
    """`limit` passes, or as many as the batch's longest request may still commit: seq_lens [bs] committed
    tokens before the anchor, max_lengths [bs] prompt + max_new_tokens (None: no bound). A pass past
    every request's last token decodes for nothing; under the overlap scheduler the step after a batch's
    last tokens is under way before its requests are seen to finish, and the next prefill waits for it."""
    if limit == 1 or max_lengths is None:
        return limit
    left = int((max_lengths.to(seq_lens.device) - seq_lens).max()) - 1  # the anchor is an output token already
    return max(1, min(limit, left))


def plain_run(models: PlainRunModels, step: StepInput, block: DraftBlock, run: int,
              generator: torch.Generator | None = None) -> Acceptance:
    """`run` plain decoding steps; out_tokens [bs, run], all committed (accepted = run - 1, the bonus is
    the last)."""
    assert 1 <= run <= block.block_size, (run, block.block_size)
    assert run == 1 or step.features is None, "per-token logit state needs the scheduler between tokens"
    models.reserve_block(block)
    anchors = block.block_ids[:, :1]  # [bs, 1]
    none_accepted = torch.zeros_like(step.anchors)  # [bs]
    committed = []
    for column in range(run):
        candidates = Candidates(tokens=anchors, positions=block.positions[:, column : column + 1])
        target = models.verify_plain(candidates, column)
        target = replace(target, logits=process_logits(target.logits, candidates, step.features))
        anchors = posterior_tokens(target.logits, step.sampling, generator)  # [bs, 1] the next column's anchor
        # with no drafts to accept, every rule commits the target's own token
        models.commit(candidates, Acceptance(accepted=none_accepted, bonus=anchors[:, 0], out_tokens=anchors), target)
        committed.append(anchors)
    out_tokens = torch.cat(committed, dim=1)  # [bs, run]
    accepted = torch.full_like(none_accepted, run - 1)  # [bs]
    return Acceptance(accepted=accepted, bonus=out_tokens[:, -1], out_tokens=out_tokens)
