"""Load generation: the same prompts at a fixed concurrency against one server, with a progress bar."""

from __future__ import annotations

import time
import urllib.error
from concurrent.futures import ThreadPoolExecutor, as_completed

from tqdm import tqdm

from dflash_sglang.benchmark.records import RequestRecord
from dflash_sglang.benchmark.stream import stream_request
from dflash_sglang.client import HTTPStatusError, generate

# What a failed request raises: an HTTP error status, a dropped connection or timeout, a garbled body.
REQUEST_ERRORS = (HTTPStatusError, urllib.error.URLError, OSError, ValueError)


def sampling_params(max_new_tokens: int, temperature: float, ignore_eos: bool) -> dict:
    return {"max_new_tokens": max_new_tokens, "temperature": temperature, "ignore_eos": ignore_eos}


def warm_up(base_url: str, prompts: list[str], count: int, max_new_tokens: int) -> None:
    """A few untimed requests, so first-call costs (allocations, lazy init) stay out of the numbers."""
    for i in range(count):
        generate(base_url, prompts[i % len(prompts)], min(16, max_new_tokens), temperature=0.0, ignore_eos=True)


def run_load(base_url: str, prompts: list[str], concurrency: int, sampling: dict, timeout_s: float,
             desc: str) -> tuple[float, list[RequestRecord]]:
    """(wall seconds, records in prompt order). The first failed request raises (see REQUEST_ERRORS)."""
    records: list[RequestRecord | None] = [None] * len(prompts)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool, \
            tqdm(total=len(prompts), desc=desc, unit="req", leave=False) as bar:
        futures = {pool.submit(stream_request, base_url, i, p, sampling, timeout_s): i for i, p in enumerate(prompts)}
        try:
            for future in as_completed(futures):
                records[futures[future]] = future.result()
                bar.update(1)
        except REQUEST_ERRORS:
            for future in futures:
                future.cancel()
            raise
    wall = time.perf_counter() - start
    assert all(r is not None for r in records)
    return wall, records  # type: ignore[return-value]
