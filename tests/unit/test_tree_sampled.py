"""Sampled rows on a tree: branches drawn from q, walked by multi-draft speculative sampling (spec/tree_sampled.py).
The emitted tokens must follow the target's distribution given the path so far, at every depth."""

from __future__ import annotations

import pytest
import torch
from scipy.stats import chisquare

from dflash_sglang.spec import tree_sampled
from dflash_sglang.spec.tree_sampled import branch_lengths, branch_parents, sample_branch_tokens, walk_branches
from dflash_sglang.spec.tree_types import DraftTree

VOCAB, BLOCK, BUDGET, ROWS = 5, 4, 8, 40000


@pytest.mark.parametrize("budget,block,expected", [(16, 8, [7, 4, 2, 1, 1]), (8, 4, [3, 2, 1, 1]),
                                                   (32, 8, [7, 4, 2, 1, 7, 4, 2, 1, 3]), (2, 8, [1])])
def test_branch_lengths_fill_the_budget(budget, block, expected):
    lengths = branch_lengths(budget, block)
    assert lengths == expected and sum(lengths) == budget - 1 and max(lengths) <= block - 1
    parents = branch_parents(lengths)
    assert parents.shape == (budget,) and bool((parents[1:] < torch.arange(1, budget)).all())  # topological


def _path_probs(path: tuple[int, ...]) -> torch.Tensor:
    """The target: a distribution over the next token for every path from the root (seeded by the path)."""
    g = torch.Generator().manual_seed(hash(path) % (2 ** 31))
    return torch.softmax(torch.randn(VOCAB, generator=g, dtype=torch.float64) * 1.5, dim=-1)


def _chisquare(tokens: torch.Tensor, probs: torch.Tensor) -> float:
    counts = torch.bincount(tokens, minlength=VOCAB).double()
    return chisquare(counts.numpy(), (probs / probs.sum() * counts.sum()).numpy()).pvalue


def _walk(seed: int) -> torch.Tensor:
    """ROWS rows of one context: out_tokens [ROWS, BLOCK] of one walked step."""
    g = torch.Generator().manual_seed(seed)
    q = torch.softmax(torch.randn(BLOCK - 1, VOCAB, generator=g) * 1.5, dim=-1).expand(ROWS, -1, -1)
    lengths = branch_lengths(BUDGET, BLOCK)
    tokens = torch.cat([torch.zeros(ROWS, 1, dtype=torch.long), sample_branch_tokens(q, lengths, g)], dim=1)
    tree = DraftTree.from_parents(tokens, branch_parents(lengths).expand(ROWS, -1), torch.zeros(ROWS, dtype=torch.long))
    cache: dict[tuple[int, ...], torch.Tensor] = {}
    target = torch.empty(ROWS, BUDGET, VOCAB)  # p after each node's path below the root
    parents, rows = tree.parents[0].tolist(), tokens.tolist()
    for row in range(ROWS):
        path: list[tuple[int, ...]] = []
        for node in range(BUDGET):
            path.append(() if parents[node] < 0 else path[parents[node]] + (rows[row][node],))
            if path[-1] not in cache:
                cache[path[-1]] = _path_probs(path[-1])
            target[row, node] = cache[path[-1]].float()
    return walk_branches(tree, lengths, target, q, BLOCK, g).acceptance


def _p_values(acceptance) -> list[float]:
    out, accepted = acceptance.out_tokens, acceptance.accepted
    first = out[:, 0]
    values = [_chisquare(first, _path_probs(()))]
    for token in range(VOCAB):
        rows = (accepted >= 1) & (first == token)
        if int(rows.sum()) > 500:
            values.append(_chisquare(out[rows, 1], _path_probs((token,))))
    return values


@pytest.fixture(scope="module")
def walked():
    return _walk(seed=0)


def test_the_first_two_tokens_follow_the_target(walked):
    values = _p_values(walked)
    print(f"p-values {[round(v, 4) for v in values]}; mean accepted {walked.accepted.float().mean():.2f}")
    assert len(values) >= 3 and min(values) > 1e-4
    assert float(walked.accepted.float().mean()) > 0.5  # branches were accepted, so the second check ran


def test_a_walk_without_the_residual_update_between_siblings_leaves_the_target(monkeypatch):
    """Guard: trying every branch's first token against the root's p itself (no residual after a rejection)
    accepts popular tokens too often."""
    real = tree_sampled.residual_distribution
    calls = {"n": 0}

    def no_update_at_the_root(p, q):
        calls["n"] += 1
        return p if calls["n"] <= len(branch_lengths(BUDGET, BLOCK)) else real(p, q)

    monkeypatch.setattr(tree_sampled, "residual_distribution", no_update_at_the_root)
    assert min(_p_values(_walk(seed=0))) < 1e-6
