"""Which tree each request verifies, and how it is walked.

- Greedy rows, and every row under the point-mass rule: the DDTree (tree_build.py), walked by following
  the target's own token (tree_accept.py).
- Sampled rows under speculative sampling: a fan of branches drawn from the drafter's q, walked by
  multi-draft speculative sampling (tree_sampled.py).

Both kinds have the budget's node count, so one verify pass serves a mixed batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dflash_sglang.spec.categorical import draw
from dflash_sglang.spec.posterior import posterior_tokens, processed_probs
from dflash_sglang.spec.rules import REJECTION
from dflash_sglang.spec.step import StepInput
from dflash_sglang.spec.tree_accept import walk_tree
from dflash_sglang.spec.tree_build import build_tree
from dflash_sglang.spec.tree_sampled import branch_lengths, branch_parents, sample_branch_tokens, walk_branches
from dflash_sglang.spec.tree_types import DraftTree, TreeAcceptance
from dflash_sglang.spec.types import Acceptance, Candidates


@dataclass(frozen=True)
class StepTree:
    tree: DraftTree
    branch_rows: torch.Tensor | None  # [bs] bool: rows holding branches; None: every row holds the DDTree
    lengths: tuple[int, ...] = ()  # drafts per branch (tree_sampled.branch_lengths)
    draft_probs: torch.Tensor | None = None  # [bs, blk-1, vocab] q, processed

    @staticmethod
    def make_dummy(tokens: list[list[int]], parents: list[list[int]]) -> "StepTree":
        return StepTree(DraftTree.make_dummy(tokens, parents), None)


def build_step_tree(candidates: Candidates, step: StepInput, budget: int, generator: torch.Generator | None = None,
                    branching: int | None = None) -> StepTree:
    """`branching` bounds the DDTree's tokens per depth (1 with budget = blk: the chain)."""
    assert candidates.draft_logits is not None, "a tree needs the drafter's logits"
    ddtree = build_tree(candidates.draft_logits, step.anchors, step.seq_lens, budget, branching)
    if step.rule != REJECTION or step.sampling.all_greedy or budget < 2:
        return StepTree(ddtree, None)
    sampled = step.sampling.top_ks.to(ddtree.tokens.device) > 1  # [bs]
    q = candidates.draft_probs
    if q is None:
        q = processed_probs(candidates.draft_logits, step.sampling)  # [bs, blk-1, vocab]
    lengths = branch_lengths(budget, step.block_size)
    drawn = sample_branch_tokens(q, lengths, generator).to(ddtree.tokens.dtype)  # [bs, n-1]
    branches = torch.cat([step.anchors[:, None].to(drawn.dtype), drawn], dim=1)  # [bs, n]
    parents = branch_parents(lengths).to(ddtree.parents.device)[None, :]  # [1, n]
    tree = DraftTree.from_parents(
        torch.where(sampled[:, None], branches, ddtree.tokens),
        torch.where(sampled[:, None], parents, ddtree.parents),
        step.seq_lens,
        torch.where(sampled[:, None], 0.0, ddtree.scores),  # a drawn branch has no ranking score
        max_depth=step.block_size - 1,
    )
    return StepTree(tree, sampled, tuple(lengths), q)


def walk_step_tree(built: StepTree, target_logits: torch.Tensor, step: StepInput,
                   generator: torch.Generator | None = None) -> TreeAcceptance:
    """target_logits [bs, n, vocab] after each node's path -> the accepted path and the chain-shaped acceptance."""
    if built.branch_rows is None:
        return walk_tree(built.tree, posterior_tokens(target_logits, step.sampling, generator), step.block_size)
    assert built.draft_probs is not None
    p = processed_probs(target_logits, step.sampling)  # [bs, n, vocab], once for both walks
    walked = walk_tree(built.tree, draw(p, generator), step.block_size)
    fan = walk_branches(built.tree, list(built.lengths), p, built.draft_probs, step.block_size, generator)
    rows = built.branch_rows  # [bs]

    def pick(branch: torch.Tensor, ddtree: torch.Tensor) -> torch.Tensor:
        return torch.where(rows.view(-1, *([1] * (branch.dim() - 1))), branch, ddtree)

    a, b = fan.acceptance, walked.acceptance
    acceptance = Acceptance(accepted=pick(a.accepted, b.accepted), bonus=pick(a.bonus, b.bonus),
                            out_tokens=pick(a.out_tokens, b.out_tokens))
    return TreeAcceptance(acceptance, pick(fan.path, walked.path))
