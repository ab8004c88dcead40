"""The worker side of `auto` that needs no server: the block layout the scheduler reads, the tree widths,
the plain step's forward."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from dflash_sglang.sglang_adapter.budget_auto import pad_acceptance, pad_positions, tree_widths
from dflash_sglang.sglang_adapter.plain_pass import DECODE, PLAIN_PASS_ENV, VERIFY, plain_pass_mode
from dflash_sglang.spec.types import PLACEHOLDER_TOKEN_ID, Acceptance


def test_a_narrow_step_is_padded_to_the_block_stride():
    narrow = Acceptance.make_dummy(accepted=[0, 2], bonus=[7, 9], block_size=3)  # width 3
    padded = pad_acceptance(narrow, block_size=8)
    assert padded.out_tokens.shape == (2, 8)
    assert padded.out_tokens[:, :3].tolist() == narrow.out_tokens.tolist()
    assert bool((padded.out_tokens[:, 3:] == PLACEHOLDER_TOKEN_ID).all())
    assert padded.acceptance_lengths.tolist() == [1, 3]
    full = Acceptance.make_dummy(accepted=[1], bonus=[5], block_size=8)
    assert pad_acceptance(full, block_size=8) is full  # the chain and trees are already in the block's layout


def test_logits_are_padded_for_the_logprob_layout():
    logits = torch.randn(2, 3, 11)  # [bs, width, vocab]
    padded = pad_positions(logits, block_size=8)
    assert padded.shape == (2, 8, 11) and torch.equal(padded[:, :3], logits)


def test_tree_widths_double_from_16_past_the_block_up_to_the_bound():
    assert tree_widths(64, block_size=8, page_size=1) == (16, 32, 64)
    assert tree_widths(64, block_size=16, page_size=1) == (32, 64)
    assert tree_widths(64, block_size=8, page_size=16) == ()  # tree nodes take single KV slots


def test_the_step_clock_is_the_host_clock_off_cuda():
    import time

    from dflash_sglang.sglang_adapter.budget_auto import step_clock

    assert step_clock("cpu") is time.perf_counter
    assert step_clock("cuda") is not time.perf_counter  # synchronises first (not run here: no GPU)


def test_plain_steps_take_the_decode_forward_only_where_no_decode_graph_could_replay_them(monkeypatch):
    monkeypatch.delenv(PLAIN_PASS_ENV, raising=False)
    assert plain_pass_mode(SimpleNamespace(decode_cuda_graph_runner=None)) == DECODE
    # graphs captured at the block's width would take a DECODE batch without spec_info for their own
    assert plain_pass_mode(SimpleNamespace(decode_cuda_graph_runner=object())) == VERIFY
    monkeypatch.setenv(PLAIN_PASS_ENV, VERIFY)
    assert plain_pass_mode(SimpleNamespace(decode_cuda_graph_runner=None)) == VERIFY
    monkeypatch.setenv(PLAIN_PASS_ENV, "fast")
    with pytest.raises(ValueError, match="expected decode or verify, got 'fast'"):
        plain_pass_mode(SimpleNamespace(decode_cuda_graph_runner=None))


def test_a_plain_run_is_the_block_unless_asked_or_the_pass_cannot_run_it():
    from dflash_sglang.sglang_adapter.plain_pass import PLAIN_RUN_ENV, plain_run_length

    assert plain_run_length(DECODE, 8, environ={}) == 8
    assert plain_run_length(DECODE, 8, environ={PLAIN_RUN_ENV: "3"}) == 3
    assert plain_run_length(VERIFY, 8, environ={}) == 1  # TARGET_VERIFY reads the prefix from seq_lens
    for bad in ("0", "9", "two", "-1"):
        with pytest.raises(ValueError, match=f"expected an integer from 1 to the block size 8, got '{bad}'"):
            plain_run_length(DECODE, 8, environ={PLAIN_RUN_ENV: bad})


def test_a_plain_run_reports_one_step_of_width_one_per_pass():
    from dflash_sglang.sglang_adapter.budget_auto import AutoBudget
    from dflash_sglang.sglang_adapter.step_stats import ACCEPTANCE_KEY, WIDTH_KEY
    from dflash_sglang.spec.budget_step import BudgetedStep

    auto = AutoBudget(block_size=8)
    run = BudgetedStep.make_dummy(accepted=[2, 2], bonus=[5, 6], width=3)  # out_tokens [2, 3]
    auto.last = BudgetedStep(run.acceptance, 1, run.plan, passes=3)
    assert auto.step_info(2) == {ACCEPTANCE_KEY: [[1, 1, 1]] * 2, WIDTH_KEY: [[1, 1, 1]] * 2}
    auto.last = BudgetedStep.make_dummy(accepted=[0], bonus=[5], width=3)
    assert auto.step_info(1) == {WIDTH_KEY: [3]}


def test_a_plain_runs_values_sit_at_their_own_tokens_and_a_stop_cuts_them():
    from dflash_sglang.sglang_adapter.step_stats import token_aligned

    previous = [None, 1]  # the prefill's token, then a step that committed one token
    assert token_aligned(previous, 5, [1, 1, 1]) == [None, 1, 1, 1, 1]  # a run of 3, all visible
    assert token_aligned(previous, 4, [1, 1, 1]) == [None, 1, 1, 1]  # a stop at its second token
    assert token_aligned(previous, 5, 3) == [None, 1, None, None, 3]  # a step of 3: at its last token


def test_max_lengths_are_prompt_plus_max_new_tokens_or_the_context():
    from dflash_sglang.sglang_adapter.plain_pass import max_lengths

    def req(prompt, max_new):
        return SimpleNamespace(origin_input_ids=[0] * prompt, sampling_params=SimpleNamespace(max_new_tokens=max_new))

    batch = SimpleNamespace(reqs=[req(10, 6), req(3, None)], model_config=SimpleNamespace(context_len=4096))
    assert max_lengths(batch).tolist() == [16, 4096]


def test_a_step_right_after_a_prefill_is_no_run():
    from dflash_sglang.sglang_adapter.plain_pass import first_tokens_streamed

    streamed, fresh = SimpleNamespace(output_ids=[5]), SimpleNamespace(output_ids=[])
    assert first_tokens_streamed(SimpleNamespace(reqs=[streamed, streamed]))
    assert not first_tokens_streamed(SimpleNamespace(reqs=[streamed, fresh]))  # overlap: not yet processed


def test_the_state_line_counts_the_plans_behind_the_widths(monkeypatch):
    """Widths alone do not say why a step drafted (a probe, exploration, or by choice); the state line does."""
    from dflash_sglang.sglang_adapter import budget_auto
    from dflash_sglang.spec.budget_controller import Plan
    from dflash_sglang.spec.budget_step import BudgetedStep

    lines = []
    monkeypatch.setattr(budget_auto, "get_logger", lambda: SimpleNamespace(
        debug=lambda fmt, *args: lines.append(fmt % args), info=lambda *a: None))
    auto = budget_auto.AutoBudget(block_size=8)
    reasons = ["plain"] * (budget_auto.STATE_EVERY - 3) + ["probe", "chosen", "chosen"]
    steps = iter(BudgetedStep(BudgetedStep.make_dummy([0], [5], 8).acceptance, 8, Plan(True, None, r)) for r in reasons)
    monkeypatch.setattr(auto.stepper, "step", lambda *args, **kwargs: next(steps))
    for _ in reasons:
        auto.step(None, SimpleNamespace(anchors=torch.zeros(1)))
    assert len(lines) == 1
    assert f"plans {{chosen: 2, plain: {budget_auto.STATE_EVERY - 3}, probe: 1}}" in lines[0], lines[0]
