"""Expected committed tokens per verify width, from the drafter's own probabilities, calibrated online.

A verify width W is how many block tokens per request the target checks: the anchor and the first W-1
drafts (W = 1 is plain decoding). Draft k is committed only if every draft before it was, so with
a_k the chance that draft k is accepted once reached, a chain of width W commits in expectation

    E(W) = 1 + sum_{k=1}^{W-1} prod_{j<=k} a_j          (the 1 is the bonus token)

The drafter's *score* for draft k is the probability it gave its own draft: its max probability for
greedy rows, q_k(d_k) for sampled rows. Scores are over-confident or under-confident depending on the
drafter and the request, so `AcceptanceCalibration` maps them to acceptance rates measured on the
positions the target actually verified: per score bin, a decayed count of verified drafts and of
accepted ones, shrunk towards the bin's score while a bin has little data. Greedy and sampled rows
accept at different rates for the same score (a sample must match), so each has its own table.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dflash_sglang.spec.types import Candidates


def draft_scores(candidates: Candidates, greedy_rows: torch.Tensor) -> torch.Tensor:  # [bs, blk-1]
    """The drafter's probability of each of its drafts: softmax of its logits for greedy rows (`greedy_rows`
    [bs] bool), the processed q_k it sampled from for the others."""
    assert candidates.draft_logits is not None, "the drafter must return its logits for the budget"
    drafts = candidates.tokens[:, 1:, None].long()  # [bs, blk-1, 1]
    logits = candidates.draft_logits.float()  # [bs, blk-1, vocab]
    greedy = (logits.gather(-1, drafts)[..., 0] - torch.logsumexp(logits, dim=-1)).exp()  # [bs, blk-1]
    if candidates.draft_probs is None:
        return greedy
    sampled = candidates.draft_probs.float().gather(-1, drafts)[..., 0]  # [bs, blk-1]
    return torch.where(greedy_rows.to(greedy.device)[:, None], greedy, sampled)


def chain_expected_tokens(accept_probs: torch.Tensor) -> torch.Tensor:
    """[bs, blk-1] acceptance chance of each draft once reached -> [bs, blk] E(W) for W = 1 .. blk."""
    reach = accept_probs.clamp(0.0, 1.0).cumprod(dim=1)  # [bs, blk-1] P(drafts 1..k all accepted)
    zero = reach.new_zeros(reach.shape[0], 1)
    return 1.0 + torch.cat([zero, reach.cumsum(dim=1)], dim=1)  # [bs, blk]


def verified_outcomes(accepted: torch.Tensor, width: int, num_drafts: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Which drafts the target judged ([bs, num_drafts] bool: reached and inside the width) and which of
    those it accepted, for `accepted` [bs] drafts accepted by a chain of `width`."""
    k = torch.arange(num_drafts, device=accepted.device)[None, :]  # [1, num_drafts] draft k+1
    judged = (k < width - 1) & (k <= accepted[:, None])  # every draft up to the first rejection
    return judged, judged & (k < accepted[:, None])


@dataclass(frozen=True)
class CalibrationSettings:
    bins: int = 10  # equal-width score bins on [0, 1]
    decay: float = 0.995  # per observed step: old evidence fades, so a change of regime shows
    prior_weight: float = 4.0  # pseudo-observations at the bin's own score


class AcceptanceCalibration:
    """Score -> acceptance chance for one kind of row (greedy or sampled); see the module docstring."""

    def __init__(self, settings: CalibrationSettings = CalibrationSettings()) -> None:
        self.settings = settings
        self.judged = torch.zeros(settings.bins, dtype=torch.float64)  # [bins] decayed counts
        self.accepted = torch.zeros(settings.bins, dtype=torch.float64)  # [bins]
        self.centers = (torch.arange(settings.bins, dtype=torch.float64) + 0.5) / settings.bins  # [bins]

    def _bin(self, scores: torch.Tensor) -> torch.Tensor:
        return (scores.float().cpu() * self.settings.bins).long().clamp(0, self.settings.bins - 1)

    def rates(self) -> torch.Tensor:  # [bins]
        w = self.settings.prior_weight
        return (self.accepted + w * self.centers) / (self.judged + w)

    def __call__(self, scores: torch.Tensor) -> torch.Tensor:
        """scores [...] -> calibrated acceptance chances [...] (float32, on the scores' device)."""
        return self.rates().float()[self._bin(scores)].to(scores.device)

    def describe(self) -> str:
        rates = self.rates().tolist()
        return " ".join(f"{c:.2f}->{r:.2f}({n:.0f})" for c, r, n in zip(self.centers.tolist(), rates,
                                                                       self.judged.tolist()))

    def observe(self, scores: torch.Tensor, judged: torch.Tensor, accepted: torch.Tensor) -> None:
        """scores, judged, accepted [...] for one step's drafts (see `verified_outcomes`)."""
        bins = self._bin(scores)
        judged, accepted = judged.cpu(), accepted.cpu()
        self.judged *= self.settings.decay
        self.accepted *= self.settings.decay
        self.judged.index_add_(0, bins[judged], torch.ones(int(judged.sum()), dtype=torch.float64))
        self.accepted.index_add_(0, bins[accepted], torch.ones(int(accepted.sum()), dtype=torch.float64))


class RowCalibration:
    """One table for greedy rows and one for sampled rows of the same batch."""

    def __init__(self, settings: CalibrationSettings = CalibrationSettings()) -> None:
        self.greedy = AcceptanceCalibration(settings)
        self.sampled = AcceptanceCalibration(settings)

    def __call__(self, scores: torch.Tensor, greedy_rows: torch.Tensor) -> torch.Tensor:  # [bs, blk-1]
        rows = greedy_rows.to(scores.device)[:, None]  # [bs, 1]
        return torch.where(rows, self.greedy(scores), self.sampled(scores))

    def observe(self, scores: torch.Tensor, greedy_rows: torch.Tensor, accepted: torch.Tensor, width: int) -> None:
        """scores [bs, blk-1], greedy_rows [bs] bool, accepted [bs] by a chain of `width`."""
        judged, hits = verified_outcomes(accepted, width, scores.shape[1])  # [bs, blk-1] each
        greedy = greedy_rows.to(judged.device)
        for table, rows in ((self.greedy, greedy), (self.sampled, ~greedy)):
            if bool(rows.any()):
                table.observe(scores[rows], judged[rows], hits[rows])


def chain_commits_on_walked_block(out_tokens: torch.Tensor, chain_drafts: torch.Tensor) -> torch.Tensor:  # [bs]
    """What the chain of `chain_drafts` [bs, blk-1] would have committed on a block a tree walked, from the
    walk's tokens `out_tokens` [bs, blk] (accepted path, then the bonus token, then placeholders).

    The walk follows the target's token from the root, so the target's token after the path's first j
    tokens is out_tokens[:, j]: a chain accepts draft j+1 iff all before it were and it equals that token.
    Exact while the chain stays on the walked path. A chain matching through the bonus token left the
    tree (which misses the chain's deepest drafts when siblings near the root are likelier); its tokens
    past that are unknown and counted as stopping there, a lower bound."""
    drafts = chain_drafts.shape[1]
    match = (chain_drafts == out_tokens[:, :drafts].to(chain_drafts.device)).int().cumprod(dim=1)  # [bs, blk-1]
    return match.sum(dim=1) + 1


class TreeGain:
    """Trees of N tokens per request: what they committed over what the chain of the drafter's argmax drafts would have
    committed on the same blocks (`chain_commits_on_walked_block`), both summed with decay; the gain multiplies
    the chain's expected tokens of greedy rows. Paired on the same blocks, because the steps a tree runs are not
    a random sample: `auto` picks trees where the chain's estimate looks good, and against the estimate (or
    against what chain steps committed elsewhere) a tree's gain read 1.28-1.45 on this CPU's greedy traffic, and
    `auto` verified trees of 16 in ~40 % of the steps of its first 16 requests, which took 1.28-1.38x the fixed
    chain's time (2026-12-01, c=1). Greedy rows only: a sampled row's chain draws its drafts from q and accepts
    by speculative sampling, which no tree walk replays, so a tree counts no gain there. A ratio of sums, not a
    mean of per-step ratios: a step's ratio swings with its block, and the mean of such ratios sits above the
    ratio of the means. A tree never run has gain 1: warm-up and exploration run each once, and a tree is chosen
    only when what it adds pays for its verify tokens."""

    def __init__(self, widths: tuple[int, ...], decay: float = 0.9) -> None:
        self.decay = decay
        self._committed: dict[int, float] = {w: 0.0 for w in widths}
        self._chain_committed: dict[int, float] = {w: 0.0 for w in widths}

    @property
    def gain(self) -> dict[int, float | None]:
        """Tree width -> its gain over the chain on the same blocks (None: never run on a greedy row)."""
        return {w: (c / self._chain_committed[w] if self._chain_committed[w] > 0 else None)
                for w, c in self._committed.items()}

    def expected(self, chain_full: float, chain_full_greedy: float) -> dict[int, float]:
        """The batch's expected tokens with the full chain, all rows and greedy rows -> width -> the tree's."""
        return {w: chain_full + (0.0 if g is None else g - 1.0) * chain_full_greedy for w, g in self.gain.items()}

    def observe(self, width: int, committed: float, chain_committed: float) -> None:
        """Over one tree step's greedy rows: tokens the tree committed, and the chain would have."""
        if width not in self._committed or chain_committed <= 0:
            return
        self._committed[width] = self.decay * self._committed[width] + committed
        self._chain_committed[width] = self.decay * self._chain_committed[width] + chain_committed
