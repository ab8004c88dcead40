"""Building the drafter's block `[anchor, MASK x (blk-1)]` at absolute positions."""

from __future__ import annotations

import torch

from dflash_sglang.spec.types import DraftBlock


def make_draft_block(
    anchors: torch.Tensor,  # [bs] last verified token per request (the previous bonus token)
    seq_lens: torch.Tensor,  # [bs] committed tokens before the anchor
    block_size: int,
    mask_token_id: int,
) -> DraftBlock:
    bs = anchors.shape[0]
    block_ids = torch.full((bs, block_size), mask_token_id, dtype=torch.long, device=anchors.device)
    block_ids[:, 0] = anchors
    offsets = torch.arange(block_size, device=anchors.device, dtype=seq_lens.dtype)
    positions = seq_lens[:, None] + offsets[None, :]  # [bs, blk]
    return DraftBlock(block_ids=block_ids, positions=positions, seq_lens=seq_lens)
