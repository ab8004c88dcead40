"""One drafter decoder layer: pre-norm attention and MLP, each wrapped by DFlash2's convolution if any."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from dflash_sglang.config import DFlashConfig
from dflash_sglang.drafter.attention import DrafterAttention
from dflash_sglang.drafter.dflash2 import GroupedDynamicCausalConv
from dflash_sglang.drafter.norm_rope import RMSNorm

# (q [bs, blk, heads, head_dim], block k, v [bs, blk, kv_heads, head_dim]) -> [bs, blk, heads, head_dim].
# The caller binds the context K/V and the mask: plain torch here, SGLang's attention in the adapter.
Attend = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class MLP(nn.Module):
    def __init__(self, config: DFlashConfig) -> None:
        super().__init__()
        hidden, inner = config.hidden_size, config.intermediate_size
        self.gate_proj = nn.Linear(hidden, inner, bias=False)
        self.up_proj = nn.Linear(hidden, inner, bias=False)
        self.down_proj = nn.Linear(inner, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [..., hidden] -> [..., hidden]
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, config: DFlashConfig, layer_index: int) -> None:
        super().__init__()
        self.attention_kind = config.layer_attention[layer_index]
        self.self_attn = DrafterAttention(config)
        self.mlp = MLP(config)
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.attention_conv = self.mlp_conv = None
        if config.is_dflash2:
            conv_shape = (config.hidden_size, config.conv_kernel_size, config.conv_group_size)
            self.attention_conv = GroupedDynamicCausalConv(*conv_shape)
            self.mlp_conv = GroupedDynamicCausalConv(*conv_shape)

    def forward(
        self,
        hidden: torch.Tensor,  # [bs, blk, hidden]
        cos: torch.Tensor,  # [bs, blk, head_dim] at the block's positions
        sin: torch.Tensor,  # [bs, blk, head_dim]
        attend: Attend,
    ) -> torch.Tensor:
        """[bs, blk, hidden] -> [bs, blk, hidden]."""
        x, kernel = _conv_prepare(self.attention_conv, self.input_layernorm(hidden))
        q, k, v = self.self_attn.qkv(x, cos, sin)
        x = self.self_attn.o_proj(attend(q, k, v).flatten(-2))  # [bs, blk, heads * head_dim] -> [bs, blk, hidden]
        hidden = hidden + _conv_finish(self.attention_conv, x, kernel)
        x, kernel = _conv_prepare(self.mlp_conv, self.post_attention_layernorm(hidden))
        return hidden + _conv_finish(self.mlp_conv, self.mlp(x), kernel)


def _conv_prepare(
    conv: GroupedDynamicCausalConv | None, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor | None]:
    return (x, None) if conv is None else conv.prepare(x)


def _conv_finish(conv: GroupedDynamicCausalConv | None, x: torch.Tensor, kernel: torch.Tensor | None) -> torch.Tensor:
    return x if conv is None else conv.finish(x, kernel)
