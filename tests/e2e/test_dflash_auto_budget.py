"""Issue 12 item 3: `--speculative-dflash-tree-budget auto` picks a verify width per batch step and stays
lossless: greedy tokens equal AR's at c=1 and c=8; the widths are in meta_info and in /metrics."""

from __future__ import annotations

import re
import urllib.request

import pytest

from dflash_sglang.client import generate_many
from helpers.e2e import (
    LOSSLESS_NEW_TOKENS as NEW_TOKENS, BLOCK, FP32, METRICS, STRICT_MEMORY_ENV, dflash_args, mismatches,
    leak_reports,
)

pytestmark = pytest.mark.e2e

AUTO = ("--speculative-dflash-tree-budget", "auto")
WIDTHS, LENGTHS = "dflash_verify_widths", "dflash_acceptance_lengths"
ALLOWED = {*range(1, BLOCK + 1), 16, 32, 64}  # plain decoding, shortened and full chains, trees (budget_auto.py)


@pytest.fixture(scope="module")
def auto_server(module_servers, pair):
    target, drafter = pair
    return module_servers.get("dflash-auto", target, FP32 + METRICS + dflash_args(drafter) + AUTO,
                              env=STRICT_MEMORY_ENV)


@pytest.mark.parametrize("concurrency", [1, 8])
def test_greedy_tokens_equal_ar(auto_server, prompts, ar_outputs, concurrency):
    results = generate_many(auto_server.base_url, prompts, NEW_TOKENS, concurrency, temperature=0)
    assert not (bad := mismatches(results, ar_outputs)), f"prompt index -> first differing token: {bad}"
    for r in results:
        widths, lengths = r["meta_info"][WIDTHS], r["meta_info"][LENGTHS]
        assert len(widths) == len(lengths) > 0  # one width per step, aligned with the step's length
        assert set(widths) <= ALLOWED, widths
        assert all(n <= w for n, w in zip(lengths, widths)), (lengths, widths)  # a step commits <= its width
    widths = [w for r in results for w in r["meta_info"][WIDTHS]]
    steps = len(widths)
    tau = sum(sum(r["meta_info"][LENGTHS]) for r in results) / steps
    histogram = {w: widths.count(w) for w in sorted(set(widths))}
    print(f"c={concurrency}: tau={tau:.2f} over {steps} steps, widths {histogram}")
    assert not leak_reports(auto_server)


def test_widths_are_counted_in_prometheus(auto_server, prompts):
    generate_many(auto_server.base_url, prompts[:2], 16, 1, temperature=0)
    with urllib.request.urlopen(auto_server.base_url + "/metrics", timeout=30) as resp:
        text = resp.read().decode()
    counts = {int(w): float(n) for w, n in
              re.findall(r'^sglang:dflash_verify_width_steps_total\{[^}]*width="(\d+)"[^}]*\} ([0-9.e+]+)$', text,
                         re.MULTILINE)}
    assert counts, "sglang:dflash_verify_width_steps_total not exported"
    assert set(counts) == ALLOWED  # warm-up tries every width
    assert counts.get(BLOCK, 0) > 0
