"""Per-position logit processing against a brute-force AR loop on a toy logits function: at block
position k, penalties and min_new_tokens must see the committed output plus the drafts before k."""

from __future__ import annotations

import pytest
import torch

from dflash_sglang.spec.logit_processing import (
    LogitFeatures,
    MinNewTokens,
    Penalties,
    draft_counts,
    process_logits,
    token_counts,
)
from dflash_sglang.spec.types import Candidates

VOCAB = 12
STOP = 3
TABLE = torch.randn(VOCAB, 7, VOCAB, generator=torch.Generator().manual_seed(0)) * 2.0


def toy_logits(prefix: list[int]) -> torch.Tensor:  # [vocab] a deterministic function of the prefix
    return TABLE[prefix[-1], len(prefix) % 7] + 0.25 * TABLE[prefix[-2] if len(prefix) > 1 else 0, 0]


def ar_processed(prompt: list[int], output: list[int], frequency: float, presence: float, repetition: float,
                 min_new: int, bias: torch.Tensor) -> torch.Tensor:
    """What AR samples from after `output`: SGLang's order, counting every output token so far."""
    logits = toy_logits(prompt + output).clone()
    counts = torch.zeros(VOCAB)
    for t in output:
        counts[t] += 1
    additive = -frequency * counts - presence * (counts > 0).float()
    if len(output) < min_new:
        additive[STOP] = float("-inf")
    logits = logits + additive
    scale = torch.where(counts > 0, torch.tensor(repetition), torch.tensor(1.0))
    logits = torch.where(logits < 0, logits * scale, logits / scale)
    return logits + bias


def spec_inputs(prompt, output, drafts, frequency, presence, repetition, min_new, bias):
    tokens = [output[-1], *drafts]  # the anchor is the last committed output token
    logits = torch.stack([toy_logits(prompt + output + drafts[:k]) for k in range(len(tokens))])[None]
    features = LogitFeatures(
        penalties=Penalties(torch.tensor([frequency]), torch.tensor([presence]), torch.tensor([repetition]),
                            token_counts([output], VOCAB)),
        min_new_tokens=MinNewTokens.make_dummy([min_new], [len(output)], [STOP], VOCAB),
        logit_bias=bias[None],
    )
    return logits, Candidates.make_dummy([tokens]), features


CASES = [
    # frequency, presence, repetition, min_new
    (1.0, 0.0, 1.0, 0),
    (0.0, 0.8, 1.0, 0),
    (0.0, 0.0, 1.3, 0),
    (0.5, 0.4, 1.2, 0),
    (0.0, 0.0, 1.0, 6),
    (1.0, 0.8, 1.3, 7),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "f{}-p{}-r{}-min{}".format(*c))
@pytest.mark.parametrize("seed", range(4))
def test_every_position_equals_the_ar_loop(case, seed):
    frequency, presence, repetition, min_new = case
    g = torch.Generator().manual_seed(seed)
    prompt = torch.randint(0, VOCAB, (3,), generator=g).tolist()
    output = torch.randint(0, VOCAB, (4,), generator=g).tolist()
    drafts = torch.randint(0, VOCAB, (5,), generator=g).tolist()
    drafts[2] = drafts[0]  # a token repeated inside the block
    bias = torch.zeros(VOCAB).index_fill(0, torch.tensor([1, 5]), 2.5)
    logits, candidates, features = spec_inputs(prompt, output, drafts, frequency, presence, repetition, min_new, bias)
    got = process_logits(logits, candidates, features)[0]  # [blk, vocab]
    for k in range(len(drafts) + 1):
        expected = ar_processed(prompt, output + drafts[:k], frequency, presence, repetition, min_new, bias)
        torch.testing.assert_close(got[k], expected, rtol=0, atol=1e-6, msg=f"position {k}")


@pytest.mark.parametrize("case", CASES, ids=lambda c: "f{}-p{}-r{}-min{}".format(*c))
def test_guard_the_pre_block_state_at_every_position_is_not_ar(case):
    """The builtin's shortcut, every position processed as if it were the block's first (the state
    before the block), fails the same comparison."""
    frequency, presence, repetition, min_new = case
    prompt, output, drafts = [1, 2, 4], [5, 6, 7, 8, 9], [9, 9, 10, 3, 11]
    bias = torch.zeros(VOCAB)
    logits, candidates, features = spec_inputs(prompt, output, drafts, frequency, presence, repetition, min_new, bias)
    anchor_only = Candidates.make_dummy([[output[-1]]])
    mismatches = 0
    for k in range(len(drafts) + 1):
        shortcut = process_logits(logits[:, k:k + 1], anchor_only, features)[0, 0]
        expected = ar_processed(prompt, output + drafts[:k], frequency, presence, repetition, min_new, bias)
        mismatches += not torch.allclose(shortcut, expected, atol=1e-6)
    assert mismatches > 0


def test_draft_counts_count_only_drafts_before_each_position():
    counts = draft_counts(torch.tensor([[4, 1, 1, 2]]), 5)[0]  # [blk, vocab]
    assert counts[:, 4].tolist() == [0, 0, 0, 0]  # the anchor is committed output, counted by the caller
    assert counts[:, 1].tolist() == [0, 1, 2, 2]
    assert counts[:, 2].tolist() == [0, 0, 0, 1]


def test_no_features_returns_the_logits_themselves():
    logits = torch.randn(2, 3, VOCAB)
    assert process_logits(logits, Candidates.make_dummy([[1, 2, 3], [4, 5, 6]]), None) is logits


def test_grammar_mask_and_custom_processor_apply_at_every_position():
    logits = torch.zeros(1, 3, VOCAB)
    allowed = torch.zeros(1, 3, VOCAB, dtype=torch.bool)
    allowed[0, 0, 1] = allowed[0, 1, 2] = allowed[0, 2, 3] = True
    seen = []
    features = LogitFeatures(grammar_mask=lambda c: allowed, custom=lambda x: seen.append(x.shape) or x * 2)
    out = process_logits(logits, Candidates.make_dummy([[0, 1, 2]]), features)
    assert out.argmax(-1).tolist() == [[1, 2, 3]]
    assert torch.isinf(out).sum() == 3 * (VOCAB - 1)
    assert seen == [torch.Size([1, 3, VOCAB])]


class ToyModels:
    """A StepModels over `toy_logits`: drafts mostly right (AR's next tokens, some replaced at random),
    so that later block positions are reached and read; the toy target's logits after each prefix."""

    def __init__(self, prefix: list[int], hint: list[int], seed: int):
        self.prefix = prefix  # prompt and committed output, anchor included
        self.hint = hint  # AR's next tokens
        self.g = torch.Generator().manual_seed(seed)

    def draft(self, block):
        tokens = block.block_ids.clone()
        n = tokens.shape[1] - 1
        hint = torch.tensor((self.hint + [0] * n)[:n])
        noise = torch.randint(0, VOCAB, (n,), generator=self.g)
        tokens[0, 1:] = torch.where(torch.rand(n, generator=self.g) < 0.2, noise, hint)
        return Candidates(tokens=tokens, positions=block.positions)

    def verify(self, candidates):
        from dflash_sglang.spec.step import TargetOutput

        drafts = candidates.tokens[0, 1:].tolist()
        logits = torch.stack([toy_logits(self.prefix + drafts[:k]) for k in range(len(drafts) + 1)])[None]
        return TargetOutput(logits=logits, target_features=torch.zeros(1, logits.shape[1], 1))

    def commit(self, candidates, acceptance, target):
        pass


@pytest.mark.parametrize("seed", range(3))
def test_greedy_speculative_decoding_with_penalties_equals_the_ar_loop(seed):
    """The whole step: per-position processing, then accept, commits AR's tokens."""
    from dflash_sglang.spec.step import StepInput, speculative_step

    frequency, presence, repetition, min_new = 0.7, 0.3, 1.2, 9
    prompt, first = [1, 2, 4], 6
    ar = [first]
    while len(ar) < 24:
        ar.append(int(ar_processed(prompt, ar, frequency, presence, repetition, min_new, torch.zeros(VOCAB)).argmax()))
    ours, steps = [first], []
    while len(ours) < 20:
        features = LogitFeatures(
            penalties=Penalties(torch.tensor([frequency]), torch.tensor([presence]), torch.tensor([repetition]),
                                token_counts([ours], VOCAB)),
            min_new_tokens=MinNewTokens.make_dummy([min_new], [len(ours)], [STOP], VOCAB))
        step = StepInput.make_dummy([ours[-1]], [len(prompt) + len(ours) - 1], block_size=4)
        step = StepInput(step.anchors, step.seq_lens, step.sampling, step.block_size, step.mask_token_id,
                         features=features)
        models = ToyModels(prompt + ours, ar[len(ours):], seed * 100 + len(ours))
        acceptance = speculative_step(models, step)
        ours += acceptance.out_tokens[0, :int(acceptance.accepted[0]) + 1].tolist()
        steps.append(int(acceptance.accepted[0]) + 1)
    assert ours[:20] == ar[:20]
    assert max(steps) > 2  # later block positions were accepted, so their processing was read
