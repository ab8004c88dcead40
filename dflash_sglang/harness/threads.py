"""How many OpenMP threads each SGLang scheduler (one per TP rank) gets on a host without an NVIDIA driver.

Torch starts one thread per core, and every operator above its grain size runs as a parallel region that
ends in a barrier. A scheduler shares the cores with SGLang's tokenizer, detokenizer and HTTP processes,
the client and any other server: whenever one of them runs, a pool that fills every core waits at each
barrier for a descheduled thread. Measured on the 2-core host (2026-11-30, bundled pair, chain of 8, c=1,
load average ~4.5, alternating rounds): 7.8 and 8.7 tok/s with 2 threads, 225 and 206 tok/s with 1.
So each rank gets the cores left after one is kept free, divided among the ranks, and at least 1.
A value the caller already set wins.
"""

from __future__ import annotations

import os

THREADS_ENV = "OMP_NUM_THREADS"
CORES_KEPT_FREE = 1  # for the tokenizer, detokenizer and HTTP processes


def threads_per_rank(cores: int, tp_size: int) -> int:
    assert cores >= 1 and tp_size >= 1, (cores, tp_size)
    return max(1, (cores - CORES_KEPT_FREE) // tp_size)


def threads_environment(tp_size: int, base: dict[str, str] | None = None) -> dict[str, str]:
    """{OMP_NUM_THREADS: n} unless `base` (default: os.environ) sets it already."""
    base = os.environ if base is None else base
    if THREADS_ENV in base:
        return {}
    return {THREADS_ENV: str(threads_per_rank(len(os.sched_getaffinity(0)), tp_size))}
