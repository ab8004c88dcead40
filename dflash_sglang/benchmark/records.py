"""What one benchmark run measures, before any statistics: per request, and per method × concurrency.

Times are seconds from the moment the request was sent. A chunk is one streamed server message that
carried new tokens; a speculative step's accepted tokens arrive in one chunk.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class RequestRecord:
    prompt_index: int
    latency_s: float  # until the last chunk
    chunk_times_s: tuple[float, ...]  # arrival of each token-bearing chunk; [0] is the first token
    chunk_tokens: tuple[int, ...]  # new tokens in each chunk
    completion_tokens: int
    # SGLang's counters, present for every speculative method (0 / empty for AR):
    spec_verify_ct: int = 0  # verify steps
    correct_drafts_histogram: tuple[int, ...] = ()  # [k] = verify steps that accepted k drafts
    # Our worker's per-step acceptance lengths (drafts + bonus); empty elsewhere and when streamed.
    acceptance_lengths: tuple[int, ...] = ()
    # `--speculative-dflash-tree-budget auto`: each step's verify width (1 = plain decoding); empty elsewhere.
    verify_widths: tuple[int, ...] = ()
    finish_reason: str | None = None
    output_ids: tuple[int, ...] = ()  # the generated token ids (greedy runs are compared by them)

    @property
    def ttft_s(self) -> float | None:
        return self.chunk_times_s[0] if self.chunk_times_s else None


@dataclass(frozen=True)
class RunRecord:
    """One dataset × concurrency × method: its requests, or why it could not run."""

    dataset: str
    method: str
    concurrency: int
    wall_s: float = 0.0  # first request sent .. last response complete
    requests: tuple[RequestRecord, ...] = ()
    error: str | None = None  # the reason (with the server log's tail) when it could not run
    block_size: int | None = None  # speculative width the server verifies; None for AR

    @property
    def ok(self) -> bool:
        return self.error is None


def request_to_dict(record: RequestRecord) -> dict:
    return asdict(record)

