"""A drafter with NaN/Inf: its non-finite draft logit rows become uniform, so sampled drafts can be drawn
and the target's accept decision stays exact (drafter/finite.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dflash_sglang.drafter.finite import finite_draft_logits, nonfinite_parameters
from dflash_sglang.spec.posterior import SamplingParams
from dflash_sglang.spec.rules import REJECTION, accept_verified, draw_drafts
from dflash_sglang.spec.types import Candidates

VOCAB = 11


def _broken_logits() -> torch.Tensor:  # [bs=2, blk-1=3, vocab]
    logits = torch.randn(2, 3, VOCAB, generator=torch.Generator().manual_seed(0))
    logits[0, 1, 4] = float("nan")
    logits[1, 2, 0] = float("inf")
    logits[1, 0, 7] = float("-inf")
    return logits


def test_only_nonfinite_rows_become_uniform():
    logits = _broken_logits()
    fixed = finite_draft_logits(logits)
    assert torch.isfinite(fixed).all()
    for row in ((0, 1), (1, 2), (1, 0)):
        assert torch.equal(fixed[row], torch.zeros(VOCAB))
    for row in ((0, 0), (0, 2), (1, 1)):
        assert torch.equal(fixed[row], logits[row])


def _sampled_step(draft_logits: torch.Tensor):
    params = SamplingParams.make_dummy([1.0, 1.0])
    candidates = Candidates(tokens=torch.tensor([[3, 0, 0, 0], [5, 0, 0, 0]]),
                            positions=torch.arange(4).repeat(2, 1), draft_logits=draft_logits)
    g = torch.Generator().manual_seed(1)
    drawn = draw_drafts(candidates, params, REJECTION, g)
    target_logits = torch.randn(2, 4, VOCAB, generator=g)
    return accept_verified(drawn, target_logits, params, REJECTION, g)


def test_sampled_requests_step_over_a_broken_drafter():
    acceptance = _sampled_step(finite_draft_logits(_broken_logits()))
    assert ((0 <= acceptance.bonus) & (acceptance.bonus < VOCAB)).all()


def test_guard_without_the_fix_the_sampled_step_fails():
    """Why finite_draft_logits exists: the drafter's NaN row reaches the sampler."""
    with pytest.raises(RuntimeError):
        _sampled_step(_broken_logits())


def test_nonfinite_parameters_are_named():
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    assert nonfinite_parameters(model) == []
    with torch.no_grad():
        model[1].weight[0, 0] = float("inf")
        model[0].bias[2] = float("nan")
    assert nonfinite_parameters(model) == ["0.bias", "1.weight"]
