"""The tree walk: from the root, follow the target's own token at the current node while a child
holds it. The committed tokens are the accepted nodes' tokens, then the target's token at the last
accepted node (the bonus token).

`posterior[:, i]` is the target's token after node i's path: its argmax for greedy requests, a sample
of its processed distribution otherwise. The walk is lossless for sampling for the chain's reason
(spec/accept.py): the next token is always a fresh draw t ~ p at the current node, and a child is
taken iff its token equals t, so every emitted token is distributed exactly as AR would draw it.
Siblings hold distinct tokens (each depth's top-k), so at most one child matches.
"""

from __future__ import annotations

import torch

from dflash_sglang.spec.accept import commit_tokens
from dflash_sglang.spec.tree_types import NO_PARENT, DraftTree, TreeAcceptance
from dflash_sglang.spec.types import Acceptance


def walk_tree(tree: DraftTree, posterior: torch.Tensor, block_size: int) -> TreeAcceptance:
    """posterior [bs, n] -> the accepted path (root first) and the chain-shaped Acceptance."""
    bs, n = tree.tokens.shape
    assert posterior.shape == (bs, n), (posterior.shape, tree.tokens.shape)
    current = torch.zeros(bs, dtype=torch.long, device=posterior.device)  # [bs] the root
    alive = torch.ones(bs, dtype=torch.bool, device=posterior.device)
    path = torch.full((bs, block_size), NO_PARENT, dtype=torch.long, device=posterior.device)
    path[:, 0] = 0
    # One round per depth, batched over requests; a depth never exceeds blk-1.
    for depth in range(1, block_size):
        wanted = posterior.gather(1, current[:, None])  # [bs, 1] the target's token at the current node
        match = (tree.parents == current[:, None]) & (tree.tokens == wanted)  # [bs, n]
        alive = alive & match.any(dim=1)
        child = match.to(torch.int8).argmax(dim=1)  # [bs] the matching child (if alive)
        current = torch.where(alive, child, current)
        path[:, depth] = torch.where(alive, child, NO_PARENT)
    accepted = (path[:, 1:] >= 0).sum(dim=1)  # [bs]
    bonus = posterior.gather(1, current[:, None])[:, 0]  # [bs]
    drafts = tree.tokens.gather(1, path[:, 1:].clamp(min=0))  # [bs, blk-1], junk past `accepted`
    out = commit_tokens(drafts, accepted, bonus.to(drafts.dtype))
    return TreeAcceptance(Acceptance(accepted=accepted, bonus=bonus, out_tokens=out), path)
