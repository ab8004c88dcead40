"""One decode step under the load-aware budget: plan -> (draft -> choose a width) -> verify -> accept -> commit.

Every width is lossless on its own: width W verifies the anchor and the first W-1 drafts of the
drafted block, so the target's tokens decide exactly as in the full chain, only fewer of them can be
accepted; width 1 verifies the anchor alone, which is a plain decode step (the drafter does not run,
and the commit still writes the anchor's drafter context K/V from the target's features, so later
draft passes see the whole context). The drafter always drafts its full block: it was trained on
blocks of that size and its attention inside the block is non-causal.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Callable, Protocol

import torch

from dflash_sglang.spec.block import make_draft_block
from dflash_sglang.spec.budget_controller import BudgetController, Plan
from dflash_sglang.spec.budget_cost import StepTiming
from dflash_sglang.spec.budget_estimate import RowCalibration, chain_expected_tokens, draft_scores
from dflash_sglang.spec.logit_processing import process_logits
from dflash_sglang.spec.rules import POINT_MASS, accept_verified, draw_drafts
from dflash_sglang.spec.step import StepInput, StepModels
from dflash_sglang.spec.types import Acceptance, Candidates, DraftBlock


class BudgetModels(StepModels, Protocol):
    def reserve(self, block: DraftBlock) -> None:
        """Whatever `draft` prepares for `verify` and `commit` (the block's KV slots), without drafting."""


@dataclass(frozen=True)
class BudgetedStep:
    """What one budgeted step did."""

    acceptance: Acceptance  # out_tokens [bs, width]
    width: int  # verify tokens per request
    plan: Plan

    @staticmethod
    def make_dummy(accepted: list[int], bonus: list[int], width: int) -> "BudgetedStep":
        return BudgetedStep(Acceptance.make_dummy(accepted, bonus, width), width, Plan.make_dummy())


def truncate(candidates: Candidates, width: int) -> Candidates:
    """The anchor and the first width-1 drafts: [bs, blk] -> [bs, width]."""
    drafts = width - 1
    return replace(
        candidates,
        tokens=candidates.tokens[:, :width],
        positions=candidates.positions[:, :width],
        draft_logits=None if candidates.draft_logits is None else candidates.draft_logits[:, :drafts],
        draft_probs=None if candidates.draft_probs is None else candidates.draft_probs[:, :drafts],
    )


def anchor_only(block: DraftBlock) -> Candidates:
    """Plain decoding's candidates: the anchor alone ([bs, 1])."""
    return Candidates(tokens=block.block_ids[:, :1], positions=block.positions[:, :1])


class BudgetedStepper:
    """Holds the controller and the calibration across steps; `step` runs one batch."""

    def __init__(self, controller: BudgetController, calibration: RowCalibration | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.controller = controller
        self.calibration = calibration or RowCalibration()
        self.clock = clock

    def expected_tokens(self, candidates: Candidates, greedy_rows: torch.Tensor) -> tuple[dict[int, float], torch.Tensor]:
        """width -> the batch's expected committed tokens, and the drafts' scores [bs, blk-1]."""
        scores = draft_scores(candidates, greedy_rows)  # [bs, blk-1]
        per_request = chain_expected_tokens(self.calibration(scores, greedy_rows))  # [bs, blk]
        totals = per_request.sum(dim=0).tolist()  # [blk]
        return {w + 1: float(e) for w, e in enumerate(totals)}, scores

    def step(self, models: BudgetModels, step: StepInput, generator: torch.Generator | None = None) -> BudgetedStep:
        block = make_draft_block(step.anchors, step.seq_lens, step.block_size, step.mask_token_id)
        bs = block.batch_size
        greedy_rows = step.sampling.top_ks <= 1  # [bs]
        start = self.clock()
        plan = self.controller.plan(bs)
        scores = None
        if plan.drafted:
            candidates = draw_drafts(models.draft(block), step.sampling, step.rule, generator)
            expected, scores = self.expected_tokens(candidates, greedy_rows)
            width = self.controller.choose(expected, bs, plan)
            candidates = truncate(candidates, width)
        else:
            models.reserve(block)
            candidates, width = anchor_only(block), plan.width
        # no drafts: every rule reduces to sampling the target's token, and point-mass needs no q
        rule = step.rule if plan.drafted else POINT_MASS
        drafted_at = self.clock()
        target = models.verify(candidates)
        target = replace(target, logits=process_logits(target.logits, candidates, step.features))
        acceptance = accept_verified(candidates, target.logits, step.sampling, rule, generator)
        models.commit(candidates, acceptance, target)
        self.controller.observe(StepTiming(bs, width, plan.drafted, drafted_at - start, self.clock() - drafted_at))
        if scores is not None:
            self.calibration.observe(scores, greedy_rows, acceptance.accepted, width)
        return BudgetedStep(acceptance, width, plan)
