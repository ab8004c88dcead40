"""Typed inputs and outputs of one speculative step. Tensors and ints only; each has `make_dummy`."""

from __future__ import annotations

from dataclasses import dataclass

import torch

PLACEHOLDER_TOKEN_ID = -1  # fills block slots past a request's committed tokens


@dataclass(frozen=True)
class DraftBlock:
    """The drafter's input for one step: `[anchor, MASK x (blk-1)]` per request."""

    block_ids: torch.Tensor  # [bs, blk] anchor then mask tokens
    positions: torch.Tensor  # [bs, blk] absolute positions seq_len .. seq_len+blk-1
    seq_lens: torch.Tensor  # [bs] committed tokens (context) before the block

    @property
    def batch_size(self) -> int:
        return self.block_ids.shape[0]

    @property
    def block_size(self) -> int:
        return self.block_ids.shape[1]

    @staticmethod
    def make_dummy(anchors: list[int], seq_lens: list[int], block_size: int, mask_token_id: int = 2) -> "DraftBlock":
        from dflash_sglang.spec.block import make_draft_block

        return make_draft_block(torch.tensor(anchors), torch.tensor(seq_lens), block_size, mask_token_id)


@dataclass(frozen=True)
class Candidates:
    """The drafted block the target verifies: the anchor followed by blk-1 draft tokens."""

    tokens: torch.Tensor  # [bs, blk] anchor, d_1 .. d_{blk-1}
    positions: torch.Tensor  # [bs, blk]
    draft_logits: torch.Tensor | None = None  # [bs, blk-1, vocab] the drafter's, for sampled requests
    draft_probs: torch.Tensor | None = None  # [bs, blk-1, vocab] q_k the drafts were drawn from (processed)

    @staticmethod
    def make_dummy(rows: list[list[int]], seq_lens: list[int] | None = None) -> "Candidates":
        tokens = torch.tensor(rows)
        seq_lens_t = torch.tensor(seq_lens if seq_lens is not None else [0] * len(rows))
        positions = seq_lens_t[:, None] + torch.arange(tokens.shape[1])[None, :]
        return Candidates(tokens=tokens, positions=positions)


@dataclass(frozen=True)
class Verification:
    """What the target says about the candidates: its own token at every block position.

    `posterior[:, k]` is the target's token after `tokens[:, :k+1]`: argmax for greedy requests,
    a sample from the request's processed distribution otherwise.
    """

    posterior: torch.Tensor  # [bs, blk]

    @staticmethod
    def make_dummy(rows: list[list[int]]) -> "Verification":
        return Verification(posterior=torch.tensor(rows))


@dataclass(frozen=True)
class Acceptance:
    """The accept decision for every request of the batch."""

    accepted: torch.Tensor  # [bs] draft tokens accepted, 0..blk-1
    bonus: torch.Tensor  # [bs] the target's token at the first rejected position
    out_tokens: torch.Tensor  # [bs, blk] accepted drafts, then the bonus, then PLACEHOLDER

    @property
    def acceptance_lengths(self) -> torch.Tensor:
        """Tokens this step commits per request: accepted drafts plus the bonus token."""
        return self.accepted + 1  # [bs]

    @staticmethod
    def make_dummy(accepted: list[int], bonus: list[int], block_size: int) -> "Acceptance":
        out = torch.full((len(accepted), block_size), PLACEHOLDER_TOKEN_ID)
        for row, (n, b) in enumerate(zip(accepted, bonus)):
            out[row, n] = b
        return Acceptance(accepted=torch.tensor(accepted), bonus=torch.tensor(bonus), out_tokens=out)
