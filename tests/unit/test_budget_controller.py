"""The load-aware budget's controller, cost fits and calibration, on synthetic costs and acceptance."""

from __future__ import annotations

import pytest
import torch

from dflash_sglang.spec.budget_controller import PLAIN_WIDTH, BudgetController, BudgetSettings, Plan
from dflash_sglang.spec.budget_cost import BatchCost, LinearCost, Plane, StepCosts, StepTiming
from dflash_sglang.spec.budget_estimate import (
    AcceptanceCalibration,
    CalibrationSettings,
    chain_expected_tokens,
    verified_outcomes,
)

BLOCK = 8


def test_linear_cost_recovers_a_line_and_stays_flat_on_one_point():
    cost = LinearCost(decay=1.0)
    cost.observe(4, 0.5)
    cost.observe(4, 0.7)
    assert cost(100) == pytest.approx(0.75 * 0.5 + 0.25 * 0.7)  # one token count: its decayed mean, no slope
    for n in (1, 8, 16, 32):
        cost.observe(n, 0.01 + 0.002 * n)
    line = LinearCost(decay=1.0)
    for n in (1, 8, 16, 32):
        line.observe(n, 0.01 + 0.002 * n)
    assert line.line().intercept == pytest.approx(0.01)
    assert line.line().slope == pytest.approx(0.002)


def test_many_observations_at_one_width_do_not_outweigh_the_others():
    """Plain decoding measures only n=1 for a while: the line still passes through the other widths' times."""
    cost = LinearCost()
    cost.observe(8, 0.012)
    for _ in range(200):
        cost.observe(1, 0.010)
    assert cost(8) == pytest.approx(0.012, rel=0.2)


def test_a_stall_bends_the_cost_fit_only_a_little():
    cost = LinearCost(decay=0.9)
    for _ in range(20):
        cost.observe(8, 0.01)
    cost.observe(8, 1.0)  # descheduled for 100 times the pass
    assert cost(8) < 0.015


def test_chain_expected_tokens_counts_the_bonus_and_stops_at_the_first_rejection():
    probs = torch.tensor([[1.0, 1.0, 0.0], [0.5, 0.5, 0.5]])  # [bs, blk-1]
    expected = chain_expected_tokens(probs)  # [bs, blk]
    assert expected[0].tolist() == [1.0, 2.0, 3.0, 3.0]
    assert expected[1].tolist() == [1.0, 1.5, 1.75, 1.875]


def test_verified_outcomes_judge_drafts_up_to_the_first_rejection_inside_the_width():
    judged, hits = verified_outcomes(torch.tensor([0, 2, 3]), width=4, num_drafts=5)
    assert judged.int().tolist() == [[1, 0, 0, 0, 0], [1, 1, 1, 0, 0], [1, 1, 1, 0, 0]]
    assert hits.int().tolist() == [[0, 0, 0, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0]]


def test_calibration_learns_the_observed_acceptance_rate():
    calibration = AcceptanceCalibration(CalibrationSettings(decay=1.0))
    scores = torch.full((1000,), 0.95)  # an over-confident drafter ...
    accepted = torch.arange(1000) % 10 < 3  # ... whose drafts the target takes 30% of the time
    calibration.observe(scores, torch.ones(1000, dtype=torch.bool), accepted)
    assert calibration(torch.tensor([0.95])).item() == pytest.approx(0.3, abs=0.01)
    assert calibration(torch.tensor([0.15])).item() == pytest.approx(0.15)  # no data: the score itself


def _run(controller: BudgetController, steps: int, bs: int, accept_rate: float,
         verify_seconds, draft_seconds: float = 0.004) -> list[int]:
    """Drive the controller with synthetic steps: every draft accepted with probability `accept_rate`
    (the drafter claims 0.9), times from the given cost functions. Returns the widths chosen."""
    g = torch.Generator().manual_seed(0)
    calibration = AcceptanceCalibration(CalibrationSettings())
    return [_synthetic_step(controller, calibration, g, bs, accept_rate, lambda b, n: verify_seconds(n), draft_seconds)
            for _ in range(steps)]


def _synthetic_step(controller: BudgetController, calibration: AcceptanceCalibration, g: torch.Generator, bs: int,
                    accept_rate: float, verify_seconds, draft_seconds: float = 0.004) -> int:
    """One step of `bs` requests (see `_run`); verify_seconds(bs, tokens). Returns the width chosen."""
    plan = controller.plan(bs)
    width, committed = plan.width, float(bs)
    if plan.drafted:
        scores = torch.full((bs, BLOCK - 1), 0.9)
        expected = chain_expected_tokens(calibration(scores)).sum(0).tolist()
        width = controller.choose({w + 1: e for w, e in enumerate(expected)}, bs, plan)
        hits = torch.rand(bs, BLOCK - 1, generator=g) < accept_rate
        accepted = hits.int().cumprod(1).sum(1).clamp(max=width - 1)  # [bs]
        calibration.observe(scores, *verified_outcomes(accepted, width, BLOCK - 1))
        committed = float(accepted.sum()) + bs
    controller.observe(StepTiming(bs, width, plan.drafted, draft_seconds if plan.drafted else 0.0,
                                  verify_seconds(bs, bs * width), committed=committed))
    return width


def test_flat_verify_cost_picks_the_full_chain():
    controller = BudgetController(BudgetSettings(BLOCK))
    widths = _run(controller, 200, bs=4, accept_rate=0.7, verify_seconds=lambda n: 0.02)
    steady = widths[50:]
    assert max(set(steady), key=steady.count) == BLOCK


def test_verify_cost_per_token_picks_a_short_chain_at_high_load():
    """Verify time proportional to tokens at 32 requests: a long chain costs more than its drafts bring."""
    controller = BudgetController(BudgetSettings(BLOCK))
    widths = _run(controller, 200, bs=32, accept_rate=0.5, verify_seconds=lambda n: 0.001 + 0.001 * n)
    tail = widths[100:]
    assert max(set(tail), key=tail.count) < BLOCK


def test_falls_back_to_plain_decoding_and_comes_back_when_acceptance_returns():
    controller = BudgetController(BudgetSettings(BLOCK))
    never = _run(controller, 300, bs=2, accept_rate=0.0, verify_seconds=lambda n: 0.01 + 0.001 * n)
    assert never[-100:].count(PLAIN_WIDTH) > 70  # plain decoding, but for probes and exploration
    back = _run(controller, 300, bs=2, accept_rate=0.95, verify_seconds=lambda n: 0.01 + 0.001 * n)
    assert back[-100:].count(PLAIN_WIDTH) < 10
    assert sum(back[-100:]) / 100 > BLOCK / 2


def test_one_probe_that_pays_ends_a_long_plain_stretch():
    """After 1,500 steps of a drafter that never hits (probes backed off), one that hits 95 % comes back at the
    first probe. Without the probe's block replacing the history (an EMA moving a fifth of the way), 8 requests
    stayed on plain decoding for all 400 steps: about 6 probes, 170 plain steps apart, were needed."""
    controller = BudgetController(BudgetSettings(BLOCK))
    _run(controller, 1500, bs=8, accept_rate=0.0, verify_seconds=lambda n: 0.01 + 0.001 * n)
    assert controller.backoff == controller.settings.max_backoff
    reasons, plan = [], controller.plan

    def recorded(*args):
        reasons.append(plan(*args))
        return reasons[-1]

    controller.plan = recorded
    back = _run(controller, 400, bs=8, accept_rate=0.95, verify_seconds=lambda n: 0.01 + 0.001 * n)
    first_probe = [p.reason for p in reasons].index("probe")
    print(f"first probe at step {first_probe}; plain steps {back.count(PLAIN_WIDTH)} of 400")
    assert PLAIN_WIDTH not in back[first_probe:first_probe + 3] and back[-100:].count(PLAIN_WIDTH) < 10


def _plain_steps_to_a_probe(controller: BudgetController, bs: int) -> int:
    """Plain steps of `bs` requests until the controller probes; the probe commits only its bonus tokens."""
    for steps in range(10_000):
        plan = controller.plan(bs)
        width = BLOCK if plan.drafted else PLAIN_WIDTH
        if plan.drafted:
            controller.choose({w: float(bs) for w in controller.settings.widths}, bs, plan)
        controller.observe(StepTiming(bs, width, plan.drafted, 0.004 if plan.drafted else 0.0,
                                      0.01 + 0.001 * bs * width, committed=float(bs)))
        if plan.reason == "probe":
            return steps
        assert plan.reason == "plain", plan
    raise AssertionError("no probe")


def test_probes_keep_their_pace_when_the_batch_shrinks():
    """Probes are priced by the share of their time they lost, so the price of 8 requests' probes (78 ms,
    77 % lost) does not space out 1 request's (22 ms, 50 % lost). Priced in seconds (the fix switched off),
    the first probe at 1 request after one at 8 came after 104 plain steps, 62 once settled; now 30 and 25."""
    controller = BudgetController(BudgetSettings(BLOCK, explore_share=0.001, max_backoff=1.0))
    for bs in (1, 8):
        for width in (PLAIN_WIDTH, BLOCK):
            controller.costs.observe(StepTiming(bs, width, width > 1, 0.004 if width > 1 else 0.0,
                                                0.01 + 0.001 * bs * width))
    controller.drafted_steps = len(controller.settings.widths)  # past warm-up
    controller.choose({w: 8.0 for w in controller.settings.widths}, 8, Plan(True, BLOCK, "probe"))
    _plain_steps_to_a_probe(controller, bs=8)
    at_one = _plain_steps_to_a_probe(controller, bs=1)
    settled = _plain_steps_to_a_probe(controller, bs=1)
    print(f"plain steps before a probe at 1 request: {at_one} after a probe at 8, {settled} after one at 1")
    assert at_one < 1.5 * settled


def test_probes_and_exploration_keep_trying_other_widths():
    controller = BudgetController(BudgetSettings(BLOCK, explore_share=0.3))
    widths = _run(controller, 120, bs=1, accept_rate=0.8, verify_seconds=lambda n: 0.02)
    assert set(widths) == set(range(1, BLOCK + 1))


def test_tree_widths_are_options_past_the_chain():
    settings = BudgetSettings(BLOCK, tree_widths=(32, 16))
    assert settings.widths == tuple(range(1, BLOCK + 1)) + (16, 32)
    controller = BudgetController(settings)
    plan = controller.plan(2)
    assert plan.drafted and plan.width == BLOCK  # warm-up starts with the full chain


def test_failing_probes_back_off():
    """A drafter that never hits: with backoff, probes and exploration take a smaller share of the steps than
    at the full shares (max_backoff 1 is the fix switched off)."""
    drafted = {}
    for max_backoff in (1.0, 4.0):
        controller = BudgetController(BudgetSettings(BLOCK, max_backoff=max_backoff))
        widths = _run(controller, 1500, bs=2, accept_rate=0.0, verify_seconds=lambda n: 0.01 + 0.001 * n)
        drafted[max_backoff] = sum(w != PLAIN_WIDTH for w in widths[-1000:])
        assert controller.backoff == max_backoff
    print(f"drafted steps of the last 1000 by max_backoff: {drafted}")
    assert drafted[4.0] * 3 <= drafted[1.0]


def test_batch_cost_separates_the_cost_per_request_from_the_cost_per_token():
    cost = BatchCost(decay=1.0)
    for bs in (1, 4, 16):
        for width in (1, 4, 8):
            cost.observe_batch(bs, bs * width, 0.002 + 0.003 * bs + 0.0002 * bs * width)
    plane = cost.plane()
    assert (plane.intercept, plane.per_request, plane.per_token) == pytest.approx((0.002, 0.003, 0.0002))
    one_batch_size = BatchCost(decay=1.0)
    for width in (1, 4, 8):
        one_batch_size.observe_batch(4, 4 * width, 0.01 + 0.001 * 4 * width)
    assert one_batch_size.plane().per_request == 0.0  # nothing tells requests from tokens: the line in tokens
    assert one_batch_size.plane()(4, 32) == pytest.approx(0.01 + 0.001 * 32)


def _run_draining(controller: BudgetController, waves: int, top_bs: int, accept_rate: float, verify_seconds) -> dict:
    """Batches that drain as their requests finish (top_bs, top_bs-1 .. 1, again), as in a benchmark run
    at high concurrency; verify_seconds(bs, tokens). Returns width -> steps at the largest batch sizes."""
    g = torch.Generator().manual_seed(0)
    calibration = AcceptanceCalibration(CalibrationSettings())
    chosen: dict[int, int] = {}
    for _ in range(waves):
        for bs in range(top_bs, 0, -1):
            for _ in range(3):
                width = _synthetic_step(controller, calibration, g, bs, accept_rate, verify_seconds)
                if bs > top_bs // 2:
                    chosen[width] = chosen.get(width, 0) + 1
    return chosen


@pytest.mark.parametrize("per_request_fit", [True, False])
def test_a_cost_per_request_does_not_make_plain_decoding_look_cheap_in_large_batches(monkeypatch, per_request_fit):
    """Each request costs 2 ms of verify and each token 0.05 ms: at 9-16 requests a long chain at acceptance
    0.6 commits ~2.4x the tokens for ~1.2x the time, so long chains must dominate. Priced by one line in the
    tokens (the fix switched off), the small batches' cheap passes price a large batch's plain step low and
    its long chains high: plain decoding and short chains take over."""
    if not per_request_fit:
        monkeypatch.setattr(BatchCost, "plane", lambda self: Plane(self.line().intercept, 0.0, self.line().slope))
    controller = BudgetController(BudgetSettings(BLOCK))
    chosen = _run_draining(controller, waves=12, top_bs=16, accept_rate=0.6,
                           verify_seconds=lambda bs, n: 0.002 + 0.002 * bs + 0.00005 * n)
    long_share = sum(n for w, n in chosen.items() if w >= BLOCK - 2) / sum(chosen.values())
    print(f"per-request fit {per_request_fit}: widths at 9-16 requests {dict(sorted(chosen.items()))}")
    if per_request_fit:
        assert long_share > 0.8
    else:
        assert long_share < 0.3


@pytest.mark.parametrize("own_plain_fit", [True, False])
def test_plain_steps_do_not_bend_the_price_of_long_chains(monkeypatch, own_plain_fit):
    """A plain step costs 10 ms (DECODE forward, bare sample); a chain's verify 12 ms + 0.1 ms per token. After
    one step at every width, 200 steps alternate plain decoding and chains of 3. One line through all of them
    (the fix switched off) runs through the recent (1, 10 ms) and (3, 12.3 ms) and prices the full chain at
    ~16 ms; the chains' own fit keeps it at its 12.8 ms."""
    if not own_plain_fit:
        monkeypatch.setattr(StepCosts, "_fit", lambda self, width: self.verify)
    costs = StepCosts(BLOCK)

    def seconds(width: int) -> float:
        return 0.010 if width == 1 else 0.012 + 0.0001 * width

    for width in [*range(1, BLOCK + 1)] + [1, 3] * 100:
        costs.observe(StepTiming(1, width, width > 1, 0.004 if width > 1 else 0.0, seconds(width)))
    full_chain = costs.seconds(1, BLOCK, drafted=True) - 0.004
    print(f"own plain fit {own_plain_fit}: full chain priced {1e3 * full_chain:.2f} ms (true 12.80)")
    if own_plain_fit:
        assert full_chain == pytest.approx(seconds(BLOCK), rel=0.05)
        assert costs.seconds(1, 1, drafted=False) == pytest.approx(0.010, rel=0.05)
    else:
        assert full_chain > 1.2 * seconds(BLOCK)


def test_the_state_line_shows_the_measured_verify_time_of_each_width():
    controller = BudgetController(BudgetSettings(BLOCK))
    _run(controller, 40, bs=2, accept_rate=0.7, verify_seconds=lambda n: 0.01 + 0.001 * n)
    line = controller.describe(2)
    assert "verify ms by width at this bs {2: 14.0, 3: 16.0," in line, line  # 10 ms + 1 ms per token, 2 requests
    assert "plain 12.00ms" in line, line


def test_a_batch_without_trees_explores_only_the_chains_widths():
    controller = BudgetController(BudgetSettings(BLOCK, tree_widths=(16, 32), explore_share=0.5))
    planned = {trees: set() for trees in (False, True)}
    for trees in (False, True):
        for _ in range(60):
            plan = controller.plan(1, trees=trees)
            width = plan.width if plan.drafted and plan.width is not None else PLAIN_WIDTH
            if plan.drafted:
                controller.choose({w: 2.0 for w in range(1, BLOCK + 1)}, 1, plan)
            planned[trees].add(width)
            controller.observe(StepTiming(1, width, plan.drafted, 0.004 if plan.drafted else 0.0, 0.01 + 0.001 * width))
    assert max(planned[False]) == BLOCK
    assert {16, 32} <= planned[True]


def _past_warm_up(controller: BudgetController, bs: int) -> None:
    """Both fits measured at `bs`: plain steps at 10 ms a pass, chains at 10 ms + 1 ms per token, drafts 4 ms."""
    for width in (PLAIN_WIDTH, 3, BLOCK):
        controller.costs.observe(StepTiming(bs, width, width > 1, 0.004 if width > 1 else 0.0,
                                            0.01 + (0.001 * bs * width if width > 1 else 0.0)))
    controller.drafted_steps = len(controller.settings.widths)


@pytest.mark.parametrize("won", [True, False])
def test_only_a_chosen_step_that_won_restores_the_probe_and_exploration_shares(won):
    """A plain step commits 8 tokens in 10 ms here. A chosen chain of 8 (4 ms draft + 74 ms verify) that
    commits 64 tokens won; one that commits 16 lost, and the shares stay backed off (the rule before restored
    them on every chosen step, and on sampled requests exploration came back to its full share)."""
    controller = BudgetController(BudgetSettings(BLOCK))
    _past_warm_up(controller, bs=8)
    controller.backoff = controller.settings.max_backoff
    plan = Plan(True, None, "chosen")
    controller._last_reason = "chosen"
    width = controller.choose({w: 8.0 * w for w in controller.settings.widths}, 8, plan)
    assert width == BLOCK
    controller.observe(StepTiming(8, BLOCK, True, 0.004, 0.074, committed=64.0 if won else 16.0))
    assert controller.backoff == (1.0 if won else controller.settings.max_backoff)


def test_exploration_measures_width_1_by_a_plain_step():
    """Width 1 is plain decoding. A drafted step at width 1 pays a draft pass and commits what a plain pass
    does: warm-up takes it once; exploration's turn at width 1 is a plain step, which measures the plain fit
    at this batch size."""
    controller = BudgetController(BudgetSettings(BLOCK, explore_share=0.5))
    steps = []
    for _ in range(200):
        plan = controller.plan(2)
        width = plan.width if plan.drafted and plan.width is not None else PLAIN_WIDTH
        if plan.drafted:
            controller.choose({w: 2.0 for w in range(1, BLOCK + 1)}, 2, plan)
        steps.append((plan.reason, plan.drafted, width))
        controller.observe(StepTiming(2, width, plan.drafted, 0.004 if plan.drafted else 0.0, 0.01 + 0.001 * width))
    assert ("warm-up", True, PLAIN_WIDTH) in steps
    assert {w for reason, _, w in steps if reason == "explore"} == set(range(2, BLOCK + 1))
    assert {(drafted, w) for reason, drafted, w in steps if reason == "explore-plain"} == {(False, PLAIN_WIDTH)}


def test_a_probe_that_lost_nothing_does_not_make_every_drafted_step_a_probe():
    """Probes are for plain stretches. Priced at a loss of 0 (the first probe won), one was due after any
    drafted step too, and every step verified the full chain until a probe lost."""
    controller = BudgetController(BudgetSettings(BLOCK))
    _past_warm_up(controller, bs=8)
    controller.probe_loss.observe(0.0)
    assert controller.plain_seconds == 0.0
    assert controller.plan(8).reason != "probe"
