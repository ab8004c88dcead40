"""The torch fallbacks for SGLang's draft-tree ops: hand-made trees, then random trees against loop oracles
written from the CUDA kernels' contracts (`reconstructIndicesFromTreeMask`, `VerifyTreeGreedy`).

Imports only torch and the op bodies (no sglang), so it runs in the unit tier.
"""

from __future__ import annotations

import random

import pytest
import torch

from dflash_sglang.sglang_adapter.cpu import tree_ops

# A 5-node tree: 0 -> {1, 2}, 1 -> {3}, 2 -> {4}. Row i marks i and its ancestors.
HAND_PARENTS = [-1, 0, 0, 1, 2]


def mask_from_parents(parents: list[int]) -> torch.Tensor:
    n = len(parents)
    mask = torch.zeros(n, n, dtype=torch.bool)  # [n, n]
    for i in range(n):
        j = i
        while j != -1:
            mask[i, j] = True
            j = parents[j]
    return mask


def random_parents(n: int, rng: random.Random) -> list[int]:
    return [-1] + [rng.randrange(i) for i in range(1, n)]


def reconstruct(masks: list[torch.Tensor], seq_lens: list[int]):
    n = masks[0].shape[0]
    bs = len(masks)
    out = dict(positions=torch.empty(bs * n, dtype=torch.int64),
               index=torch.empty(bs, n, dtype=torch.int64),
               next_token=torch.empty(bs, n, dtype=torch.int64),
               next_sibling=torch.empty(bs, n, dtype=torch.int64))
    tree_ops.reconstruct_indices_from_tree_mask(
        torch.stack(masks).reshape(-1), torch.tensor(seq_lens), out["positions"], out["index"],
        out["next_token"], out["next_sibling"], bs, n)
    return out


def reconstruct_oracle(mask: torch.Tensor, b: int, seq_len: int):
    """Per node, the CUDA kernel's loops: depth and parent scan left, first child and sibling scan right."""
    n = mask.shape[0]
    positions, index, next_token, next_sibling = [], [], [], []
    for tid in range(n):
        ancestors = [i for i in range(tid) if mask[tid, i]]
        parent = ancestors[-1] if ancestors else -1
        positions.append(len(ancestors) + seq_len)
        index.append(b * n + tid)
        next_token.append(next((i for i in range(tid + 1, n) if mask[i, tid]), -1))
        sibling = -1
        if parent != -1:
            for i in range(tid + 1, n):
                if mask[i, parent] and not any(mask[i, j] for j in range(parent + 1, i)):
                    sibling = i
                    break
        next_sibling.append(sibling)
    return positions, index, next_token, next_sibling


def test_reconstruct_hand_tree():
    out = reconstruct([mask_from_parents(HAND_PARENTS)], [10])
    assert out["positions"].tolist() == [10, 11, 11, 12, 12]
    assert out["index"].tolist() == [[0, 1, 2, 3, 4]]
    assert out["next_token"].tolist() == [[1, 3, 4, -1, -1]]
    assert out["next_sibling"].tolist() == [[-1, 2, -1, -1, -1]]


@pytest.mark.parametrize("n", [1, 2, 8, 17], ids=lambda n: f"n{n}")  # 1: root only; 17: odd width
def test_reconstruct_random_trees_match_loop_oracle(n):
    rng = random.Random(n)
    masks = [mask_from_parents(random_parents(n, rng)) for _ in range(3)]
    seq_lens = [0, 5, 129]
    out = reconstruct(masks, seq_lens)
    for b, (mask, seq_len) in enumerate(zip(masks, seq_lens)):
        positions, index, next_token, next_sibling = reconstruct_oracle(mask, b, seq_len)
        assert out["positions"].view(3, n)[b].tolist() == positions
        assert out["index"][b].tolist() == index
        assert out["next_token"][b].tolist() == next_token
        assert out["next_sibling"][b].tolist() == next_sibling


def verify(parents_per_req, candidates, target_predict, num_spec):
    """Run the op on trees given by parent lists, with links from `reconstruct` (as NGRAM does)."""
    bs, n = len(parents_per_req), len(parents_per_req[0])
    links = reconstruct([mask_from_parents(p) for p in parents_per_req], [0] * bs)
    predicts = torch.full((bs * n,), -1, dtype=torch.int32)
    accept_index = torch.full((bs, num_spec), -1, dtype=torch.int32)
    accept_num = torch.full((bs,), -1, dtype=torch.int32)
    tree_ops.verify_tree_greedy(predicts, accept_index, accept_num, torch.tensor(candidates),
                                links["index"], links["next_token"], links["next_sibling"],
                                torch.tensor(target_predict))
    return predicts, accept_index, accept_num


def greedy_path_oracle(parents, candidates, target, num_spec, b):
    """Walk down the tree: at each node take the lowest-index child whose draft equals the target's token."""
    n = len(parents)
    path = [0]
    while len(path) < num_spec:
        children = [i for i in range(n) if parents[i] == path[-1]]
        match = [c for c in children if candidates[c] == target[path[-1]]]
        if not match:
            break
        path.append(match[0])
    return [b * n + i for i in path]


def test_verify_hand_tree_takes_the_matching_branch():
    # Target says 20 after the root: branch 2 (draft 20) is accepted, then 4 (draft 40 == target at 2).
    candidates = [[9, 10, 20, 30, 40]]
    target = [[20, 0, 40, 0, 50]]
    predicts, accept_index, accept_num = verify([HAND_PARENTS], candidates, target, num_spec=4)
    assert accept_index.tolist() == [[0, 2, 4, -1]]
    assert accept_num.tolist() == [2]
    # Accepted nodes hold the target's next token; the last one (50) is the bonus token.
    assert predicts.tolist() == [20, -1, 40, -1, 50]


def test_verify_rejects_at_root_and_returns_bonus_only():
    predicts, accept_index, accept_num = verify([HAND_PARENTS], [[9, 1, 2, 3, 4]], [[7, 0, 0, 0, 0]], 4)
    assert accept_index.tolist() == [[0, -1, -1, -1]]
    assert accept_num.tolist() == [0]
    assert predicts.tolist() == [7, -1, -1, -1, -1]


@pytest.mark.parametrize("shape", ["chain", "tree"])
def test_verify_random_trees_match_oracle(shape):
    rng = random.Random(shape)
    bs, n, num_spec, vocab = 4, 9, 6, 3  # tiny vocab so that drafts often match
    parents = [list(range(-1, n - 1)) if shape == "chain" else random_parents(n, rng) for _ in range(bs)]
    candidates = [[rng.randrange(vocab) for _ in range(n)] for _ in range(bs)]
    target = [[rng.randrange(vocab) for _ in range(n)] for _ in range(bs)]
    predicts, accept_index, accept_num = verify(parents, candidates, target, num_spec)
    flat_target = sum(target, [])
    for b in range(bs):
        path = greedy_path_oracle(parents[b], candidates[b], target[b], num_spec, b)
        assert accept_index[b].tolist() == path + [-1] * (num_spec - len(path))
        assert int(accept_num[b]) == len(path) - 1
        assert [int(predicts[i]) for i in path] == [flat_target[i] for i in path]
    assert int(accept_num.sum()) > 0, "the case should exercise acceptance"
