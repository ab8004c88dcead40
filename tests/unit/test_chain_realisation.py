"""The per-width correction of the chain estimate by what chains committed (spec/chain_realisation.py)."""

from __future__ import annotations

import statistics

import pytest
import torch

from dflash_sglang.spec.budget_estimate import (
    AcceptanceCalibration, CalibrationSettings, chain_expected_tokens, verified_outcomes,
)
from dflash_sglang.spec.budget_step import ChainEstimate
from dflash_sglang.spec.chain_realisation import ChainRealisation

BLOCK = 8


def test_one_chain_step_measures_every_narrower_width():
    """A chain of 5 that accepted 2 drafts: widths 1..3 would have committed 1, 2, 3 tokens, widths 4 and 5 three."""
    realisation = ChainRealisation(5, decay=1.0, prior_tokens=0.0)
    per_request = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0]])  # [bs=1, blk]
    realisation.observe(per_request, torch.tensor([2]), width=5)
    assert realisation.factors().tolist() == pytest.approx([1.0, 1.0, 1.0, 0.75, 0.6])
    realisation.observe(per_request, torch.tensor([0]), width=2)  # a chain of 2 says nothing of widths 3..5
    assert realisation.factors().tolist() == pytest.approx([1.0, 3.0 / 4.0, 1.0, 0.75, 0.6])


def test_without_data_the_estimate_is_kept():
    estimate = ChainEstimate.make_dummy(bs=3, blk=BLOCK)
    assert torch.equal(ChainRealisation(BLOCK)(estimate.per_request), estimate.per_request)


def _mixed_blocks(correct: bool, steps: int = 600, bs: int = 8) -> tuple[float, float]:
    """Half the blocks easy (each draft accepted with 0.95), half hard (0.3), all with the same drafter score:
    the acceptances within a block are correlated, which the per-draft calibration cannot see. Returns the
    mean committed tokens of full chains and the mean estimate of them, over the second half of the steps."""
    g = torch.Generator().manual_seed(0)
    calibration, realisation = AcceptanceCalibration(CalibrationSettings()), ChainRealisation(BLOCK)
    committed, estimated = [], []
    for step in range(steps):
        rate = torch.where(torch.rand(bs, generator=g) < 0.5, 0.95, 0.3)[:, None]  # [bs, 1]
        scores = torch.full((bs, BLOCK - 1), 0.65)  # [bs, blk-1]
        accepted = (torch.rand(bs, BLOCK - 1, generator=g) < rate).long().cumprod(dim=1).sum(dim=1)  # [bs]
        per_request = chain_expected_tokens(calibration(scores))  # [bs, blk]
        estimate = realisation(per_request) if correct else per_request
        if step >= steps // 2:
            committed.append(float(accepted.float().mean()) + 1.0)
            estimated.append(float(estimate[:, -1].mean()))
        calibration.observe(scores, *verified_outcomes(accepted, BLOCK, BLOCK - 1))
        realisation.observe(per_request, accepted, BLOCK)
    return statistics.mean(committed), statistics.mean(estimated)


@pytest.mark.parametrize("correct", [True, False], ids=["corrected", "guard-uncorrected"])
def test_correlated_blocks_are_estimated_by_what_chains_committed(correct):
    committed, estimated = _mixed_blocks(correct)
    error = abs(estimated / committed - 1.0)
    if correct:
        assert error < 0.03, (committed, estimated)
    else:  # the independence assumption alone is off by more than the correction leaves
        assert error > 0.06, (committed, estimated)
