"""The drafter's training forward: many blocks of a sequence in one pass, under an explicit mask.

It runs our inference `Drafter`'s own pieces (`project_target_features`, `context_kv`, its layers
with an `attend` callback, `norm`), so the trained weights mean the same thing at inference. The
context is the whole sequence's target features; `blocks.block_causal_mask` hides from each block
the context at or after its anchor and every other block, which makes each block's output equal to
an inference forward with the context cut at its anchor (checked in tests/unit/test_training.py).
"""

from __future__ import annotations

from functools import partial

import torch

from dflash_sglang.drafter import Drafter
from dflash_sglang.drafter.attention import attention_core, visible_keys
from dflash_sglang.training.blocks import Blocks, block_causal_mask, make_blocks


def training_forward(
    drafter: Drafter,
    features: torch.Tensor,  # [bs, ctx, n_feat * hidden] target features of the whole sequence
    block_embeds: torch.Tensor,  # [bs, n_blocks * blk, hidden] the embedded blocks
    block_positions: torch.Tensor,  # [bs, n_blocks * blk]
    visible: torch.Tensor,  # [bs, n_blocks * blk, ctx + n_blocks * blk] bool, from block_causal_mask
) -> torch.Tensor:
    """[bs, n_blocks * blk, hidden]: the final-normed hidden states of every block token."""
    bs, ctx = features.shape[:2]
    assert visible.shape == (bs, block_positions.shape[1], ctx + block_positions.shape[1]), visible.shape
    ctx_positions = torch.arange(ctx, device=features.device).expand(bs, ctx)  # [bs, ctx]
    ctx_hidden = drafter.project_target_features(features)  # [bs, ctx, hidden]
    key_positions = torch.cat([ctx_positions, block_positions], dim=1)  # [bs, ctx + n_blocks * blk]
    all_keys = torch.ones_like(key_positions, dtype=torch.bool)  # [bs, ctx + n_blocks * blk]
    cos, sin = drafter.rope(block_positions)  # [bs, n_blocks * blk, head_dim] each
    hidden = block_embeds
    for i, layer in enumerate(drafter.layers):
        # A causal or sliding-window layer hides more keys still, by position, as at inference.
        mask = visible & visible_keys(block_positions, key_positions, all_keys, layer.attention_kind)
        ctx_k, ctx_v = drafter.context_kv(i, ctx_hidden, ctx_positions)  # [bs, ctx, kv_heads, head_dim] each
        hidden = layer(hidden, cos, sin, partial(_attend, ctx_k, ctx_v, mask))
    return drafter.norm(hidden)


def _attend(
    ctx_k: torch.Tensor,  # [bs, ctx, kv_heads, head_dim]
    ctx_v: torch.Tensor,  # [bs, ctx, kv_heads, head_dim]
    visible: torch.Tensor,  # [bs, n_blocks * blk, ctx + n_blocks * blk]
    q: torch.Tensor,  # [bs, n_blocks * blk, heads, head_dim]
    k: torch.Tensor,  # [bs, n_blocks * blk, kv_heads, head_dim]
    v: torch.Tensor,  # [bs, n_blocks * blk, kv_heads, head_dim]
) -> torch.Tensor:
    keys = torch.cat([ctx_k, k], dim=1)  # [bs, ctx + n_blocks * blk, kv_heads, head_dim]
    values = torch.cat([ctx_v, v], dim=1)  # [bs, ctx + n_blocks * blk, kv_heads, head_dim]
    return attention_core(q, keys, values, visible)


def inference_forward(
    drafter: Drafter,
    features: torch.Tensor,  # [1, ctx, n_feat * hidden]
    block_embeds: torch.Tensor,  # [1, blk, hidden] one block
    anchor: int,
) -> torch.Tensor:
    """[1, blk, hidden]: one block the way inference runs it (context = features before the anchor)."""
    context = drafter.new_context(1)
    drafter.extend_context(context, features[:, :anchor], torch.arange(anchor)[None])
    positions = anchor + torch.arange(block_embeds.shape[1])[None]  # [1, blk]
    return drafter(block_embeds, positions, context)


def block_logits(
    drafter: Drafter, target, tokens: torch.Tensor, features: torch.Tensor, anchors: torch.Tensor, block_size: int
) -> tuple[torch.Tensor, Blocks]:
    """tokens [bs, seq], features [bs, seq, n_feat * hidden], anchors [bs, n_blocks] -> (the drafter's
    logits at every block's mask positions [bs, n_blocks, blk - 1, vocab], the blocks); `target` is a
    `FrozenTarget` (its embedding and head)."""
    bs, n_blocks = anchors.shape
    blocks = make_blocks(tokens, anchors, block_size, drafter.config.mask_token_id)
    embeds = drafter.embed_block(blocks.ids, target.embed_weight)  # [bs, n_blocks * blk, hidden]
    visible = block_causal_mask(anchors, tokens.shape[1], block_size)
    hidden = training_forward(drafter, features, embeds, blocks.positions, visible)
    hidden = hidden.view(bs, n_blocks, block_size, -1)[:, :, 1:]  # [bs, n_blocks, blk - 1, hidden]
    return drafter.compute_logits(hidden, target.lm_head_weight), blocks
