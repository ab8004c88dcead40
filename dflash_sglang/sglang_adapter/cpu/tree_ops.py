"""Torch bodies for the two draft-tree ops of NGRAM (and EAGLE tree) verification on CPU:
`reconstruct_indices_from_tree_mask_cpu` and `verify_tree_greedy_cpu`. Contracts are those of the CUDA
kernels `reconstructIndicesFromTreeMask` and `VerifyTreeGreedy` in SGLang's `speculative/*.cuh`.

A draft tree of `n` nodes per request is described by `tree_mask[b, i, j]` = node j is an ancestor of
node i (or i itself); node 0 is the root, the last verified token. `retrive_*` (SGLang's spelling)
link each node to its first child and next sibling so the greedy walk needs no mask.
"""

from __future__ import annotations

import torch

NO_NODE = -1  # "no child" / "no sibling" / "no parent"


def reconstruct_indices_from_tree_mask(
    tree_mask: torch.Tensor,  # [bs * n * n] bool, QLEN layout (only the draft block, no prefix)
    verified_seq_len: torch.Tensor,  # [bs] committed prefix length
    positions: torch.Tensor,  # [bs * n] written: prefix + depth
    retrive_index: torch.Tensor,  # [bs, n] written: flat index b * n + i
    retrive_next_token: torch.Tensor,  # [bs, n] written: first child or NO_NODE
    retrive_next_sibling: torch.Tensor,  # [bs, n] written: next sibling or NO_NODE
    batch_size: int,
    draft_token_num: int,
) -> None:
    bs, n = batch_size, draft_token_num
    assert tree_mask.numel() == bs * n * n, (tree_mask.shape, bs, n)
    node = torch.arange(n, device=tree_mask.device)  # [n]
    earlier = node[None, :] < node[:, None]  # [n, n] j < i
    ancestor = tree_mask.view(bs, n, n).bool() & earlier  # [bs, i, j] strict ancestors of i
    depth = ancestor.sum(-1)  # [bs, n]
    # The parent is the deepest ancestor, i.e. the one with the largest index (ancestors precede nodes).
    parent = torch.where(ancestor, node, NO_NODE).amax(-1)  # [bs, n]
    # First child of j: the smallest i having j as an ancestor.
    child = torch.where(ancestor, node[:, None], n).amin(1)  # [bs, n] indexed by j
    # Next sibling of j: the smallest i > j with the same parent (roots have no siblings).
    same_parent = (parent[:, :, None] == parent[:, None, :]) & earlier  # [bs, i, j]
    sibling = torch.where(same_parent, node[:, None], n).amin(1)  # [bs, n] indexed by j
    sibling = torch.where((parent >= 0) & (sibling < n), sibling, NO_NODE)

    positions.view(bs, n).copy_(depth + verified_seq_len.view(bs, 1))
    retrive_index.view(bs, n).copy_(torch.arange(bs * n, device=tree_mask.device).view(bs, n))
    retrive_next_token.view(bs, n).copy_(torch.where(child < n, child, NO_NODE))
    retrive_next_sibling.view(bs, n).copy_(sibling)


def _walk(candidates, retrive_index, next_token, next_sibling, target_predict, num_spec):
    """One request's greedy walk: from the root, descend to the child whose draft equals the target's
    token at the current node. Returns the flat indices of the root and every accepted node."""
    path = [retrive_index[0]]
    cur = 0
    for _ in range(1, num_spec):
        cur = next_token[cur]
        while cur != NO_NODE and candidates[cur] != target_predict[path[-1]]:
            cur = next_sibling[cur]
        if cur == NO_NODE:
            break
        path.append(retrive_index[cur])
    return path


def verify_tree_greedy(
    predicts: torch.Tensor,  # [bs * n] int32 written: target token at each node on the accepted path
    accept_index: torch.Tensor,  # [bs, num_spec] int32 written: accepted path; caller pre-fills -1
    accept_token_num: torch.Tensor,  # [bs] int32 written: accepted drafts (bonus token excluded)
    candidates: torch.Tensor,  # [bs, n] draft token of each node
    retrive_index: torch.Tensor,  # [bs, n]
    retrive_next_token: torch.Tensor,  # [bs, n]
    retrive_next_sibling: torch.Tensor,  # [bs, n]
    target_predict: torch.Tensor,  # [bs, n] target argmax at each node
) -> None:
    # A sequential pointer chase per request: plain Python lists beat tensor indexing here.
    flat_target = target_predict.reshape(-1).tolist()  # [bs * n], indexed by flat node index
    num_spec = accept_index.shape[1]
    rows = zip(candidates.tolist(), retrive_index.tolist(), retrive_next_token.tolist(),
               retrive_next_sibling.tolist())
    for b, (cand, index, next_token, next_sibling) in enumerate(rows):
        path = _walk(cand, index, next_token, next_sibling, flat_target, num_spec)
        accept_index[b, : len(path)] = torch.tensor(path, dtype=accept_index.dtype)
        accept_token_num[b] = len(path) - 1
        # Each accepted node's prediction is the target token after it; the last one is the bonus token.
        predicts[path] = torch.tensor([flat_target[i] for i in path], dtype=predicts.dtype)
