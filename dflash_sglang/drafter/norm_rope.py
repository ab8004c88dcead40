"""RMSNorm and rotary position embedding (default and llama3 frequencies), as Qwen3 computes them."""

from __future__ import annotations

import math

import torch
from torch import nn

from dflash_sglang.config import RopeParams


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))  # [dim]
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [..., dim] -> [..., dim]
        # Statistics in fp32, the product in the input dtype: Qwen3's order, so bf16 rounds alike.
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(x.dtype)


def rope_inv_freq(rope: RopeParams, head_dim: int) -> torch.Tensor:
    """[head_dim // 2] fp32 inverse frequencies."""
    exponents = torch.arange(0, head_dim, 2, dtype=torch.int64, device="cpu").float() / head_dim
    inv_freq = 1.0 / (rope.theta**exponents)
    if rope.rope_type == "default":
        return inv_freq
    assert rope.rope_type == "llama3", rope.rope_type
    # Llama 3.1's smoothing: long wavelengths slowed by `factor`, short ones kept, a ramp between.
    old_len = rope.original_max_position_embeddings
    low_wavelen = old_len / rope.low_freq_factor
    high_wavelen = old_len / rope.high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    scaled = torch.where(wavelen > low_wavelen, inv_freq / rope.factor, inv_freq)
    smooth = (old_len / wavelen - rope.low_freq_factor) / (rope.high_freq_factor - rope.low_freq_factor)
    smoothed = (1 - smooth) * scaled / rope.factor + smooth * scaled
    is_medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
    return torch.where(is_medium, smoothed, scaled)


class RotaryEmbedding:
    """cos/sin at absolute positions. Not a module: `inv_freq` must stay fp32 when the model is cast."""

    def __init__(self, rope: RopeParams, head_dim: int) -> None:
        self.inv_freq = rope_inv_freq(rope, head_dim)  # [head_dim // 2] fp32, on the CPU
        # One copy per device, made on first use: no host-to-device copy inside a captured graph.
        self._inv_freq_on: dict[torch.device, torch.Tensor] = {}

    def __call__(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """positions [...] -> (cos, sin), each [..., head_dim] in `dtype`."""
        inv_freq = self._inv_freq_on.get(positions.device)
        if inv_freq is None:
            inv_freq = self._inv_freq_on.setdefault(positions.device, self.inv_freq.to(positions.device))
        freqs = positions[..., None].float() * inv_freq  # [..., head_dim // 2]
        angles = torch.cat((freqs, freqs), dim=-1)  # [..., head_dim]
        return angles.cos().to(dtype), angles.sin().to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:  # [..., head_dim] -> [..., head_dim]
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [..., tokens, heads, head_dim]; cos, sin [..., tokens, head_dim] -> like x."""
    cos, sin = cos.unsqueeze(-2), sin.unsqueeze(-2)  # [..., tokens, 1, head_dim]
    return (x * cos) + (rotate_half(x) * sin)
