"""One draw per row by inverting the cumulative sum (spec/categorical.py): the law of the draws, zero weights,
any leading shape, and the generator."""

from __future__ import annotations

import pytest
import torch
from scipy.stats import chisquare

from dflash_sglang.spec.categorical import draw

SAMPLES = 200_000


@pytest.mark.parametrize("weights", [
    [0.1, 0.0, 0.6, 0.3],  # a zero inside
    [0.0, 0.0, 2.0, 1.0, 1.0, 0.0],  # unnormalised, zeros at both ends
    [1e-3] * 7 + [1.0],  # a heavy last entry
])
def test_draws_follow_the_weights(weights):
    probs = torch.tensor(weights)
    drawn = draw(probs.expand(SAMPLES, len(weights)).contiguous(), torch.Generator().manual_seed(0))
    counts = torch.bincount(drawn, minlength=len(weights))
    assert counts[probs == 0].sum() == 0, counts  # a zero weight is never drawn
    kept = probs > 0
    expected = probs[kept].double() / probs.double().sum() * SAMPLES
    assert chisquare(counts[kept].double().numpy(), expected.numpy()).pvalue > 1e-3, (counts, expected)


def test_a_one_hot_row_draws_its_token_at_any_leading_shape():
    hot = torch.tensor([[3, 0, 4], [1, 2, 0]])  # [2, 3]
    probs = torch.nn.functional.one_hot(hot, 5).float()  # [2, 3, 5]
    for seed in range(20):
        assert torch.equal(draw(probs, torch.Generator().manual_seed(seed)), hot)


def test_the_generator_decides_the_draws():
    probs = torch.softmax(torch.randn(64, 50, generator=torch.Generator().manual_seed(1)), dim=-1)
    first = draw(probs, torch.Generator().manual_seed(7))
    assert torch.equal(first, draw(probs, torch.Generator().manual_seed(7)))
    assert not torch.equal(first, draw(probs, torch.Generator().manual_seed(8)))
