"""Sampled requests on a tree: several drafted branches from the root, walked by multi-draft speculative
sampling (SpecInfer's rule, Miao et al. 2024), instead of the point-mass walk on the DDTree.

The DDTree's nodes are the drafter's likeliest tokens, fixed given its logits; walked with the point-mass
rule (draw t ~ p, descend to the child holding t) a node is accepted with probability p(node), which is
small wherever p is flat. Speculative sampling accepts a draft drawn from q with probability
min(1, p/q), 1 - TV(p, q) on average, but only for drafts *drawn* from q. So a sampled row's tree is a
fan of branches from the root, each branch a chain of drafts with the token at depth d drawn from q_d,
independently across branches and depths; the shape (how many branches, how long) depends only on the
budget and the block, never on the draws.

The walk: at the root, the branches' first tokens are tried in turn, each accepted with probability
min(1, p'(x)/q_1(x)), where p' is the target's distribution at the root after every earlier rejection
(p' <- norm(max(0, p' - q_1))); the first accepted branch is followed as a chain, by the chain's rule,
at its nodes; when no branch is accepted, the emitted token is a sample of the last p'. Each trial's
token is a fresh draw from q_1 independent of the ones before, which is what makes every emitted token
distributed as AR's (SpecInfer, Theorem 4.2; tests/unit/test_tree_sampled.py checks it by sampling).
"""

from __future__ import annotations

import torch

from dflash_sglang.spec.accept import commit_tokens
from dflash_sglang.spec.categorical import draw
from dflash_sglang.spec.rejection import acceptance_probability, residual_distribution
from dflash_sglang.spec.tree_types import NO_PARENT, DraftTree, TreeAcceptance
from dflash_sglang.spec.types import Acceptance


def branch_lengths(budget: int, block_size: int) -> list[int]:
    """Drafts per branch: blk-1, then halving to 1, repeated, until budget-1 nodes are used. A later branch
    is tried only after every earlier one was rejected at the root, so its deep nodes are rarely reached."""
    assert budget >= 2 and block_size >= 2, (budget, block_size)
    cycle, length = [], block_size - 1
    while True:
        cycle.append(length)
        if length == 1:
            break
        length = (length + 1) // 2
    lengths, left = [], budget - 1
    while left > 0:
        for length in cycle:
            lengths.append(min(length, left))
            left -= lengths[-1]
            if left == 0:
                break
    return lengths


def branch_parents(lengths: list[int]) -> torch.Tensor:  # [n]
    """Nodes branch by branch: a branch's first node hangs from the root, each next one from the node before."""
    parents = [NO_PARENT]
    for length in lengths:
        first = len(parents)
        parents += [0] + list(range(first, first + length - 1))
    return torch.tensor(parents)


def branch_firsts(lengths: list[int]) -> list[int]:
    """Node index of each branch's first node."""
    starts, node = [], 1
    for length in lengths:
        starts.append(node)
        node += length
    return starts


def sample_branch_tokens(draft_probs: torch.Tensor, lengths: list[int],
                         generator: torch.Generator | None = None) -> torch.Tensor:  # [bs, n-1]
    """draft_probs [bs, blk-1, vocab] q_d -> every branch node's token, drawn from q at its depth."""
    columns = [draw(draft_probs[:, :length], generator) for length in lengths]  # each [bs, length]
    return torch.cat(columns, dim=1)


def walk_branches(tree: DraftTree, lengths: list[int], target_probs: torch.Tensor, draft_probs: torch.Tensor,
                  block_size: int, generator: torch.Generator | None = None) -> TreeAcceptance:
    """target_probs [bs, n, vocab] p after each node's path; draft_probs [bs, blk-1, vocab] q_d."""
    bs, n = tree.tokens.shape
    rows = torch.arange(bs, device=tree.tokens.device)
    firsts = branch_firsts(lengths)
    branch, residual = _root_trials(tree.tokens, firsts, target_probs[:, 0].float(), draft_probs[:, 0].float(),
                                    generator)
    found = branch >= 0
    length = torch.tensor(lengths, device=rows.device)[branch.clamp(min=0)]  # [bs]
    node = torch.tensor(firsts, device=rows.device)[branch.clamp(min=0)]  # [bs] the current node, if found
    path = torch.full((bs, block_size), NO_PARENT, dtype=torch.long, device=rows.device)
    path[:, 0] = 0
    path[:, 1] = torch.where(found, node, NO_PARENT)
    alive = found.clone()
    emit = torch.where(found[:, None], target_probs[rows, node].float(), residual)  # [bs, vocab]
    for depth in range(2, block_size):  # along the branch: the chain's rule, one child per node
        has_child = alive & (depth <= length)
        child = (node + 1).clamp(max=n - 1)
        token = tree.tokens[rows, child]
        p = target_probs[rows, node].float()  # [bs, vocab] after the current node's path
        q = draft_probs[:, depth - 1].float()
        taken = has_child & (_uniform(bs, generator, rows.device) < acceptance_probability(p[rows, token],
                                                                                           q[rows, token]))
        rejected = has_child & ~taken
        emit = torch.where(rejected[:, None], residual_distribution(p, q), emit)
        node = torch.where(taken, child, node)
        emit = torch.where(taken[:, None], target_probs[rows, node].float(), emit)
        path[:, depth] = torch.where(taken, child, NO_PARENT)
        alive = taken
    accepted = (path[:, 1:] >= 0).sum(dim=1)  # [bs]
    bonus = draw(emit, generator)  # [bs]
    drafts = tree.tokens.gather(1, path[:, 1:].clamp(min=0))  # [bs, blk-1], junk past `accepted`
    out = commit_tokens(drafts, accepted, bonus.to(drafts.dtype))
    return TreeAcceptance(Acceptance(accepted=accepted, bonus=bonus, out_tokens=out), path)


def _root_trials(tokens: torch.Tensor, firsts: list[int], p: torch.Tensor, q1: torch.Tensor,
                 generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Each branch's first token in turn against the residual the ones before it left: the accepted branch
    ([bs], -1 for none) and the residual after every rejection ([bs, vocab], the emitted token's law when none)."""
    bs = tokens.shape[0]
    rows = torch.arange(bs, device=tokens.device)
    residual = p  # [bs, vocab]
    branch = torch.full((bs,), -1, dtype=torch.long, device=tokens.device)  # [bs]
    for index, first in enumerate(firsts):
        token = tokens[:, first]  # [bs]
        chance = acceptance_probability(residual[rows, token], q1[rows, token])  # [bs]
        searching = branch < 0
        taken = searching & (_uniform(bs, generator, rows.device) < chance)
        branch = torch.where(taken, index, branch)
        rejected = searching & ~taken
        residual = torch.where(rejected[:, None], residual_distribution(residual, q1), residual)
    return branch, residual


def _uniform(bs: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:  # [bs]
    return torch.rand(bs, generator=generator, device=device)
