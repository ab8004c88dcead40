"""Issue 12 item 3: `--speculative-dflash-tree-budget auto` picks a verify width per batch step and stays
lossless: greedy tokens equal AR's at c=1 and c=8; the widths are in meta_info and in /metrics."""

from __future__ import annotations

import re
import urllib.request
from collections import Counter

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


def test_a_stop_or_the_length_limit_inside_a_plain_run_ends_the_request_there(auto_server, prompts):
    """Sampled requests from 8 clients: `auto` decodes them mostly in plain runs (spec/plain_run.py), each of
    up to a block of tokens in one scheduler step. A run that passes a request's max_new_tokens or samples
    its stop token must end the request exactly there, as a verified block does."""
    first = generate_many(auto_server.base_url, prompts[:16], 13, 8, temperature=1.0, ignore_eos=True)
    assert [r["meta_info"]["completion_tokens"] for r in first] == [13] * 16  # 13: no multiple of the block
    # the token sampled by the most requests (not the most often: one that repeats inside two answers gave
    # 1 stop of 16 on 2026-12-01), so that many of them sample it again within 40 tokens
    in_requests = Counter(t for r in first for t in set(r["output_ids"][1:]))
    stop = max(in_requests, key=lambda t: (in_requests[t], -t))
    results = generate_many(auto_server.base_url, prompts[:16], 40, 8, temperature=1.0, stop_token_ids=[stop])
    stopped = 0
    for r in results:
        out, reason = r["output_ids"], r["meta_info"]["finish_reason"]
        assert len(out) == r["meta_info"]["completion_tokens"] <= 40
        if reason.get("matched") == stop:
            stopped += 1
            assert out[-1] == stop and stop not in out[:-1], (out, reason)
        else:
            assert stop not in out, (out, reason)
    assert stopped >= 4, f"only {stopped} of 16 requests met token {stop}"
    widths = [w for r in first + results for w in r["meta_info"].get(WIDTHS, [])]  # none: stopped at prefill
    print(f"stop token {stop}: {stopped} of 16 stopped on it; plain passes {widths.count(1)} of {len(widths)} steps")
    assert widths.count(1) > len(widths) / 2  # mostly plain decoding: the runs are what this test exercises
    assert "first plain run" in auto_server.log_text()
    assert not leak_reports(auto_server)
