"""One streamed `/generate` request, timed chunk by chunk.

SGLang streams one `data: {...}` message per scheduler step (its default `--stream-interval 1`), each
with the cumulative `meta_info.completion_tokens`; the last one carries the speculative counters.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from dflash_sglang.benchmark.records import RequestRecord
from dflash_sglang.client import HTTPStatusError

ACCEPTANCE_KEY = "dflash_acceptance_lengths"  # our worker's per-step list (see sglang_adapter/worker.py)
WIDTH_KEY = "dflash_verify_widths"  # the same, for the verify width of `auto` (sglang_adapter/budget_auto.py)


def _messages(response):
    """The JSON objects of an SSE response, as they arrive."""
    for raw in response:
        line = raw.decode().strip()
        if not line.startswith("data:"):
            continue
        body = line[len("data:"):].strip()
        if body == "[DONE]":
            return
        yield json.loads(body)


def _record(index: int, times: list[float], counts: list[int], meta: dict, output_ids: list[int]) -> RequestRecord:
    finish = meta.get("finish_reason")
    return RequestRecord(
        prompt_index=index,
        latency_s=times[-1] if times else 0.0,
        chunk_times_s=tuple(times),
        chunk_tokens=tuple(counts),
        completion_tokens=int(meta.get("completion_tokens", sum(counts))),
        spec_verify_ct=int(meta.get("spec_verify_ct", 0)),
        correct_drafts_histogram=tuple(meta.get("spec_correct_drafts_histogram") or ()),
        acceptance_lengths=tuple(meta.get(ACCEPTANCE_KEY) or ()),
        verify_widths=tuple(meta.get(WIDTH_KEY) or ()),
        finish_reason=finish.get("type") if isinstance(finish, dict) else finish,
        output_ids=tuple(output_ids),
    )


def stream_request(base_url: str, index: int, prompt: str, sampling: dict, timeout_s: float) -> RequestRecord:
    """Send one prompt with streaming on; raise HTTPStatusError / OSError / ValueError on failure."""
    payload = {"text": prompt, "stream": True, "sampling_params": sampling}
    request = urllib.request.Request(base_url + "/generate", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    times: list[float] = []
    counts: list[int] = []
    meta: dict = {}
    output_ids: list[int] = []
    seen = 0
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            for message in _messages(response):
                now = time.perf_counter() - start
                meta = message.get("meta_info", {})
                output_ids = message.get("output_ids", output_ids)  # cumulative: SGLang's default streaming
                total = int(meta.get("completion_tokens", seen))
                if total > seen:  # a message without new tokens is not a chunk
                    times.append(now)
                    counts.append(total - seen)
                    seen = total
    except urllib.error.HTTPError as err:
        raise HTTPStatusError(err.code, err.read().decode(errors="replace")) from None
    return _record(index, times, counts, meta, output_ids)
