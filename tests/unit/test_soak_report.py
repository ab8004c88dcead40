"""The soak's checks on hand-made outcomes: a corrupted AR reference is caught, each failure criterion fails
the verdict, the RSS window is minute 5 (proportional under 10 minutes), latency is bucketed per minute."""

from __future__ import annotations

import random

import pytest

from dflash_sglang.soak import traffic
from dflash_sglang.soak.references import Reference, mismatch
from dflash_sglang.soak.report import IdleState, build_report, rss_growth, rss_window
from dflash_sglang.soak.requests import Outcome

SETTINGS = {"concurrency": 2}


def _greedy(key: str, ids: tuple[int, ...], start_s: float = 1.0, **kw) -> Outcome:
    return Outcome(kind="greedy", stream=False, start_s=start_s, latency_s=0.5, output_ids=ids, text="t",
                   finish="length", key=key, **kw)


def _rss(growth: float, minutes: float = 3) -> list[tuple[float, int, int]]:
    """One sample a second over the traffic, anonymous RSS rising linearly by `growth` over the run (total RSS
    flat: the criterion reads the anonymous one)."""
    seconds = int(minutes * 60)
    return [(float(t), int(2e9), int(1e9 * (1 + growth * t / seconds))) for t in range(seconds + 1)]


def _report(outcomes, references, rss=None, idle=IdleState(0.0, True, ()), minutes: float = 3) -> dict:
    return build_report(outcomes, references, rss or _rss(0.0, minutes), (0.0, minutes * 60), idle, minutes, SETTINGS)


def test_equal_answers_pass():
    refs = {"g0": Reference((5, 6, 7), "t", "length")}
    report = _report([_greedy("g0", (5, 6, 7))], refs)
    assert report["failures"] == [] and report["greedy"] == {"checked": 1, "mismatches": 0, "examples": []}


def test_a_corrupted_reference_is_a_mismatch():
    refs = {"g0": Reference((5, 9, 7), "t", "length")}
    report = _report([_greedy("g0", (5, 6, 7))], refs)
    assert report["greedy"]["mismatches"] == 1
    assert report["greedy"]["examples"][0]["first_divergence"] == 1
    assert any("differ from AR" in f for f in report["failures"])


@pytest.mark.parametrize("ours, first", [((5, 6), 2), ((5, 6, 7, 8), 3)], ids=["shorter", "longer"])
def test_a_length_difference_is_a_mismatch(ours, first):
    assert mismatch(_greedy("g0", ours), Reference((5, 6, 7), "t", "length"))["first_divergence"] == first


def test_aborted_or_failed_greedy_requests_are_not_compared():
    refs = {"g0": Reference((5, 6, 7), "t", "length")}
    cut = Outcome(kind="greedy", stream=True, start_s=1, latency_s=1, error="connection", expected=False, key="g0")
    report = _report([_greedy("g0", (5, 6, 7)), cut], refs)
    assert report["greedy"]["checked"] == 1
    assert report["errors"]["unexpected"] == {"greedy:connection": 1}
    assert any("unexpected errors" in f for f in report["failures"])


def test_expected_errors_do_not_fail():
    invalid = Outcome(kind="invalid", stream=False, start_s=1, latency_s=0.1, error="http_400", expected=True)
    report = _report([_greedy("g0", (1,)), invalid], {"g0": Reference((1,), "t", "length")})
    assert report["errors"]["expected"] == {"invalid:http_400": 1} and report["failures"] == []


def test_usage_at_idle_and_leak_lines_fail():
    refs = {"g0": Reference((1,), "t", "length")}
    assert _report([_greedy("g0", (1,))], refs, idle=IdleState(12.0, True, ()))["failures"]
    assert _report([_greedy("g0", (1,))], refs, idle=IdleState(0.0, True, ("leak detected",)))["failures"]
    assert _report([_greedy("g0", (1,))], refs, idle=IdleState(0.0, False, ()))["failures"]


@pytest.mark.parametrize("growth, fails", [(0.03, False), (0.2, True)], ids=["3pct-over-the-run", "20pct"])
def test_rss_growth_limit(growth, fails):
    refs = {"g0": Reference((1,), "t", "length")}
    report = _report([_greedy("g0", (1,))], refs, rss=_rss(growth))
    assert bool(report["failures"]) == fails


def test_rss_window_is_minute_five_or_proportional():
    assert rss_window(30)[0] == 300 and rss_window(10)[0] == 300
    start, note = rss_window(3)
    assert start == 30 and "proportional" in note
    # growth is measured from the window's start, not the run's: early warm-up growth does not count
    samples = [(0.0, 0, 100), (10.0, 0, 150)] + [(float(t), 0, 200) for t in range(30, 181)]
    assert rss_growth(samples, 30, 180)["growth"] == 0


def test_latency_is_bucketed_by_minute():
    refs = {f"g{i}": Reference((1,), "t", "length") for i in range(3)}
    outs = [_greedy("g0", (1,), start_s=5), _greedy("g1", (1,), start_s=65), _greedy("g2", (1,), start_s=70)]
    rows = _report(outs, refs)["latency_per_minute"]
    assert [(r["minute"], r["requests"]) for r in rows] == [(0, 1), (1, 2)]


def test_traffic_mix_has_every_kind_and_fits_the_context():
    rng = random.Random(0)
    texts = [f"def f{i}(x):\n    \"\"\"{'word ' * (i * 7 % 50)}\"\"\"\n" for i in range(60)]
    prompts = traffic.build_prompts(texts, lambda t: len(t.split()) + 1, 2048, rng)
    pool = traffic.greedy_pool(prompts, 40, 2048, rng)
    deck = traffic.kinds(rng)
    specs = [traffic.next_request(rng, next(deck), pool, prompts, 2048) for _ in range(400)]
    deck_size = sum(traffic.KIND_DECK.values())
    assert {s.kind for s in specs[:deck_size]} == set(traffic.KINDS)  # every kind in the first deck already
    assert {s.stream for s in specs} == {True, False}
    assert {p.shape for p in prompts} == {"short", "medium", "long", "shared-prefix"}
    assert all(1 <= s.max_tokens <= traffic.MAX_TOKENS for s in pool)
    assert all(s.key in {p.key for p in pool} for s in specs if s.kind == traffic.GREEDY)


def test_min_new_tokens_never_exceeds_max_tokens():
    rng = random.Random(1)
    prompts = [traffic.Prompt("def f():\n", 4, "short")]
    pool = traffic.greedy_pool(prompts, 300, 2048, rng)
    with_min = [s.payload["sampling_params"] for s in pool if "min_new_tokens" in s.payload["sampling_params"]]
    assert with_min and all(p["min_new_tokens"] <= p["max_new_tokens"] for p in with_min)
