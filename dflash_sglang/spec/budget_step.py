"""One decode step under the load-aware budget: plan -> (draft -> choose a width) -> verify -> accept -> commit.

Every width is lossless on its own: width W verifies the anchor and the first W-1 drafts of the
drafted block, so the target's tokens decide exactly as in the full chain, only fewer of them can be
accepted; width 1 verifies the anchor alone, which is a plain decode step (the drafter does not run,
and the commit still writes the anchor's drafter context K/V from the target's features, before the
next draft pass reads it, so later draft passes see the whole context); a plain step may run several
such passes in a row before the scheduler takes over (spec/plain_run.py). The drafter always drafts its
full block: it was trained on blocks of that size and its attention inside the block is non-causal. A
width past the block is a DDTree of that many tokens per request built from the same draft pass
(spec/tree_*.py), lossless by its walk; a batch the tree cannot serve (logit features, logprobs, a
full KV pool) takes the full chain.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Callable, Protocol

import torch

from dflash_sglang.spec.block import make_draft_block
from dflash_sglang.spec.budget_controller import PLAIN_WIDTH, PRICED_REASONS, BudgetController, Plan
from dflash_sglang.spec.budget_cost import StepTiming
from dflash_sglang.spec.budget_estimate import (
    RowCalibration,
    TreeGain,
    chain_commits_on_walked_block,
    chain_expected_tokens,
    draft_scores,
)
from dflash_sglang.spec.chain_realisation import ChainRealisation
from dflash_sglang.spec.logit_processing import process_logits
from dflash_sglang.spec.plain_run import PlainRunModels, plain_run, run_length
from dflash_sglang.spec.posterior import posterior_tokens
from dflash_sglang.spec.rules import accept_verified, draw_drafts
from dflash_sglang.spec.step import StepInput, StepModels, TargetOutput
from dflash_sglang.spec.tree_rules import build_step_tree, walk_step_tree
from dflash_sglang.spec.tree_types import DraftTree, TreeAcceptance
from dflash_sglang.spec.types import Acceptance, Candidates


class BudgetModels(StepModels, PlainRunModels, Protocol):
    pass


class BudgetTreeModels(BudgetModels, Protocol):  # spec/tree_step.py's TreeStepModels, plus the tree's slots
    def reserve(self, num_nodes: int) -> bool: ...

    def release(self) -> None: ...

    def verify_tree(self, tree: DraftTree) -> TargetOutput: ...

    def commit_tree(self, tree: DraftTree, walked: TreeAcceptance, target: TargetOutput) -> None: ...


@dataclass(frozen=True)
class BudgetedStep:
    """What one budgeted step did."""

    acceptance: Acceptance  # out_tokens [bs, width], or [bs, passes] for a plain run
    width: int  # verify tokens per request
    plan: Plan
    passes: int = 1  # target passes: a plain run's length (spec/plain_run.py), else 1

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


@dataclass(frozen=True)
class ChainEstimate:
    """One drafted block's chain estimate, before the realisation's correction."""

    scores: torch.Tensor  # [bs, blk-1] the drafter's probability of each draft (draft_scores)
    per_request: torch.Tensor  # [bs, blk] E(W) for W = 1 .. blk

    @staticmethod
    def make_dummy(bs: int, blk: int) -> "ChainEstimate":
        scores = torch.full((bs, blk - 1), 0.5)
        return ChainEstimate(scores, chain_expected_tokens(scores))


class BudgetedStepper:
    """Holds the controller and the estimates across steps; `step` runs one batch."""

    def __init__(self, controller: BudgetController, calibration: RowCalibration | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.controller = controller
        self.calibration = calibration or RowCalibration()
        self.tree_gain = TreeGain(controller.settings.tree_widths)
        self.realisation = ChainRealisation(controller.settings.block_size)
        self.clock = clock

    def expected_tokens(self, candidates: Candidates, greedy_rows: torch.Tensor,
                        trees: bool) -> tuple[dict[int, float], ChainEstimate]:
        """width -> the batch's expected committed tokens (chains corrected by what they realised), and
        what the step's observations need."""
        scores = draft_scores(candidates, greedy_rows)  # [bs, blk-1]
        per_request = chain_expected_tokens(self.calibration(scores, greedy_rows))  # [bs, blk]
        corrected = self.realisation(per_request)  # [bs, blk]
        expected = {w + 1: float(e) for w, e in enumerate(corrected.sum(dim=0).tolist())}
        if trees:
            greedy_full = float(corrected[greedy_rows.to(corrected.device), -1].sum())
            expected.update(self.tree_gain.expected(expected[candidates.tokens.shape[1]], greedy_full))
        return expected, ChainEstimate(scores, per_request)

    def step(self, models: BudgetModels, step: StepInput, generator: torch.Generator | None = None,
             trees: bool = True, plain_run_length: int = 1) -> BudgetedStep:
        """`trees`: whether this batch may verify a tree (no logit features, no logprobs: the tree's
        verify skips them), else widths past the chain become the full chain. `plain_run_length`: target
        passes of a plain step (spec/plain_run.py; 1 for a batch with logit features or logprobs)."""
        block = make_draft_block(step.anchors, step.seq_lens, step.block_size, step.mask_token_id)
        bs, greedy_rows = block.batch_size, step.sampling.top_ks <= 1  # [bs]
        start = self.clock()
        run = run_length(plain_run_length, step.seq_lens, step.max_lengths) if step.features is None else 1
        # a tree's gain is measured on greedy rows only (TreeGain): a batch without them keeps to chains, and
        # exploring trees on it would cost their time and teach nothing
        trees = (trees and step.features is None and bool(self.controller.settings.tree_widths)
                 and bool(greedy_rows.any()))
        plan = self.controller.plan(bs, run, trees)
        if not plan.drafted:
            acceptance = plain_run(models, step, block, run, generator)
            return self._done(BudgetedStep(acceptance, PLAIN_WIDTH, plan, passes=run), start, start)
        candidates = draw_drafts(models.draft(block), step.sampling, step.rule, generator)
        expected, estimate = self.expected_tokens(candidates, greedy_rows, trees)
        width = self.controller.choose(expected, bs, plan)
        drafted_at = self.clock()
        acceptance = None
        if width > step.block_size:
            acceptance = _verify_tree(models, step, candidates, width, generator) if trees else None
            if acceptance is None:  # not for this batch, or no KV slots for the tree: the full chain
                width = step.block_size
            else:
                self._observe_tree(width, candidates, acceptance, greedy_rows)
        if acceptance is None:
            acceptance = _verify_chain(models, step, truncate(candidates, width), step.rule, generator)
            self.calibration.observe(estimate.scores, greedy_rows, acceptance.accepted, width)
            self.realisation.observe(estimate.per_request, acceptance.accepted, width)
        return self._done(BudgetedStep(acceptance, width, plan), start, drafted_at)

    def _observe_tree(self, width: int, candidates: Candidates, walked: Acceptance, greedy_rows: torch.Tensor) -> None:
        """The tree's tokens against the argmax chain's on the same block, over greedy rows (TreeGain; a batch
        verifies trees only with one, `step`)."""
        rows = greedy_rows.to(walked.out_tokens.device)  # [bs]
        chain_drafts = candidates.draft_logits[rows].argmax(dim=-1)  # [greedy bs, blk-1]
        chain = chain_commits_on_walked_block(walked.out_tokens[rows], chain_drafts)  # [greedy bs]
        self.tree_gain.observe(width, float(walked.acceptance_lengths[rows].sum()), float(chain.sum()))

    def _done(self, result: BudgetedStep, start: float, drafted_at: float) -> BudgetedStep:
        bs = result.acceptance.accepted.shape[0]
        seconds = self.clock() - drafted_at
        # a host read, so only where the controller prices it
        priced = result.plan.reason in PRICED_REASONS
        committed = float(result.acceptance.acceptance_lengths.sum()) if priced else None
        self.controller.observe(StepTiming(bs, result.width, result.plan.drafted, drafted_at - start,
                                           seconds, result.passes, committed))
        return result


def _verify_chain(models: BudgetModels, step: StepInput, candidates: Candidates, rule: str,
                  generator: torch.Generator | None) -> Acceptance:
    """verify -> accept -> commit of a chain of any width (the anchor alone is plain decoding: with no
    drafts every rule samples the target's token, and point-mass needs no q)."""
    target = models.verify(candidates)
    target = replace(target, logits=process_logits(target.logits, candidates, step.features))
    acceptance = accept_verified(candidates, target.logits, step.sampling, rule, generator)
    models.commit(candidates, acceptance, target)
    return acceptance


def _verify_tree(models: BudgetTreeModels, step: StepInput, candidates: Candidates, budget: int,
                 generator: torch.Generator | None) -> Acceptance | None:
    """spec/tree_step.py's verify, walk and commit on the drafted block; None when the KV pool cannot hold
    the tree's temporary slots."""
    if not models.reserve(budget):
        return None
    try:
        built = build_step_tree(candidates, step, budget, generator)
        target = models.verify_tree(built.tree)
        walked = walk_step_tree(built, target.logits, step, generator)
        models.commit_tree(built.tree, walked, target)
        return walked.acceptance
    finally:
        models.release()
