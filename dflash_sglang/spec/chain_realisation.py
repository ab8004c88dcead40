"""What chains of each width really commit, per unit of their estimate (budget_estimate.py).

The chain estimate E(W) multiplies per-draft acceptance chances as if the drafts of one block were
accepted independently. They are not: a block the drafter reads right tends to be accepted throughout,
one it misreads tends to fail early. So E(W) is biased, more so the longer the chain, high or low
depending on the mix of blocks (on a synthetic easy/hard mix it ran 9 % high; this file's test), and the
controller misjudges the full chain against short chains and plain decoding (2026-11-30 sweep: `auto`
at c=1 decoded plainly in 10 % of its steps and reached 0.91x the fixed chain).

One verified chain of width V tells what every narrower chain would have committed on the same block:
min(accepted, W-1) + 1 for W <= V (the target's tokens decide draft by draft, left to right; for sampled
rows the rule's draws make this hold in distribution). So every chain step measures all widths up to
its own, and the factor per width is a ratio of decayed sums: committed over estimated, shrunk towards 1
while little is known.
"""

from __future__ import annotations

import torch


class ChainRealisation:
    def __init__(self, block_size: int, decay: float = 0.98, prior_tokens: float = 8.0) -> None:
        self.decay = decay
        self.prior_tokens = prior_tokens  # pseudo-tokens at factor 1 in every width's sums
        self.committed = torch.zeros(block_size, dtype=torch.float64)  # [blk] width W at index W-1
        self.estimated = torch.zeros(block_size, dtype=torch.float64)  # [blk]

    def factors(self) -> torch.Tensor:  # [blk] committed / estimated per width; 1 for plain decoding
        m = self.prior_tokens
        return (self.committed + m) / (self.estimated + m)

    def __call__(self, per_request: torch.Tensor) -> torch.Tensor:
        """[bs, blk] estimated E(W) -> the same, corrected by what each width realised."""
        return per_request * self.factors().to(per_request.device, per_request.dtype)[None, :]

    def observe(self, per_request: torch.Tensor, accepted: torch.Tensor, width: int) -> None:
        """per_request [bs, blk]: the uncorrected estimate; accepted [bs]: drafts a chain of `width` accepted."""
        widths = torch.arange(1, width + 1, dtype=torch.float64)  # [width] W = 1 .. width
        would_commit = torch.minimum(accepted.cpu().double()[:, None], widths[None, :] - 1) + 1  # [bs, width]
        self.committed[:width] = self.decay * self.committed[:width] + would_commit.sum(dim=0)
        self.estimated[:width] = self.decay * self.estimated[:width] + per_request[:, :width].cpu().double().sum(0)

    def describe(self) -> str:
        return " ".join(f"{w}:{f:.2f}" for w, f in enumerate(self.factors().tolist(), start=1))
