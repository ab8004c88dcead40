"""The benchmark CLI against the session's real AR and DFLASH servers (`--base-url`), 2 prompts each.

Checks that what the CLI reports agrees with what the server said, not any speed.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers.e2e import BLOCK

pytestmark = pytest.mark.e2e

NEW_TOKENS = 16


def _bench(server, tmp_path, name: str) -> tuple[dict, str]:
    output = tmp_path / f"{name}.json"
    result = subprocess.run(
        [sys.executable, "-m", "dflash_sglang.benchmark", "--backend", "sglang", "--base-url", server.base_url,
         "--dataset", "humaneval", "--num-prompts", "2", "--concurrency", "2", "--max-new-tokens", str(NEW_TOKENS),
         "--ignore-eos", "--warmup-requests", "1", "--output", str(output)],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert output.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    return json.loads(output.read_text()), result.stdout


def _check_requests(report: dict) -> tuple[dict, list[dict]]:
    [stats], [run] = report["results"], report["runs"]
    assert stats["error"] is None and stats["num_requests"] == 2
    requests = run["requests"]
    for r in requests:
        assert r["completion_tokens"] == NEW_TOKENS == sum(r["chunk_tokens"])  # every token arrived in a chunk
        assert r["chunk_times_s"] == sorted(r["chunk_times_s"]) and r["chunk_times_s"][0] > 0
        assert len(r["output_ids"]) == NEW_TOKENS  # the generated ids, which gpu-check compares with AR's
    assert stats["output_tokens"] == 2 * NEW_TOKENS and stats["output_tok_s"] > 0
    assert stats["ttft_ms"]["p50"] > 0 and stats["chunk_ms"] is not None
    return stats, requests


def test_ar_server_reports_tau_one(ar_server, tmp_path):
    report, stdout = _bench(ar_server, tmp_path, "ar")
    stats, _ = _check_requests(report)
    assert stats["method"] == "ar" and stats["tau"] == 1.0 and stats["tau_histogram"] is None
    assert "| humaneval | 2 | ar |" in stdout


def test_dflash_server_reports_acceptance_from_its_own_counters(dflash_server, tmp_path):
    report, stdout = _bench(dflash_server, tmp_path, "dflash")
    stats, requests = _check_requests(report)
    assert stats["method"] == "dflash" and report["runs"][0]["block_size"] == BLOCK
    # The histogram the CLI summed must count exactly the verify steps SGLang reported per request.
    assert stats["verify_steps"] == sum(r["spec_verify_ct"] for r in requests) > 0
    assert sum(stats["tau_histogram"]) == pytest.approx(1.0)
    assert 1.0 <= stats["tau"] <= BLOCK
    rates = stats["position_acceptance"]
    assert len(rates) == BLOCK - 1 and rates == sorted(rates, reverse=True)  # a later draft needs the earlier ones
    assert "| humaneval | 2 | dflash |" in stdout
