"""Issue 10: `--speculative-draft-window-size W`, the same algorithm as SGLang's builtin.

On prompts longer than the window (HumanEval prompts joined to >= 1,000 tokens), every request's per-step
acceptance lengths from our worker equal those of the builtin (`DFLASH_SGLANG_IMPL=builtin`) with the same
W, and the tokens equal AR's, at c=1 and c=4; W=256 runs with `--chunked-prefill-size 128`. The c=4 round
re-sends the c=1 prompts, so it also runs on radix-cache hits. A guard checks that the window applies.
"""

from __future__ import annotations

import functools

import pytest
from transformers import AutoTokenizer

from dflash_sglang.client import generate_many
from dflash_sglang.datasets import humaneval_prompts
from helpers.e2e import FP32, STRICT_MEMORY_ENV, dflash_args

pytestmark = pytest.mark.e2e

NUM_PROMPTS = 4
MIN_PROMPT_TOKENS = 1000
NEW_TOKENS = 40
WINDOW_ARGS = {64: (), 256: ("--chunked-prefill-size", "128")}  # window -> further server flags
IMPL_ENV = {"ours": STRICT_MEMORY_ENV, "builtin": {**STRICT_MEMORY_ENV, "DFLASH_SGLANG_IMPL": "builtin"}}


@pytest.fixture(scope="module")
def long_prompts(pair) -> list[list[int]]:
    """Token ids of consecutive HumanEval prompts joined until >= MIN_PROMPT_TOKENS, each from its own start."""
    tokenizer = AutoTokenizer.from_pretrained(pair[0])
    tasks = [tokenizer(p)["input_ids"] for p in humaneval_prompts()]
    prompts = []
    for k in range(NUM_PROMPTS):
        ids, i = [], 17 * k
        while len(ids) < MIN_PROMPT_TOKENS:
            ids, i = ids + tasks[i % len(tasks)], i + 1
        prompts.append(ids)
    return prompts


@pytest.fixture(scope="module")
def ar_ids(ar_server, long_prompts) -> list[list[int]]:
    return [r["output_ids"] for r in generate_many(ar_server.base_url, long_prompts, NEW_TOKENS, 1, temperature=0)]


@pytest.fixture(scope="module")
def run(module_servers, pair, long_prompts):
    """run(impl, window, concurrency) -> [(output ids, per-step acceptance lengths)], once per key. The
    servers of one window are stopped when the next window's start, so at most two of them are alive."""
    target, drafter = pair
    current = []

    @functools.cache
    def _run(impl: str, window: int, concurrency: int) -> list[tuple[list[int], list[int]]]:
        if current and current[-1] != window:
            assert not module_servers.stop_started()
        current.append(window)
        args = FP32 + dflash_args(drafter) + ("--speculative-draft-window-size", str(window)) + WINDOW_ARGS[window]
        # both of the window's servers start together (conftest.py)
        servers = module_servers.start_together(target, {f"window-{window}-{each}": (args, env)
                                                          for each, env in IMPL_ENV.items()})
        server = servers(f"window-{window}-{impl}")
        if impl == "ours":
            assert f"draft window {window} tokens" in server.log_text()  # the worker's construction line
        results = generate_many(server.base_url, long_prompts, NEW_TOKENS, concurrency, temperature=0)
        return [(r["output_ids"], r["meta_info"]["dflash_acceptance_lengths"]) for r in results]

    return _run


def check_against_builtin(run, ar_ids, window: int, concurrency: int) -> None:
    ours, builtin = run("ours", window, concurrency), run("builtin", window, concurrency)
    assert [ids for ids, _ in ours] == ar_ids
    assert [ids for ids, _ in builtin] == ar_ids
    mismatched = {i: (o, b) for i, ((_, o), (_, b)) in enumerate(zip(ours, builtin)) if o != b}
    assert not mismatched, f"prompt -> (our lengths, builtin's): {mismatched}"
    assert all(len(lengths) > 1 for _, lengths in ours)  # every request ran speculative steps
    steps = sum(len(lengths) for _, lengths in ours)
    print(f"W={window} c={concurrency}: tau={sum(sum(l) for _, l in ours) / steps:.2f} over {steps} steps")


@pytest.mark.parametrize("concurrency", [1, 4])
def test_window_64_acceptance_lengths_equal_the_builtin_and_tokens_equal_ar(run, ar_ids, concurrency):
    check_against_builtin(run, ar_ids, 64, concurrency)


def test_a_window_shorter_than_the_prompt_changes_acceptance(run, dflash_server, long_prompts, ar_ids):
    """Guard: a window that is accepted and ignored would give the no-window lengths on every prompt."""
    windowed = [lengths for _, lengths in run("ours", 64, 1)]
    full = generate_many(dflash_server.base_url, long_prompts, NEW_TOKENS, 1, temperature=0)
    assert [r["output_ids"] for r in full] == ar_ids
    differing = [i for i, (w, r) in enumerate(zip(windowed, full)) if w != r["meta_info"]["dflash_acceptance_lengths"]]
    assert differing, "W=64 gave the same acceptance lengths as no window on every prompt"


@pytest.mark.parametrize("concurrency", [1, 4])
def test_window_256_with_chunked_prefill_equals_the_builtin_and_ar(run, ar_ids, concurrency):
    check_against_builtin(run, ar_ids, 256, concurrency)
