"""Speculative sampling with the drafter's own distribution (Leviathan et al. 2023, Chen et al. 2023).

At block position k the draft d_k is drawn from q_k, the drafter's distribution processed like the
target's (temperature, top-k, top-p, min-p). The target's processed distribution p_k after the
accepted prefix accepts it with probability min(1, p_k(d_k) / q_k(d_k)); the first rejected position
emits a sample of the normalised residual max(0, p_k - q_k), and a fully accepted block emits a bonus
sample of p at the last position. The emitted tokens are distributed as the target's for any q, and a
draft is accepted with probability 1 - TV(p_k, q_k) instead of p_k(argmax q_k).

The sampler draws the number of accepted drafts n from its exact distribution, then the emitted token
from the residual at n; `outcome_probs` is their joint law, which the unit tests check by enumeration.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dflash_sglang.spec.accept import commit_tokens
from dflash_sglang.spec.categorical import draw
from dflash_sglang.spec.types import Acceptance, Candidates


@dataclass(frozen=True)
class RejectionInput:
    """What the rule reads for one step: the drafts, q at the draft positions, p at every position."""

    drafts: torch.Tensor  # [bs, blk-1] drawn from draft_probs
    draft_probs: torch.Tensor  # [bs, blk-1, vocab] q_k, processed
    target_probs: torch.Tensor  # [bs, blk, vocab] p_k after anchor, d_1 .. d_k, processed

    @staticmethod
    def make_dummy(drafts: list[list[int]], draft_probs: list[list[list[float]]],
                   target_probs: list[list[list[float]]]) -> "RejectionInput":
        return RejectionInput(torch.tensor(drafts), torch.tensor(draft_probs), torch.tensor(target_probs))


def acceptance_probability(
    p_draft: torch.Tensor,  # [...] p_k(d_k)
    q_draft: torch.Tensor,  # [...] q_k(d_k) > 0 where d_k was drawn from q_k
) -> torch.Tensor:  # [...] min(1, p/q)
    return (p_draft / q_draft.clamp_min(torch.finfo(q_draft.dtype).tiny)).clamp(max=1.0)


def residual_distribution(
    p: torch.Tensor,  # [..., vocab]
    q: torch.Tensor,  # [..., vocab]
) -> torch.Tensor:  # [..., vocab] norm(max(0, p - q))
    residual = (p - q).clamp_min(0.0)
    mass = residual.sum(dim=-1, keepdim=True)
    # mass is 0 only where p == q, and there a rejection has probability 0: p keeps rows valid.
    return torch.where(mass > 0, residual / mass.clamp_min(torch.finfo(p.dtype).tiny), p)


def accepted_count_probs(inputs: RejectionInput) -> torch.Tensor:  # [bs, blk]
    """[i, n]: probability that request i accepts exactly n drafts (then emits one residual token)."""
    p, q = inputs.target_probs.float(), inputs.draft_probs.float()
    index = inputs.drafts[..., None].long()  # [bs, blk-1, 1]
    alpha = acceptance_probability(p[:, :-1].gather(-1, index)[..., 0], q.gather(-1, index)[..., 0])  # [bs, blk-1]
    ones = alpha.new_ones(alpha.shape[0], 1)
    reach = torch.cat([ones, alpha.cumprod(dim=1)], dim=1)  # [bs, blk] P(first n drafts accepted)
    stop = torch.cat([1.0 - alpha, ones], dim=1)  # [bs, blk] P(draft n+1 rejected | reached); none left: 1
    return reach * stop


def residual_at(inputs: RejectionInput, accepted: torch.Tensor) -> torch.Tensor:  # [bs, vocab]
    """The emitted token's distribution after `accepted` [bs] drafts: norm(max(0, p - q)), or p after all."""
    bs, blk, vocab = inputs.target_probs.shape
    index = accepted.long()[:, None, None].expand(bs, 1, vocab)  # [bs, 1, vocab]
    p = inputs.target_probs.float().gather(1, index)[:, 0]  # [bs, vocab]
    q_padded = torch.cat([inputs.draft_probs.float(), p.new_zeros(bs, 1, vocab)], dim=1)  # after a full block: p
    return residual_distribution(p, q_padded.gather(1, index)[:, 0])


def outcome_probs(inputs: RejectionInput) -> torch.Tensor:  # [bs, blk, vocab]
    """[i, n, t]: probability that request i accepts exactly n drafts and then emits token t."""
    bs, blk, _ = inputs.target_probs.shape
    counts = accepted_count_probs(inputs)  # [bs, blk]
    residuals = torch.stack([residual_at(inputs, counts.new_full((bs,), n, dtype=torch.long))
                             for n in range(blk)], dim=1)  # [bs, blk, vocab]
    return counts[..., None] * residuals


def accept_by_rejection(inputs: RejectionInput, generator: torch.Generator | None = None) -> Acceptance:
    """Draws n from accepted_count_probs, then the emitted token from the residual at n: the joint law is
    outcome_probs, without materialising a residual at every block position."""
    accepted = draw(accepted_count_probs(inputs), generator)  # [bs]
    bonus = draw(residual_at(inputs, accepted), generator)  # [bs]
    return Acceptance(accepted=accepted, bonus=bonus, out_tokens=commit_tokens(inputs.drafts, accepted, bonus))


def rejection_input(candidates: Candidates, target_probs: torch.Tensor) -> RejectionInput:
    assert candidates.draft_probs is not None, "the rejection rule needs the drafter's distribution"
    return RejectionInput(candidates.tokens[:, 1:], candidates.draft_probs, target_probs)
