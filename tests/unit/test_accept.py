"""Accept and the target posterior: exact cases, properties, and the sampling statistics."""

from __future__ import annotations

import pytest
import torch
from scipy.stats import chi2_contingency

from dflash_sglang.spec.accept import accept
from dflash_sglang.spec.posterior import SamplingParams, posterior_tokens, processed_probs
from dflash_sglang.spec.rules import POINT_MASS, REJECTION
from dflash_sglang.spec.step import StepInput, TargetOutput, speculative_step
from dflash_sglang.spec.types import PLACEHOLDER_TOKEN_ID as P, Candidates, Verification

X = 99  # the anchor: never compared


@pytest.mark.parametrize(
    ("rows", "posterior", "accepted", "bonus", "out"),
    [
        pytest.param([[X, 1, 2, 3]], [[1, 5, 3, 4]], [1], [5], [[1, 5, P, P]], id="first-draft-accepted"),
        pytest.param([[X, 1, 2, 3]], [[7, 2, 3, 4]], [0], [7], [[7, P, P, P]], id="none-accepted"),
        pytest.param([[X, 1, 2, 3]], [[1, 2, 3, 4]], [3], [4], [[1, 2, 3, 4]], id="all-accepted-bonus-last"),
        # A later match after a mismatch does not count: the accepted prefix is contiguous.
        pytest.param([[X, 1, 2, 3]], [[1, 9, 3, 4]], [1], [9], [[1, 9, P, P]], id="no-holes"),
        pytest.param([[X, 1, 2], [X, 4, 5]], [[1, 2, 6], [8, 5, 0]], [2, 0], [6, 8], [[1, 2, 6], [8, P, P]],
                     id="ragged-batch"),
    ],
)
def test_accept_hand_built(rows, posterior, accepted, bonus, out):
    result = accept(Candidates.make_dummy(rows), Verification.make_dummy(posterior))
    assert result.accepted.tolist() == accepted
    assert result.bonus.tolist() == bonus
    assert result.out_tokens.tolist() == out
    assert result.acceptance_lengths.tolist() == [a + 1 for a in accepted]


@pytest.mark.parametrize("bs,blk,vocab", [(1, 2, 3), (19, 8, 5), (7, 16, 2)], ids=["blk2", "bs19-blk8", "blk16-binary"])
def test_accept_matches_a_plain_recount(bs, blk, vocab):
    g = torch.Generator().manual_seed(bs * blk)
    drafts = torch.randint(0, vocab, (bs, blk), generator=g)
    posterior = torch.randint(0, vocab, (bs, blk), generator=g)
    result = accept(Candidates.make_dummy(drafts.tolist()), Verification(posterior))
    for row in range(bs):
        n = 0
        while n < blk - 1 and drafts[row, n + 1] == posterior[row, n]:
            n += 1
        assert result.accepted[row] == n
        assert result.bonus[row] == posterior[row, n]
        assert result.out_tokens[row, :n].tolist() == drafts[row, 1:n + 1].tolist()
        assert (result.out_tokens[row, n + 1:] == P).all()


def test_greedy_posterior_is_argmax():
    logits = torch.randn(3, 4, 50)
    params = SamplingParams.make_dummy([1.0] * 3, top_ks=[1] * 3)
    assert torch.equal(posterior_tokens(logits, params), logits.argmax(-1))


def test_processed_probs_filters_like_sglang():
    # probs after softmax of these logits at T=1: about [0.64, 0.24, 0.09, 0.03]
    logits = torch.tensor([[[3.0, 2.0, 1.0, 0.0]]])
    top_k2 = processed_probs(logits, SamplingParams.make_dummy([1.0], top_ks=[2]))[0, 0]
    assert (top_k2[2:] == 0).all() and torch.isclose(top_k2.sum(), torch.tensor(1.0))
    top_p = processed_probs(logits, SamplingParams.make_dummy([1.0], top_ps=[0.7]))[0, 0]
    assert (top_p > 0).tolist() == [True, True, False, False]  # mass before token 2 is 0.88 > 0.7
    min_p = processed_probs(logits, SamplingParams.make_dummy([1.0], min_ps=[0.3]))[0, 0]
    assert (min_p > 0).tolist() == [True, True, False, False]  # 0.09 < 0.3 * 0.64
    hot = processed_probs(logits, SamplingParams.make_dummy([100.0]))[0, 0]
    assert (hot - 0.25).abs().max() < 0.01


def test_temperature_only_skips_the_sort_and_gives_the_same_distribution(monkeypatch):
    from dflash_sglang.spec import posterior

    logits = torch.randn(3, 5, 50)
    params = SamplingParams.make_dummy([0.7, 1.0, 1.3])
    assert not posterior.filters_anything(params, 50)
    fast = processed_probs(logits, params)
    monkeypatch.setattr(posterior, "filters_anything", lambda *args: True)  # the sorted path, filtering nothing
    assert torch.allclose(fast, processed_probs(logits, params), atol=1e-6)


class MarkovTarget:
    """A toy target whose next-token logits depend on the previous token only, and a drafter whose
    logits at block position k depend on the anchor and k only (one parallel pass, as DFlash's);
    enough to check that speculative sampling keeps the AR distribution."""

    def __init__(self, vocab: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.transition_logits = torch.randn(vocab, vocab, generator=g) * 2  # [prev, next]
        # The drafter guesses position k's marginal given the anchor, with noise: close to p, never equal.
        step = torch.softmax(self.transition_logits, dim=-1)  # [prev, next]
        marginals = torch.stack([torch.linalg.matrix_power(step, k + 1) for k in range(8)], dim=1)  # [a, k, v]
        self.draft_table = marginals.log() + torch.randn(vocab, 8, vocab, generator=g) * 0.5  # [anchor, k, vocab]

    def draft(self, block):
        blk = block.block_ids.shape[1]
        logits = self.draft_table[block.block_ids[:, 0], :blk - 1]  # [bs, blk-1, vocab]
        tokens = torch.cat([block.block_ids[:, :1], logits.argmax(-1)], dim=1)  # [bs, blk]
        return Candidates(tokens=tokens, positions=block.positions, draft_logits=logits)

    def verify(self, candidates):
        logits = self.transition_logits[candidates.tokens]  # [bs, blk, vocab]
        return TargetOutput(logits=logits, target_features=torch.zeros(*candidates.tokens.shape, 1))

    def commit(self, candidates, acceptance, target):
        pass


@pytest.mark.parametrize("rule", [REJECTION, POINT_MASS])
@pytest.mark.parametrize("sampling", [dict(), dict(top_ks=[3]), dict(top_ps=[0.8]), dict(min_ps=[0.2])],
                         ids=["plain", "top-k", "top-p", "min-p"])
def test_speculative_sampling_keeps_the_target_distribution(sampling, rule):
    vocab, samples, anchor = 6, 4000, 0
    target = MarkovTarget(vocab, seed=1)
    params = SamplingParams.make_dummy([0.9] * samples, **{k: v * samples for k, v in sampling.items()})
    step = StepInput(torch.full((samples,), anchor), torch.zeros(samples, dtype=torch.long), params, 4, 0, rule)
    g = torch.Generator().manual_seed(2)
    result = speculative_step(target, step, generator=g)
    first, second = result.out_tokens[:, 0], result.out_tokens[:, 1]
    has_second = result.accepted >= 1  # the second token comes from this step only when the first was accepted
    # AR sampling of the same chain: first ~ p(.|anchor), second ~ p(.|first).
    per_prev = SamplingParams.make_dummy([0.9] * vocab, **{k: v * vocab for k, v in sampling.items()})
    probs = processed_probs(target.transition_logits[:, None, :], per_prev)[:, 0]  # [prev, next]
    ar_first = torch.multinomial(probs[anchor].expand(samples, vocab), 1, generator=g)[:, 0]
    ar_second = torch.multinomial(probs[ar_first], 1, generator=g)[:, 0]
    assert _same_distribution(first, ar_first, vocab)
    # Second tokens are compared given the same first token, where the step produced them.
    for token in range(vocab):
        ours = second[has_second & (first == token)]
        theirs = ar_second[ar_first == token]
        if len(ours) > 200 and len(theirs) > 200:
            assert _same_distribution(ours, theirs, vocab), token
    rate = result.accepted.float().mean().item() / 3
    print(f"acceptance rate per draft: {rate:.2f}")


def _same_distribution(a: torch.Tensor, b: torch.Tensor, vocab: int) -> bool:
    table = torch.stack([torch.bincount(a, minlength=vocab), torch.bincount(b, minlength=vocab)]).numpy()
    table = table[:, table.sum(0) > 0]
    return table.shape[1] < 2 or chi2_contingency(table).pvalue > 0.001
