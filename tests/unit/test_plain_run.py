"""Plain runs (spec/plain_run.py): several plain decoding passes in one scheduler step commit exactly
what AR would, each pass at the next column of the block."""

from __future__ import annotations

import pytest
import torch
from scipy.stats import chi2_contingency

from dflash_sglang.spec.block import make_draft_block
from dflash_sglang.spec.budget_controller import BudgetController, BudgetSettings
from dflash_sglang.spec.budget_cost import StepTiming
from dflash_sglang.spec.plain_run import plain_run
from dflash_sglang.spec.posterior import SamplingParams, processed_probs
from dflash_sglang.spec.step import StepInput, TargetOutput
from test_budget_step import BLOCK, VOCAB, MarkovPair, _ar_greedy


class RecordingPair(MarkovPair):
    """Records where each pass would write its K/V: (column, position of the anchor)."""

    def __init__(self, seed: int = 0):
        super().__init__(seed)
        self.passes: list[tuple[int, list[int]]] = []

    def verify_plain(self, candidates, column):
        self.passes.append((column, candidates.positions[:, 0].tolist()))
        return TargetOutput(logits=self.transition_logits[candidates.tokens],  # [bs, 1, vocab]
                            target_features=torch.zeros(*candidates.tokens.shape, 1))


@pytest.mark.parametrize("run", [1, 3, BLOCK])
def test_a_greedy_run_commits_ar_tokens_into_successive_columns(run):
    pair, anchors, seq_lens = RecordingPair(), [0, 3, 5], [7, 2, 11]
    step = StepInput.make_dummy(anchors, seq_lens, block_size=BLOCK)
    block = make_draft_block(step.anchors, step.seq_lens, BLOCK, step.mask_token_id)
    acceptance = plain_run(pair, step, block, run)
    assert acceptance.out_tokens.shape == (3, run)
    assert acceptance.acceptance_lengths.tolist() == [run] * 3 and acceptance.bonus.tolist() == \
        acceptance.out_tokens[:, -1].tolist()
    assert [[a] + row for a, row in zip(anchors, acceptance.out_tokens.tolist())] == \
        [_ar_greedy(pair, a, run + 1) for a in anchors]
    assert pair.passes == [(k, [n + k for n in seq_lens]) for k in range(run)]
    assert pair.committed_widths == [1] * run


def test_a_sampled_run_keeps_the_target_distribution_at_its_second_token():
    """Token 2 of a run is drawn after token 1 (sampled): its law is the two-step transition."""
    pair, samples, anchor, temperature = MarkovPair(seed=2), 4000, 4, 0.8
    params = SamplingParams.make_dummy([temperature] * samples)
    step = StepInput(torch.full((samples,), anchor), torch.zeros(samples, dtype=torch.long), params, BLOCK, 0)
    block = make_draft_block(step.anchors, step.seq_lens, BLOCK, step.mask_token_id)
    second = plain_run(pair, step, block, 2, torch.Generator().manual_seed(3)).out_tokens[:, 1]
    one = SamplingParams.make_dummy([temperature])
    p = processed_probs(pair.transition_logits[None], one)[0]  # [prev, next]
    law = p[anchor] @ p  # [vocab]
    expected = torch.multinomial(law, samples, replacement=True, generator=torch.Generator().manual_seed(4))
    table = torch.stack([torch.bincount(second, minlength=VOCAB), torch.bincount(expected, minlength=VOCAB)])
    assert chi2_contingency(table[:, table.sum(0) > 0].numpy()).pvalue > 0.001


def test_a_run_needs_a_batch_without_logit_state():
    step = StepInput.make_dummy([1], [4], block_size=BLOCK)
    step = StepInput(step.anchors, step.seq_lens, step.sampling, BLOCK, 0, features=object())
    block = make_draft_block(step.anchors, step.seq_lens, BLOCK, 0)
    with pytest.raises(AssertionError, match="logit state"):
        plain_run(MarkovPair(), step, block, 2)


def _controller_with(between: float) -> BudgetController:
    """Plain passes of 5 ms, chains of width 2 at 10 ms and 12 ms of drafting, whose expected tokens are 2.4."""
    controller = BudgetController(BudgetSettings(block_size=2))
    controller.costs.observe_between(between)
    for _ in range(3):
        controller.costs.observe(StepTiming(1, 2, True, 0.012, 0.010))
        controller.costs.observe(StepTiming(1, 1, False, 0.0, 0.005))
    controller.drafted_steps = 10
    controller.expected[2].observe(2.4)
    controller.since_explore = 0.0
    return controller


@pytest.mark.parametrize("run", [1, 4])
def test_the_plan_prices_a_plain_run_with_one_stretch_of_scheduler_time(run):
    """With 20 ms between steps: one pass per step commits 1 token in 25 ms (40/s), the chain 2.4 in 42 ms
    (57/s), a run of 4 commits 4 in 40 ms (100/s). A plan that charged the scheduler's time per pass would
    draft in both cases."""
    plan = _controller_with(between=0.020).plan(1, plain_run=run)
    assert plan.drafted == (run == 1)


def test_a_run_stops_where_the_batchs_longest_request_must_end():
    """seq_lens count the tokens before the anchor, which is an output token already: a request of prompt 10
    and max_new_tokens 6 at seq_len 12 has output 3 tokens and may commit 3 more."""
    from dflash_sglang.spec.plain_run import run_length

    seq_lens, max_lengths = torch.tensor([12, 30]), torch.tensor([16, 33])
    assert run_length(8, seq_lens, max_lengths) == 3  # the longer of 3 and 2 tokens left
    assert run_length(2, seq_lens, max_lengths) == 2
    assert run_length(8, seq_lens, None) == 8
    assert run_length(8, torch.tensor([15]), torch.tensor([16])) == 1  # finished, still in an overlapped batch
    assert run_length(1, seq_lens, max_lengths) == 1
