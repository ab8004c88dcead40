"""AR's answers to the greedy pool, computed once before the soak, and the check of a DFLASH answer against them."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from dflash_sglang.soak.requests import Outcome, send
from dflash_sglang.soak.traffic import RequestSpec


@dataclass(frozen=True)
class Reference:
    output_ids: tuple[int, ...]
    text: str
    finish: str


def ar_references(base_url: str, pool: list[RequestSpec], concurrency: int) -> dict[str, Reference]:
    """key -> AR's answer; raises if AR fails any of them (there is nothing to check against then)."""
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=concurrency) as workers:
        outcomes = list(workers.map(lambda spec: send(base_url, spec, t0), pool))
    failed = [(spec.key, o.error, o.finish) for spec, o in zip(pool, outcomes) if not o.full_greedy]
    if failed:
        raise RuntimeError(f"AR could not answer {len(failed)} of the greedy pool's requests: {failed[:5]}")
    return {spec.key: Reference(o.output_ids, o.text, o.finish) for spec, o in zip(pool, outcomes)}


def mismatch(outcome: Outcome, reference: Reference) -> dict | None:
    """None if DFLASH gave AR's tokens, text and finish; else what differs (for the report)."""
    if (outcome.output_ids, outcome.text, outcome.finish) == (reference.output_ids, reference.text, reference.finish):
        return None
    first = next((i for i, (a, b) in enumerate(zip(outcome.output_ids, reference.output_ids)) if a != b),
                 min(len(outcome.output_ids), len(reference.output_ids)))
    return {"key": outcome.key, "stream": outcome.stream, "first_divergence": first,
            "ours": list(outcome.output_ids[first:first + 8]), "ar": list(reference.output_ids[first:first + 8]),
            "ours_len": len(outcome.output_ids), "ar_len": len(reference.output_ids),
            "finish": [outcome.finish, reference.finish], "same_text": outcome.text == reference.text}
