"""One tree step: draft -> build the tree -> verify it -> walk -> commit. The chain's step
(spec/step.py) with a tree between the draft pass and the verify; which tree and which walk a request
gets is spec/tree_rules.py's.

Request features that process the target's logits along a chain (penalties, grammars, bias) are not
applied here: the worker keeps such batches on the chain (sglang_adapter/tree_route.py).
"""

from __future__ import annotations

from typing import Protocol

import torch

from dflash_sglang.spec.block import make_draft_block
from dflash_sglang.spec.step import StepInput, TargetOutput
from dflash_sglang.spec.tree_rules import build_step_tree, walk_step_tree
from dflash_sglang.spec.tree_types import DraftTree, TreeAcceptance
from dflash_sglang.spec.types import Acceptance, Candidates, DraftBlock


class TreeStepModels(Protocol):
    def draft(self, block: DraftBlock) -> Candidates: ...

    def verify_tree(self, tree: DraftTree) -> TargetOutput: ...  # logits [bs, n, vocab]

    def commit_tree(self, tree: DraftTree, walked: TreeAcceptance, target: TargetOutput) -> None: ...


def tree_step(models: TreeStepModels, step: StepInput, budget: int, generator: torch.Generator | None = None,
              branching: int | None = None) -> Acceptance:
    """`budget` nodes per request, root included; `branching=1` with `budget=blk` is the chain."""
    assert step.features is None, "logit features run on the chain"
    block = make_draft_block(step.anchors, step.seq_lens, step.block_size, step.mask_token_id)
    built = build_step_tree(models.draft(block), step, budget, generator, branching)
    target = models.verify_tree(built.tree)
    walked = walk_step_tree(built, target.logits, step, generator)
    models.commit_tree(built.tree, walked, target)
    return walked.acceptance
