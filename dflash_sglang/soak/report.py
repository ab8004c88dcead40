"""The soak's numbers and its verdict: any unexpected error, greedy mismatch, KV usage at idle, leak report or
RSS growth of 5 % or more between minute 5 and the end fails the soak. The growth is the anonymous RSS's (RssAnon):
on a host short of memory the kernel drops file-backed pages, and total RSS then falls for reasons of its own."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from dflash_sglang.soak.references import Reference, mismatch
from dflash_sglang.soak.requests import Outcome

RSS_GROWTH_LIMIT = 0.05
RSS_WINDOW_START_MIN = 5.0  # minute 5 of a run of at least RSS_FULL_WINDOW_MIN
RSS_FULL_WINDOW_MIN = 10.0
RSS_AVERAGE_S = 30.0  # each end of the window is the mean RSS over this long (one sample is noisy)


@dataclass(frozen=True)
class IdleState:
    token_usage: float
    healthy: bool
    leak_lines: tuple[str, ...]


def rss_window(minutes: float) -> tuple[float, str]:
    """(seconds into the traffic where the RSS window starts, how it was chosen)."""
    if minutes >= RSS_FULL_WINDOW_MIN:
        return RSS_WINDOW_START_MIN * 60, "minute 5 to the end"
    start = minutes * 60 * RSS_WINDOW_START_MIN / 30.0
    return start, f"proportional for a run under {RSS_FULL_WINDOW_MIN:g} min: {start:.0f} s (1/6 of the run) to the end"


def rss_growth(samples: list[tuple[float, int, int]], start_s: float, end_s: float) -> dict:
    """Anonymous RSS at the window's start and end (each a mean over RSS_AVERAGE_S), and the growth between."""
    def mean_between(lo: float, hi: float) -> float:
        values = [anon for t, _, anon in samples if lo <= t <= hi]
        assert values, f"no RSS sample between {lo:.0f} s and {hi:.0f} s"
        return sum(values) / len(values)

    begin = mean_between(start_s, start_s + RSS_AVERAGE_S)
    end = mean_between(end_s - RSS_AVERAGE_S, end_s)
    return {"measure": "RssAnon", "start_mb": round(begin / 2**20, 1), "end_mb": round(end / 2**20, 1),
            "growth": round(end / begin - 1, 4)}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency_per_minute(outcomes: list[Outcome], traffic_start_s: float) -> list[dict]:
    """p50/p99 end-to-end latency of the requests that finished normally, by the minute they started in."""
    by_minute: dict[int, list[float]] = {}
    for o in outcomes:
        if o.error is None and o.finish in ("length", "stop"):
            by_minute.setdefault(int((o.start_s - traffic_start_s) // 60), []).append(o.latency_s)
    return [{"minute": m, "requests": len(v), "p50_s": round(_percentile(v, 0.5), 3), "p99_s": round(_percentile(v, 0.99), 3)}
            for m, v in sorted(by_minute.items())]


def _errors(outcomes: list[Outcome], expected: bool) -> dict[str, int]:
    kinds = Counter(f"{o.kind}:{o.error}" for o in outcomes if o.error is not None and o.expected == expected)
    return dict(sorted(kinds.items()))


def greedy_check(outcomes: list[Outcome], references: dict[str, Reference]) -> dict:
    checked = [o for o in outcomes if o.full_greedy]
    mismatches = [m for o in checked if (m := mismatch(o, references[o.key])) is not None]
    return {"checked": len(checked), "mismatches": len(mismatches), "examples": mismatches[:10]}


def build_report(outcomes: list[Outcome], references: dict[str, Reference], rss: list[tuple[float, int, int]],
                 traffic: tuple[float, float], idle: IdleState, minutes: float, settings: dict) -> dict:
    """traffic: (start, end) seconds of the traffic since t0 (the RSS samples' clock)."""
    start_s, window_note = rss_window(minutes)
    finishes = Counter(o.finish or "none" for o in outcomes)
    report = {
        "settings": {**settings, "minutes": minutes},
        "requests": {"total": len(outcomes), "by_kind": dict(Counter(o.kind for o in outcomes)),
                     "streamed": sum(o.stream for o in outcomes), "finish": dict(finishes),
                     "cut_at_deadline": sum(o.cut_at_deadline for o in outcomes),
                     "completion_tokens": sum(o.completion_tokens for o in outcomes)},
        "errors": {"expected": _errors(outcomes, True), "unexpected": _errors(outcomes, False),
                   "unexpected_examples": [{"kind": o.kind, "stream": o.stream, "error": o.error, "detail": o.detail}
                                           for o in outcomes if not o.expected][:10]},
        "greedy": greedy_check(outcomes, references),
        "idle": {"token_usage": idle.token_usage, "healthy": idle.healthy, "leak_lines": list(idle.leak_lines)},
        "rss": {"window": window_note, **rss_growth(rss, traffic[0] + start_s, traffic[1]),
                "samples_columns": ["s", "rss_mb", "anon_mb"],
                "samples": [[round(t, 1), round(b / 2**20, 1), round(a / 2**20, 1)] for t, b, a in rss]},
        "latency_per_minute": latency_per_minute(outcomes, traffic[0]),
    }
    report["failures"] = failures(report)
    return report


def failures(report: dict) -> list[str]:
    """Why the soak failed; [] if it passed."""
    out = []
    if (n := sum(report["errors"]["unexpected"].values())) > 0:
        out.append(f"{n} unexpected errors: {report['errors']['unexpected']}")
    if report["greedy"]["mismatches"] > 0:
        out.append(f"{report['greedy']['mismatches']} of {report['greedy']['checked']} greedy requests differ from AR")
    if report["greedy"]["checked"] == 0:
        out.append("no greedy request ran to its end: nothing was checked against AR")
    idle = report["idle"]
    if idle["token_usage"] != 0 or not idle["healthy"] or idle["leak_lines"]:
        out.append(f"at idle: token usage {idle['token_usage']}, healthy {idle['healthy']}, "
                   f"leak reports {idle['leak_lines'][:3]}")
    if report["rss"]["growth"] >= RSS_GROWTH_LIMIT:
        out.append(f"anonymous RSS grew {report['rss']['growth']:.1%} ({report['rss']['window']}), "
                   f"limit {RSS_GROWTH_LIMIT:.0%}")
    return out
