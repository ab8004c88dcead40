"""One draw from each row of a categorical distribution, by inverting its cumulative sum.

Every sampled token of ours (the target's token in a plain run, the drafts from q, the accepted count,
the residual's token, the tree branches) is such a draw: one uniform per row and a binary search, no host
sync. `torch.multinomial` was the slow part of our sampling here: on this 2-core CPU it took 0.13 ms per row
at the bundled pair's vocabulary of 4,096 and 3.8 ms at Qwen3's 151,936, against 0.017 ms and 0.16 ms
inverted (2026-12-01, one thread). At 8 requests a block of drafts is 56 rows: 5.8 ms of multinomial per
step on the bundled pair.

Exactness: on CPU, torch's cumsum accumulates in double and rounds each partial sum once (the largest error
against a float64 cumsum was 6e-8 at both vocabularies), so a token's probability, the difference of two
partial sums, is off by about 1e-7, below the float32 softmax's own error. On CUDA the scan accumulates in
float32, with an error of the same order times log2(vocab).
"""

from __future__ import annotations

import torch


def draw(probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """probs [..., vocab] non-negative weights with a positive sum per row -> [...] int64: index i with
    probability probs[i] / sum. A zero-weight index is never drawn."""
    cdf = probs.cumsum(dim=-1)  # [..., vocab]
    total = cdf[..., -1:]  # [..., 1]
    uniform = torch.rand(total.shape, generator=generator, dtype=cdf.dtype, device=cdf.device)  # [..., 1]
    # u < total strictly: then the first entry whose cdf exceeds u exists, and a cdf that rises there is a
    # positive weight. float32 uniforms (at most 1 - 2**-24) times total round below total; a half-precision
    # row's could round up to it
    u = torch.minimum(uniform * total, torch.nextafter(total, torch.zeros_like(total)))  # [..., 1]
    return torch.searchsorted(cdf, u, right=True).squeeze(-1)  # [...]
