"""Tree construction against a brute-force enumeration of every prefix on small vocabularies."""

from __future__ import annotations

import itertools

import pytest
import torch

from dflash_sglang.spec.tree_build import build_tree, node_logprobs
from dflash_sglang.spec.tree_types import NO_PARENT, DraftTree, ancestor_mask


def brute_force_top(logprobs: torch.Tensor, count: int) -> set[tuple[int, ...]]:
    """logprobs [D, vocab] -> the `count` best token paths of length 1..D by summed log-prob."""
    depth_max, vocab = logprobs.shape
    scored = []
    for depth in range(1, depth_max + 1):
        for path in itertools.product(range(vocab), repeat=depth):
            scored.append((sum(logprobs[d, t].item() for d, t in enumerate(path)), path))
    scored.sort(key=lambda item: -item[0])
    return {path for _, path in scored[:count]}


def node_paths(tree: DraftTree, b: int) -> list[tuple[int, ...]]:
    """Every non-root node's token path, read by following parent indices to the root."""
    tokens, parents = tree.tokens[b].tolist(), tree.parents[b].tolist()
    paths = []
    for i in range(1, len(tokens)):
        path, node = [], i
        while node != 0:
            path.append(tokens[node])
            node = parents[node]
        paths.append(tuple(reversed(path)))
    return paths


CASES = [  # (bs, blk, vocab, budget, seed); budgets past the vocabulary make the deeper beams matter
    pytest.param(3, 4, 5, 16, 0, id="bs3-blk4-vocab5-n16"),
    pytest.param(2, 5, 3, 30, 1, id="bs2-blk5-vocab3-n30"),
    pytest.param(4, 3, 7, 2, 2, id="bs4-blk3-vocab7-n2"),
    pytest.param(2, 2, 6, 7, 3, id="bs2-blk2-vocab6-n7-whole-depth"),
    pytest.param(3, 6, 4, 40, 4, id="bs3-blk6-vocab4-n40"),
    pytest.param(1, 4, 9, 9, 5, id="bs1-blk4-vocab9-n9"),
]


@pytest.mark.parametrize("bs,blk,vocab,budget,seed", CASES)
def test_tree_is_the_top_prefixes(bs, blk, vocab, budget, seed):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(bs, blk - 1, vocab, generator=g) * 2
    anchors, seq_lens = torch.arange(bs) + 100, torch.arange(bs) * 7
    tree = build_tree(logits, anchors, seq_lens, budget)
    logprobs = node_logprobs(logits)
    for b in range(bs):
        paths = node_paths(tree, b)
        assert len(set(paths)) == budget - 1, "duplicate nodes"
        assert set(paths) == brute_force_top(logprobs[b], budget - 1)
        assert tree.tokens[b, 0] == anchors[b] and tree.parents[b, 0] == NO_PARENT
        assert all(tree.parents[b, i] < i for i in range(1, budget)), "not topological"
        depths = torch.tensor([0] + [len(p) for p in paths])
        assert torch.equal(tree.depths[b], depths)
        assert torch.equal(tree.positions[b], seq_lens[b] + depths)
        expected_scores = [0.0] + [sum(logprobs[b, d, t].item() for d, t in enumerate(p)) for p in paths]
        assert torch.allclose(tree.scores[b], torch.tensor(expected_scores), atol=1e-5)


def test_ancestor_mask_is_the_path_to_the_root():
    tree = DraftTree.make_dummy([[9, 1, 2, 3, 4, 5]], [[NO_PARENT, 0, 0, 1, 3, 2]])
    expected = torch.tensor([
        [1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [1, 0, 1, 0, 0, 0],
        [1, 1, 0, 1, 0, 0],
        [1, 1, 0, 1, 1, 0],
        [1, 0, 1, 0, 0, 1],
    ], dtype=torch.bool)
    assert torch.equal(tree.ancestors[0], expected)
    assert tree.depths[0].tolist() == [0, 1, 1, 2, 3, 2]
    # Guard: one round short misses the great-grandparent of node 4.
    assert not torch.equal(ancestor_mask(tree.parents, max_depth=2)[0], expected)


def test_branching_one_is_the_argmax_chain():
    g = torch.Generator().manual_seed(7)
    logits = torch.randn(3, 7, 50, generator=g)
    tree = build_tree(logits, torch.tensor([1, 2, 3]), torch.zeros(3, dtype=torch.long), budget=8, branching=1)
    assert torch.equal(tree.tokens[:, 1:], logits.argmax(-1))
    assert tree.parents.tolist() == [[NO_PARENT, 0, 1, 2, 3, 4, 5, 6]] * 3


def test_ties_keep_parents():
    """A drafter certain of a token (log-prob 0) gives a child its parent's score: the parent stays."""
    logits = torch.full((2, 4, 5), -1e4)
    logits[:, :, 0] = 0.0  # prob 1 at every depth: every chain prefix ties at score 0
    tree = build_tree(logits, torch.tensor([7, 8]), torch.zeros(2, dtype=torch.long), budget=4)
    assert tree.parents.tolist() == [[NO_PARENT, 0, 1, 2]] * 2
