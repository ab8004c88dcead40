"""Which accept rule a step uses, per request: greedy requests take the exact argmax path; sampled
requests take speculative sampling with the drafter's distribution (`rejection`), or the point-mass
rule (`point-mass`: drafts are the drafter's argmax and accepted iff equal to a sample of p), which
is kept as a named option so that benchmarks can measure what the drafter's distribution buys.

A batch of greedy requests only costs argmaxes: no softmax of the drafter's or the target's logits.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from dflash_sglang.spec.accept import accept
from dflash_sglang.spec.categorical import draw
from dflash_sglang.spec.posterior import SamplingParams, posterior_tokens, processed_probs
from dflash_sglang.spec.rejection import accept_by_rejection, rejection_input
from dflash_sglang.spec.types import Acceptance, Candidates, Verification

REJECTION = "rejection"
POINT_MASS = "point-mass"
SAMPLING_RULES = (REJECTION, POINT_MASS)


def _uses_rejection(params: SamplingParams, rule: str) -> bool:
    assert rule in SAMPLING_RULES, rule
    return rule == REJECTION and not params.all_greedy


def _greedy_rows(params: SamplingParams, device: torch.device) -> torch.Tensor:  # [bs] bool
    return params.top_ks.to(device) <= 1


def draw_drafts(candidates: Candidates, params: SamplingParams, rule: str,
                generator: torch.Generator | None = None) -> Candidates:
    """Sampled requests' drafts drawn from the drafter's processed distribution; greedy rows keep the
    drafter's own choice (its argmax, or DFlash2's selector)."""
    if not _uses_rejection(params, rule):
        return candidates
    assert candidates.draft_logits is not None, "the drafter must return its logits for sampled requests"
    q = processed_probs(candidates.draft_logits, params)  # [bs, blk-1, vocab]
    sampled = draw(q, generator).to(candidates.tokens.dtype)  # [bs, blk-1]
    greedy = _greedy_rows(params, sampled.device)[:, None]  # [bs, 1]
    drafts = torch.where(greedy, candidates.tokens[:, 1:], sampled)  # [bs, blk-1]
    tokens = torch.cat([candidates.tokens[:, :1], drafts], dim=1)  # [bs, blk]
    return replace(candidates, tokens=tokens, draft_probs=q)


def accept_verified(candidates: Candidates, target_logits: torch.Tensor, params: SamplingParams, rule: str,
                    generator: torch.Generator | None = None) -> Acceptance:
    """target_logits [bs, blk, vocab] after each prefix of the candidates -> the accept decision."""
    if not _uses_rejection(params, rule):
        return accept(candidates, Verification(posterior=posterior_tokens(target_logits, params, generator)))
    p = processed_probs(target_logits, params)  # [bs, blk, vocab]
    sampled = accept_by_rejection(rejection_input(candidates, p), generator)
    greedy = accept(candidates, Verification(posterior=target_logits.argmax(dim=-1)))
    rows = _greedy_rows(params, target_logits.device)  # [bs]
    return Acceptance(
        accepted=torch.where(rows, greedy.accepted, sampled.accepted),
        bonus=torch.where(rows, greedy.bonus, sampled.bonus),
        out_tokens=torch.where(rows[:, None], greedy.out_tokens, sampled.out_tokens),
    )
