"""One speculative step, as the algorithm reads: draft -> verify -> accept -> commit.

`StepModels` is what a host (SGLang, or a plain-torch reference in tests) provides: the drafter's
block pass, the target's verify pass, and the commit of accepted tokens into both KV caches.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

import torch

from dflash_sglang.spec.block import make_draft_block
from dflash_sglang.spec.logit_processing import LogitFeatures, process_logits
from dflash_sglang.spec.posterior import SamplingParams
from dflash_sglang.spec.rules import REJECTION, accept_verified, draw_drafts
from dflash_sglang.spec.types import Acceptance, Candidates, DraftBlock


@dataclass(frozen=True)
class TargetOutput:
    """The target's verify pass over the candidates."""

    logits: torch.Tensor  # [bs, blk, vocab]
    target_features: torch.Tensor  # [bs, blk, n_feat*hidden] captured at target_layer_ids

    @staticmethod
    def make_dummy(bs: int, blk: int, vocab: int, feature_width: int = 4) -> "TargetOutput":
        return TargetOutput(logits=torch.randn(bs, blk, vocab), target_features=torch.randn(bs, blk, feature_width))


class StepModels(Protocol):
    def draft(self, block: DraftBlock) -> Candidates: ...

    def verify(self, candidates: Candidates) -> TargetOutput: ...

    def commit(self, candidates: Candidates, acceptance: Acceptance, target: TargetOutput) -> None: ...


@dataclass(frozen=True)
class StepInput:
    anchors: torch.Tensor  # [bs] last verified token: the previous step's bonus token
    seq_lens: torch.Tensor  # [bs] committed tokens before the anchor
    sampling: SamplingParams
    block_size: int
    mask_token_id: int
    rule: str = REJECTION  # accept rule for sampled requests (spec/rules.py)
    features: LogitFeatures | None = None  # penalties, grammars, bias (spec/logit_processing.py); None: off
    max_lengths: torch.Tensor | None = None  # [bs] prompt + max_new_tokens: bounds a plain run (spec/plain_run.py)

    @staticmethod
    def make_dummy(anchors: list[int], seq_lens: list[int], block_size: int = 4, mask_token_id: int = 2) -> "StepInput":
        return StepInput(torch.tensor(anchors), torch.tensor(seq_lens),
                         SamplingParams.make_dummy([1.0] * len(anchors), top_ks=[1] * len(anchors)),
                         block_size, mask_token_id)


def speculative_step(models: StepModels, step: StepInput, generator: torch.Generator | None = None) -> Acceptance:
    block = make_draft_block(step.anchors, step.seq_lens, step.block_size, step.mask_token_id)
    candidates = draw_drafts(models.draft(block), step.sampling, step.rule, generator)
    target = models.verify(candidates)
    # at each position, the distribution AR would sample from after the same tokens
    target = replace(target, logits=process_logits(target.logits, candidates, step.features))
    acceptance = accept_verified(candidates, target.logits, step.sampling, step.rule, generator)
    models.commit(candidates, acceptance, target)
    return acceptance
