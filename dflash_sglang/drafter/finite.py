"""A drafter whose weights (or activations) hold NaN or Inf must not change the output: the target decides
every token, so such a drafter only costs acceptance.

A row of draft logits with any non-finite value becomes all zeros: the uniform distribution, a valid q for
speculative sampling (lossless for any q), and argmax token 0 for a greedy draft. Without this, sampled
requests draw from softmax(NaN) (a NaN cumulative sum) and the rejection test divides by NaN. Elementwise,
no host sync, so the draft pass stays graph-capturable.
"""

from __future__ import annotations

import torch
from torch import nn


def finite_draft_logits(logits: torch.Tensor) -> torch.Tensor:
    """logits [..., vocab] -> the same, each row holding a NaN or ±Inf replaced by zeros."""
    finite_rows = torch.isfinite(logits).all(dim=-1, keepdim=True)  # [..., 1]
    return torch.where(finite_rows, logits, torch.zeros((), dtype=logits.dtype, device=logits.device))


def nonfinite_parameters(module: nn.Module) -> list[str]:
    """Names of the parameters holding a NaN or ±Inf (checked once, at load)."""
    return [name for name, p in module.named_parameters() if not bool(torch.isfinite(p).all())]
