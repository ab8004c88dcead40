"""A draft tree (DDTree, Ringel and Romano, arXiv 2604.12989) and the walk's result. Tensors only.

Node 0 of every request is the root: the anchor token, at position seq_len. A node at depth d holds a
token for block position d; its parent is at depth d-1. Nodes are in topological order (a parent's
index is smaller than its children's), so a node's ancestors always precede it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dflash_sglang.spec.types import Acceptance

NO_PARENT = -1  # the root's parent


def ancestor_mask(parents: torch.Tensor, max_depth: int) -> torch.Tensor:
    """[bs, n] parent indices -> [bs, n, n] bool: [b, i, j] = j is i or one of i's ancestors."""
    bs, n = parents.shape
    eye = torch.eye(n, dtype=torch.bool, device=parents.device).expand(bs, n, n)
    rows = parents.clamp(min=0)  # the root's row is its own: eye | eye
    mask = eye
    for _ in range(max_depth):  # each round adds one more generation of ancestors
        mask = eye | mask.gather(1, rows[:, :, None].expand(bs, n, n))
    return mask


@dataclass(frozen=True)
class DraftTree:
    tokens: torch.Tensor  # [bs, n] node tokens; column 0 the anchor
    parents: torch.Tensor  # [bs, n] parent node index; NO_PARENT for the root
    depths: torch.Tensor  # [bs, n] 0 for the root
    positions: torch.Tensor  # [bs, n] seq_len + depth
    ancestors: torch.Tensor  # [bs, n, n] bool, the verify's attention mask within the tree
    scores: torch.Tensor  # [bs, n] cumulative drafter log-prob of each node's path; 0 for the root

    @property
    def num_nodes(self) -> int:
        return self.tokens.shape[1]

    @staticmethod
    def from_parents(tokens: torch.Tensor, parents: torch.Tensor, seq_lens: torch.Tensor,
                     scores: torch.Tensor | None = None, max_depth: int | None = None) -> "DraftTree":
        """max_depth bounds the mask's rounds (blk-1 for a drafted tree); None: n-1, always enough."""
        n = tokens.shape[1]
        ancestors = ancestor_mask(parents, max_depth=n - 1 if max_depth is None else max_depth)  # [bs, n, n]
        depths = ancestors.sum(-1) - 1  # [bs, n]
        return DraftTree(tokens=tokens, parents=parents, depths=depths, positions=seq_lens[:, None] + depths,
                         ancestors=ancestors,
                         scores=scores if scores is not None else torch.zeros(tokens.shape, device=tokens.device))

    @staticmethod
    def make_dummy(tokens: list[list[int]], parents: list[list[int]], seq_lens: list[int] | None = None) -> "DraftTree":
        seq = torch.tensor(seq_lens if seq_lens is not None else [0] * len(tokens))
        return DraftTree.from_parents(torch.tensor(tokens), torch.tensor(parents), seq)


@dataclass(frozen=True)
class TreeAcceptance:
    """The walk's result: the chain's Acceptance, plus which nodes the committed tokens came from."""

    acceptance: Acceptance  # accepted drafts, bonus, out_tokens [bs, blk] as for the chain
    path: torch.Tensor  # [bs, blk] node index of the root and each accepted node; NO_PARENT past them

    @staticmethod
    def make_dummy(paths: list[list[int]], bonus: list[int], tokens: list[list[int]], block_size: int) -> "TreeAcceptance":
        from dflash_sglang.spec.types import PLACEHOLDER_TOKEN_ID

        bs = len(paths)
        path = torch.full((bs, block_size), NO_PARENT)
        out = torch.full((bs, block_size), PLACEHOLDER_TOKEN_ID)
        for b, nodes in enumerate(paths):
            path[b, : len(nodes)] = torch.tensor(nodes)
            for k, node in enumerate(nodes[1:]):
                out[b, k] = tokens[b][node]
            out[b, len(nodes) - 1] = bonus[b]
        accepted = torch.tensor([len(p) - 1 for p in paths])
        return TreeAcceptance(Acceptance(accepted=accepted, bonus=torch.tensor(bonus), out_tokens=out), path)
