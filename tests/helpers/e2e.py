"""Shared by the e2e tests: server flags and reading a server's state."""

from __future__ import annotations

import re
import time
import urllib.request
from pathlib import Path

BLOCK = 8
# The lossless checks of every DFLASH mode (chain, trees, auto, TP): these prompts, AR's greedy tokens computed
# once per session (the `prompts` and `ar_outputs` fixtures in tests/e2e/conftest.py).
LOSSLESS_PROMPTS, LOSSLESS_NEW_TOKENS = 30, 64
FP32 = ("--dtype", "float32")  # exact comparisons (SGLang serves a float32 checkpoint in float16 by default)
METRICS = ("--enable-metrics",)
# Any KV or request-slot leak SGLang's own idle check finds becomes fatal, so every test sees it.
STRICT_MEMORY_ENV = {"SGLANG_ENABLE_STRICT_MEM_CHECK_DURING_IDLE": "1"}
# Hybrid targets: a float32 conv state (SGLang's default is bf16), so that AR and DFLASH compare exactly.
HYBRID_ENV = {**STRICT_MEMORY_ENV, "SGLANG_MAMBA_CONV_DTYPE": "float32"}
# SGLang sizes the recurrent-state pool from the memory left (7329 slots, 0.8 GB for the bundled hybrid pair);
# the tests' requests need a few hundred, and several servers share this host's memory.
HYBRID_MEMORY_ARGS = ("--max-mamba-cache-size", "512")
# sglang_adapter/recurrent_state.py's test-only switch (tests/adapter/test_recurrent_state.py checks the name).
SKIP_STATE_COMMIT_ENV = "DFLASH_SGLANG_TEST_SKIP_STATE_COMMIT"


def dflash_args(drafter: Path, block_size: int = BLOCK) -> tuple[str, ...]:
    return ("--speculative-algorithm", "DFLASH", "--speculative-draft-model-path", str(drafter),
            "--speculative-num-draft-tokens", str(block_size))


def first_divergence(a: list[int], b: list[int]) -> int | None:
    """The first index where two token lists differ (None if equal)."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def mismatches(results: list[dict], ar_outputs: list[list[int]]) -> dict[int, int | None]:
    """Prompt index -> first differing token, for every answer whose tokens are not AR's."""
    return {i: first_divergence(r["output_ids"], ar) for i, (r, ar) in enumerate(zip(results, ar_outputs))
            if r["output_ids"] != ar}


def assert_tp2_equals_tp1(tp2_results: list[dict], ar_outputs: list[list[int]], tp1_acceptance: list[list[int]]) -> str:
    """TP 2's greedy tokens equal AR's at TP 1, and every request's acceptance lengths equal ours at TP 1;
    returns a line with τ for the test's output."""
    bad = mismatches(tp2_results, ar_outputs)
    assert not bad, f"prompt index -> first token differing from AR at TP 1: {bad}"
    lengths = [r["meta_info"]["dflash_acceptance_lengths"] for r in tp2_results]
    differing = {i: (tp2, tp1) for i, (tp2, tp1) in enumerate(zip(lengths, tp1_acceptance)) if tp2 != tp1}
    assert not differing, f"prompt index -> (acceptance lengths at TP 2, at TP 1): {differing}"
    steps = sum(len(n) for n in lengths)
    return f"tau={sum(map(sum, lengths)) / steps:.2f} over {steps} steps"


def stream_generate(base_url: str, payload: dict) -> list[dict]:
    """The chunks of a streamed native /generate request, in order."""
    import json

    request = urllib.request.Request(base_url + "/generate", data=json.dumps({**payload, "stream": True}).encode(),
                                     headers={"Content-Type": "application/json"})
    chunks = []
    with urllib.request.urlopen(request, timeout=600) as resp:
        for raw in resp:
            line = raw.decode().strip()
            if line.startswith("data:") and line != "data: [DONE]":
                chunks.append(json.loads(line[len("data:"):]))
    return chunks


def metric(server, name: str) -> float:
    """A gauge from /metrics (the server needs --enable-metrics)."""
    with urllib.request.urlopen(server.base_url + "/metrics", timeout=30) as resp:
        text = resp.read().decode()
    match = re.search(rf"^sglang:{name}\{{[^}}]*\}} ([0-9.e+-]+)$", text, re.MULTILINE)
    assert match, f"metric {name} not exported"
    return float(match.group(1))


def token_usage(server) -> float:
    return metric(server, "num_used_tokens")


def leak_reports(server) -> list[str]:
    return [line for line in server.log_text().splitlines() if "leak detected" in line or "double free" in line]


def wait_for_zero_usage(server, timeout: float = 60) -> None:
    """The KV pool drains to 0 once requests finish (the scheduler frees asynchronously), with no leak report."""
    deadline = time.monotonic() + timeout
    while (usage := token_usage(server)) != 0 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert usage == 0, f"{usage} KV tokens still in use"
    assert not leak_reports(server)


def in_process_sglang_marks() -> list:
    """Marks for tests that import SGLang's runtime in the pytest process: it needs the harness env
    from the start of the process (LD_LIBRARY_PATH is read once), which `make test` provides."""
    import os

    import pytest

    return [
        pytest.mark.e2e,
        pytest.mark.skipif(os.environ.get("SGLANG_USE_CPU_ENGINE") != "1",
                           reason='needs the CPU harness env: eval "$(dflash-sglang env)" (make test sets it)'),
    ]
