"""KV-injection attention: the block's queries attend to the context's K/V and the block's own.

Both K/V come from the same `k_proj`/`v_proj` (then `k_norm`, RoPE at absolute positions): for the
context they project the target features (after `fc` + `hidden_norm`), for the block its hidden
states. Which keys a query sees depends on the layer (`LayerAttention`): non-causal full layers see
everything, causal sliding layers see the past `window` positions, non-causal sliding layers see
`window` positions on both sides.

The pieces are separate so that an SGLang model can keep the context K/V in its KV cache
(`context_kv`), compute the block's (`qkv`) and swap in its own attention core for `attend`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dflash_sglang.config import DFlashConfig, LayerAttention
from dflash_sglang.drafter.norm_rope import RMSNorm, apply_rope


class DrafterAttention(nn.Module):
    def __init__(self, config: DFlashConfig) -> None:
        super().__init__()
        self.num_heads = config.num_heads
        self.num_kv_heads = config.num_kv_heads
        self.head_dim = config.head_dim
        hidden, bias = config.hidden_size, config.attention_bias
        self.q_proj = nn.Linear(hidden, self.num_heads * self.head_dim, bias=bias)
        self.k_proj = nn.Linear(hidden, self.num_kv_heads * self.head_dim, bias=bias)
        self.v_proj = nn.Linear(hidden, self.num_kv_heads * self.head_dim, bias=bias)
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, hidden, bias=bias)
        self.q_norm = RMSNorm(self.head_dim, config.rms_norm_eps)
        self.k_norm = RMSNorm(self.head_dim, config.rms_norm_eps)

    def context_kv(
        self, hidden: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """hidden [..., n, hidden]; cos, sin [..., n, head_dim] -> k, v [..., n, kv_heads, head_dim]."""
        k = self.k_norm(self.k_proj(hidden).unflatten(-1, (self.num_kv_heads, self.head_dim)))
        v = self.v_proj(hidden).unflatten(-1, (self.num_kv_heads, self.head_dim))
        return apply_rope(k, cos, sin), v

    def qkv(
        self, hidden: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The block's hidden [..., blk, hidden] -> q [..., blk, heads, head_dim],
        k, v [..., blk, kv_heads, head_dim] (computed as for the context)."""
        q = self.q_norm(self.q_proj(hidden).unflatten(-1, (self.num_heads, self.head_dim)))
        k, v = self.context_kv(hidden, cos, sin)
        return apply_rope(q, cos, sin), k, v


def visible_keys(
    query_positions: torch.Tensor,  # [bs, blk]
    key_positions: torch.Tensor,  # [bs, keys]
    key_valid: torch.Tensor,  # [bs, keys] bool: False for padding
    kind: LayerAttention,
) -> torch.Tensor:
    """[bs, blk, keys] bool: which keys each block query attends to."""
    distance = query_positions[:, :, None] - key_positions[:, None, :]  # [bs, blk, keys] q - k
    visible = key_valid[:, None, :].expand_as(distance)  # [bs, blk, keys]
    if kind.causal:
        visible = visible & (distance >= 0)
    if kind.window is not None:
        visible = visible & (distance < kind.window)
        if not kind.causal:
            visible = visible & (-distance < kind.window)
    return visible


def attention_core(
    q: torch.Tensor,  # [bs, blk, heads, head_dim]
    k: torch.Tensor,  # [bs, keys, kv_heads, head_dim]
    v: torch.Tensor,  # [bs, keys, kv_heads, head_dim]
    visible: torch.Tensor,  # [bs, blk, keys] bool
) -> torch.Tensor:
    """Scaled dot-product attention with grouped K/V heads -> [bs, blk, heads, head_dim]."""
    groups = q.shape[2] // k.shape[2]
    k = k.repeat_interleave(groups, dim=2)  # [bs, keys, heads, head_dim]; query head h reads kv head h // groups
    v = v.repeat_interleave(groups, dim=2)  # [bs, keys, heads, head_dim]
    out = F.scaled_dot_product_attention(
        q.transpose(1, 2),  # [bs, heads, blk, head_dim]
        k.transpose(1, 2),  # [bs, heads, keys, head_dim]
        v.transpose(1, 2),  # [bs, heads, keys, head_dim]
        attn_mask=visible[:, None],  # [bs, 1, blk, keys]
        scale=q.shape[-1] ** -0.5,
    )  # [bs, heads, blk, head_dim]
    return out.transpose(1, 2)
