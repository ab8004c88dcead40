"""Speculative sampling with the drafter's distribution: exact by enumeration on small vocabularies.

The rule's outcome distribution (`outcome_probs`) is what the sampler draws from. Summed over every
draft tuple the drafter can propose, and with each step's output continued by plain sampling of the
target, it must give exactly the target's own sequence distribution.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from scipy.stats import chisquare

from dflash_sglang.spec import rejection
from dflash_sglang.spec.posterior import SamplingParams, processed_probs
from dflash_sglang.spec.rejection import RejectionInput, accept_by_rejection, outcome_probs
from dflash_sglang.spec.rules import POINT_MASS, REJECTION, accept_verified, draw_drafts
from dflash_sglang.spec.types import Candidates

VOCAB, ANCHOR = 5, 0
SAMPLINGS = {"plain": {}, "top-k2": {"top_ks": [2]}, "top-p0.8": {"top_ps": [0.8]},
             "top-k3-top-p0.9": {"top_ks": [3], "top_ps": [0.9]}}


def _params(rows: int, temperature: float, sampling: dict) -> SamplingParams:
    return SamplingParams.make_dummy([temperature] * rows, **{k: v * rows for k, v in sampling.items()})


class ToyPair:
    """Target: p(. | prefix) depends on the position and the previous token. Drafter: one fixed q_k per
    block position, as DFlash's single parallel pass gives (independent of the other drafts)."""

    def __init__(self, blk: int, temperature: float, sampling: dict, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        logits = torch.randn(blk * VOCAB, 1, VOCAB, generator=g) * 1.5  # [(pos, prev), 1, vocab]
        self.p = processed_probs(logits, _params(blk * VOCAB, temperature, sampling)).view(blk, VOCAB, VOCAB)
        draft_logits = torch.randn(1, blk - 1, VOCAB, generator=g) * 1.5  # [1, blk-1, vocab]
        self.q = processed_probs(draft_logits, _params(1, temperature, sampling))[0]  # [blk-1, vocab]
        self.blk = blk

    def target(self, prefix: tuple[int, ...]) -> torch.Tensor:  # [vocab] after anchor + prefix
        prev = prefix[-1] if prefix else ANCHOR
        return self.p[len(prefix), prev]


def emitted_distribution(pair: ToyPair) -> dict[tuple[int, ...], float]:
    """P(one step emits exactly this token sequence), over all draft tuples, by the rule's outcome_probs."""
    tuples = list(itertools.product(range(VOCAB), repeat=pair.blk - 1))
    drafts = torch.tensor(tuples)  # [n, blk-1]: every draft tuple is one request of the batch
    target = torch.stack([torch.stack([pair.target(t[:k]) for k in range(pair.blk)]) for t in tuples])
    inputs = RejectionInput(drafts, pair.q.expand(len(tuples), -1, -1), target)  # target: [n, blk, vocab]
    outcomes = outcome_probs(inputs).double()  # [n, blk, vocab]
    weight = pair.q.double().gather(1, drafts.T).prod(dim=0)  # [n] probability the drafter proposes it
    emitted: dict[tuple[int, ...], float] = {}
    for row, t in enumerate(tuples):
        for accepted in range(pair.blk):
            for token in range(VOCAB):
                seq = t[:accepted] + (token,)
                emitted[seq] = emitted.get(seq, 0.0) + float(weight[row] * outcomes[row, accepted, token])
    return emitted


def max_deviation_from_target(pair: ToyPair) -> float:
    """Each step's output continued by plain target sampling to blk tokens, against pure target sampling."""
    emitted = emitted_distribution(pair)
    worst = 0.0
    for seq in itertools.product(range(VOCAB), repeat=pair.blk):
        ar = [float(pair.target(seq[:j])[seq[j]]) for j in range(pair.blk)]
        ours = sum(emitted.get(seq[:m], 0.0) * _prod(ar[m:]) for m in range(1, pair.blk + 1))
        worst = max(worst, abs(ours - _prod(ar)))
    return worst


def _prod(values: list[float]) -> float:
    out = 1.0
    for v in values:
        out *= v
    return out


@pytest.mark.parametrize("sampling", list(SAMPLINGS.values()), ids=list(SAMPLINGS))
@pytest.mark.parametrize("blk", [2, 4], ids=["one-position", "block-of-3"])
@pytest.mark.parametrize("temperature", [0.7, 1.0], ids=["T0.7", "T1.0"])
def test_rule_keeps_the_target_distribution_exactly(blk, sampling, temperature):
    pair = ToyPair(blk, temperature, sampling)
    assert abs(sum(emitted_distribution(pair).values()) - 1.0) < 1e-6
    assert max_deviation_from_target(pair) < 1e-6


@pytest.mark.parametrize("blk", [2, 4], ids=["one-position", "block-of-3"])
def test_guard_a_wrong_residual_is_caught(monkeypatch, blk):
    # The classic mistake: after a rejection, sample p again instead of norm(max(0, p - q)).
    monkeypatch.setattr(rejection, "residual_distribution", lambda p, q: p)
    assert max_deviation_from_target(ToyPair(blk, 1.0, {})) > 1e-3


def test_first_draft_is_accepted_with_probability_one_minus_tv():
    pair = ToyPair(2, 1.0, {})
    p, q = pair.target(()), pair.q[0]
    emitted = emitted_distribution(pair)
    accepted = sum(prob for seq, prob in emitted.items() if len(seq) == 2)
    assert abs(accepted - torch.minimum(p, q).sum().item()) < 1e-6  # 1 - TV(p, q) = sum min(p, q)


def test_sampler_draws_from_outcome_probs():
    g = torch.Generator().manual_seed(3)
    n, blk = 6000, 3
    target = torch.softmax(torch.randn(1, blk, VOCAB, generator=g), -1).expand(n, -1, -1)
    q = torch.softmax(torch.randn(1, blk - 1, VOCAB, generator=g), -1).expand(n, -1, -1)
    inputs = RejectionInput(torch.tensor([[1, 3]]).expand(n, -1), q, target)
    result = accept_by_rejection(inputs, g)
    observed = torch.bincount(result.accepted * VOCAB + result.bonus, minlength=blk * VOCAB).double()
    expected = outcome_probs(inputs)[0].flatten().double() * n
    keep = expected > 0
    assert (observed[~keep] == 0).all()
    assert chisquare(observed[keep], expected[keep] * observed.sum() / expected[keep].sum()).pvalue > 0.001
    assert (result.out_tokens[torch.arange(n), result.accepted] == result.bonus).all()


def test_make_dummy_and_a_hand_computed_case():
    # q drew token 1, which p rejects outright; the residual max(0, p - q) puts everything on token 0.
    inputs = RejectionInput.make_dummy([[1]], draft_probs=[[[0.0, 1.0]]], target_probs=[[[1.0, 0.0], [0.5, 0.5]]])
    assert outcome_probs(inputs)[0].tolist() == [[1.0, 0.0], [0.0, 0.0]]


def _candidates(bs: int, blk: int, g: torch.Generator) -> Candidates:
    logits = torch.randn(bs, blk - 1, VOCAB, generator=g)  # [bs, blk-1, vocab]
    tokens = torch.cat([torch.full((bs, 1), ANCHOR), logits.argmax(-1)], dim=1)  # [bs, blk]
    return Candidates(tokens=tokens, positions=torch.arange(blk).expand(bs, -1), draft_logits=logits)


def test_greedy_batch_takes_the_argmax_path_without_softmax(monkeypatch):
    from dflash_sglang.spec import rules

    def no_softmax(*args, **kwargs):
        raise AssertionError("a greedy batch computed a processed distribution")

    monkeypatch.setattr(rules, "processed_probs", no_softmax)
    g = torch.Generator().manual_seed(4)
    candidates = _candidates(3, 4, g)
    params = SamplingParams.make_dummy([1.0] * 3, top_ks=[1] * 3)
    assert draw_drafts(candidates, params, REJECTION, g) is candidates
    target_logits = torch.randn(3, 4, VOCAB, generator=g)
    result = accept_verified(candidates, target_logits, params, REJECTION, g)
    reference = accept_verified(candidates, target_logits, params, POINT_MASS, g)
    assert torch.equal(result.out_tokens, reference.out_tokens)


def test_mixed_batch_greedy_rows_keep_argmax_drafts_and_acceptance():
    g = torch.Generator().manual_seed(5)
    bs, blk = 8, 4
    candidates = _candidates(bs, blk, g)
    params = SamplingParams.make_dummy([1.0] * bs, top_ks=[1, 1 << 30] * (bs // 2))  # even rows greedy
    drawn = draw_drafts(candidates, params, REJECTION, g)
    assert torch.equal(drawn.tokens[::2], candidates.tokens[::2])
    target_logits = torch.randn(bs, blk, VOCAB, generator=g)
    target_logits[::2, :-1] = -10.0
    target_logits[::2, :-1].scatter_(-1, candidates.tokens[::2, 1:, None], 10.0)  # the target agrees: all accepted
    result = accept_verified(drawn, target_logits, params, REJECTION, g)
    assert (result.accepted[::2] == blk - 1).all()
    assert torch.equal(result.bonus[::2], target_logits[::2, -1].argmax(-1))
