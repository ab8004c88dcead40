"""A minimal client for SGLang's native `/generate` endpoint (stdlib only), used by tests, the demo and
the benchmark. It returns the raw JSON: `text`, `output_ids` and `meta_info` (with acceptance stats)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any


class HTTPStatusError(RuntimeError):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body


def post_json(base_url: str, path: str, payload: dict[str, Any], timeout: float = 600) -> Any:
    request = urllib.request.Request(
        base_url + path, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            body = resp.read()
            return json.loads(body) if body.strip() else None
    except urllib.error.HTTPError as err:
        raise HTTPStatusError(err.code, err.read().decode(errors="replace")) from None


def generate(base_url: str, prompt: str | list[int], max_new_tokens: int, **sampling: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"sampling_params": {"max_new_tokens": max_new_tokens, **sampling}}
    payload["input_ids" if isinstance(prompt, list) else "text"] = prompt
    return post_json(base_url, "/generate", payload)


def generate_many(base_url: str, prompts: list, max_new_tokens: int, concurrency: int, **sampling: Any) -> list[dict]:
    """One request per prompt, `concurrency` in flight; results in prompt order."""
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(lambda p: generate(base_url, p, max_new_tokens, **sampling), prompts))
