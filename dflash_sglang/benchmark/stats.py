"""The benchmark's statistics: pure functions of RunRecords, no I/O.

Acceptance length τ is the number of tokens a verify step commits (accepted drafts + the bonus token),
pooled over every verify step of a run: Σ tokens / Σ steps. It comes from our worker's per-step lists
where every response carries them, else from SGLang's per-request histogram of correct drafts per step,
which every speculative method (ours, builtin DFLASH, NGRAM) reports; the two agree step for step except
on `auto`'s plain runs (several plain passes in one scheduler step), which the histogram takes for one
step of accepted drafts and our lists count as one step per pass. The first token, sampled by prefill, is no verify
step's and is left out; SGLang's own `spec_accept_length` (completion tokens / verify steps) counts it,
and is reported beside τ as `tau_sglang`. `tau_steps` is τ from our lists alone (None where a response
lacks them), so it equals τ whenever it is set.
AR commits one token per forward: τ = 1 by definition.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from dflash_sglang.benchmark.records import RequestRecord, RunRecord

BASELINE = "ar"
PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class RunStats:
    dataset: str
    method: str
    concurrency: int
    error: str | None = None
    num_requests: int = 0
    output_tokens: int = 0
    wall_s: float = 0.0
    output_tok_s: float | None = None
    verify_steps: int = 0
    tau: float | None = None
    tau_sglang: float | None = None
    tau_steps: float | None = None  # from our worker's per-step lists, when the server returned them
    tau_histogram: list[float] | None = None  # [L-1] = fraction of verify steps that committed L tokens
    position_acceptance: list[float] | None = None  # [k-1] = fraction of steps that accepted block position k
    ttft_ms: dict | None = None  # mean and percentiles
    itl_ms: dict | None = None  # per output token after the first
    chunk_ms: dict | None = None  # between streamed chunks (a speculative step's tokens arrive together)
    speedup: float | None = None  # output tok/s over AR's at the same dataset and concurrency
    efficiency: float | None = None  # speedup / τ: 1 when a step costs what one AR forward costs


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); `values` need not be sorted."""
    assert values, "percentile of nothing"
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_summary_ms(values_s: list[float]) -> dict | None:
    if not values_s:
        return None
    summary = {"mean": 1000.0 * sum(values_s) / len(values_s)}
    summary.update({f"p{q}": 1000.0 * percentile(values_s, q) for q in PERCENTILES})
    return summary


def ttfts(requests: tuple[RequestRecord, ...]) -> list[float]:
    return [r.ttft_s for r in requests if r.ttft_s is not None]


def inter_chunk_latencies(requests: tuple[RequestRecord, ...]) -> list[float]:
    return [b - a for r in requests for a, b in zip(r.chunk_times_s, r.chunk_times_s[1:])]


def inter_token_latencies(requests: tuple[RequestRecord, ...]) -> list[float]:
    """Each chunk's gap shared by the tokens it brought: a chunk of n tokens after g seconds gives n × g/n."""
    out = []
    for r in requests:
        for a, b, n in zip(r.chunk_times_s, r.chunk_times_s[1:], r.chunk_tokens[1:]):
            out += [(b - a) / n] * n
    return out


def length_counts(requests: tuple[RequestRecord, ...], block_size: int) -> list[int]:
    """SGLang's correct-draft histograms summed over requests, indexed by acceptance length − 1."""
    size = max([block_size] + [len(r.correct_drafts_histogram) for r in requests])
    counts = [0] * size
    for r in requests:
        for correct, steps in enumerate(r.correct_drafts_histogram):
            counts[correct] += steps  # `correct` drafts + the bonus token = length correct+1
    return counts


def mean_length(counts: list[int]) -> float | None:
    steps = sum(counts)
    return sum((i + 1) * n for i, n in enumerate(counts)) / steps if steps else None


def position_acceptance(counts: list[int]) -> list[float] | None:
    """[k-1] = P(length > k): the draft at block position k (1..size-1; 0 is the anchor) was accepted."""
    steps = sum(counts)
    if not steps:
        return None
    return [sum(counts[k:]) / steps for k in range(1, len(counts))]


def tau_sglang(requests: tuple[RequestRecord, ...]) -> float | None:
    steps = sum(r.spec_verify_ct for r in requests)
    return sum(r.completion_tokens for r in requests) / steps if steps else None


def tau_from_steps(requests: tuple[RequestRecord, ...]) -> float | None:
    """Our worker's per-step acceptance lengths, pooled; None unless every request carries them."""
    counts = step_length_counts(requests, block_size=1)
    return None if counts is None else mean_length(counts)


def step_length_counts(requests: tuple[RequestRecord, ...], block_size: int) -> list[int] | None:
    """Our worker's per-step lists as counts indexed by acceptance length − 1; None unless every request
    carries them."""
    if not requests or not all(r.acceptance_lengths for r in requests):
        return None
    lengths = [length for r in requests for length in r.acceptance_lengths]
    counts = [0] * max(block_size, *lengths)
    for length in lengths:
        counts[length - 1] += 1
    return counts


def _acceptance(run: RunRecord) -> dict:
    if run.block_size is None:  # AR
        return {"tau": 1.0}
    # Ours first: SGLang's histogram counts a plain run of `auto` (several target passes in one scheduler
    # step, spec/plain_run.py) as one step with its tokens as accepted drafts; our lists count each pass.
    counts = step_length_counts(run.requests, run.block_size) or length_counts(run.requests, run.block_size)
    steps = sum(counts)
    return {
        "verify_steps": steps,
        "tau": mean_length(counts),
        "tau_sglang": tau_sglang(run.requests),
        "tau_steps": tau_from_steps(run.requests),
        "tau_histogram": [n / steps for n in counts] if steps else None,
        "position_acceptance": position_acceptance(counts),
    }


def summarize(run: RunRecord) -> RunStats:
    if not run.ok:
        return RunStats(run.dataset, run.method, run.concurrency, error=run.error)
    tokens = sum(r.completion_tokens for r in run.requests)
    return RunStats(
        run.dataset, run.method, run.concurrency,
        num_requests=len(run.requests), output_tokens=tokens, wall_s=run.wall_s,
        output_tok_s=tokens / run.wall_s if run.wall_s > 0 else None,
        ttft_ms=latency_summary_ms(ttfts(run.requests)),
        itl_ms=latency_summary_ms(inter_token_latencies(run.requests)),
        chunk_ms=latency_summary_ms(inter_chunk_latencies(run.requests)),
        **_acceptance(run),
    )


def with_speedups(stats: list[RunStats], baseline: str = BASELINE) -> list[RunStats]:
    """Speedup over the baseline's tok/s at the same dataset and concurrency, and efficiency = speedup / τ."""
    base = {(s.dataset, s.concurrency): s.output_tok_s for s in stats if s.method == baseline and s.output_tok_s}
    out = []
    for s in stats:
        reference = base.get((s.dataset, s.concurrency))
        if s.output_tok_s is None or reference is None:
            out.append(s)
            continue
        speedup = s.output_tok_s / reference
        efficiency = speedup / s.tau if s.tau else None
        out.append(dataclasses.replace(s, speedup=speedup, efficiency=efficiency))
    return out
