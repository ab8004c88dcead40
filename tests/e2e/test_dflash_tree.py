"""Issue 12: verify trees (DDTree) with a fixed budget on a real SGLang server, bundled pair, block 8.

Greedy tokens with `--speculative-dflash-tree-budget 32` equal AR's on 30 HumanEval prompts at c=1 and
c=8, with SGLang's strict idle memory check on (a temporary KV slot that is never freed, or freed
twice, ends the server). τ is printed next to the chain's from the same prompts' meta_info.
"""

from __future__ import annotations

import pytest

from dflash_sglang.client import generate, generate_many
from helpers.e2e import (
    LOSSLESS_NEW_TOKENS as NEW_TOKENS, FP32, METRICS, STRICT_MEMORY_ENV, dflash_args, mismatches, leak_reports,
    stream_generate,
)

pytestmark = pytest.mark.e2e

TREE_BUDGET = 32


@pytest.fixture(scope="module")
def tree_server(module_servers, pair):
    target, drafter = pair
    args = FP32 + METRICS + dflash_args(drafter) + ("--speculative-dflash-tree-budget", str(TREE_BUDGET))
    return module_servers.get("dflash-tree32", target, args, env=STRICT_MEMORY_ENV)


def _tau(results) -> float:
    lengths = [n for r in results for n in r["meta_info"]["dflash_acceptance_lengths"]]
    assert lengths, "no speculative steps"
    return sum(lengths) / len(lengths)


def test_start_up_line_names_the_tree(tree_server):
    assert f"DDTree of {TREE_BUDGET} tokens per request" in tree_server.log_text()


@pytest.mark.parametrize("concurrency", [1, 8])
def test_greedy_tree_tokens_equal_ar(tree_server, prompts, ar_outputs, concurrency):
    results = generate_many(tree_server.base_url, prompts, NEW_TOKENS, concurrency, temperature=0)
    assert not (bad := mismatches(results, ar_outputs)), f"prompt index -> first differing token: {bad}"
    lengths = [n for r in results for n in r["meta_info"]["dflash_acceptance_lengths"]]
    assert max(lengths) <= 8  # a path is at most one block deep: the scheduler's stride
    print(f"tree {TREE_BUDGET}, c={concurrency}: tau={_tau(results):.2f}")
    assert not leak_reports(tree_server)


def test_streamed_tree_output_equals_the_whole_answer(tree_server, prompts):
    chunks = stream_generate(tree_server.base_url, {
        "text": prompts[0], "sampling_params": {"max_new_tokens": NEW_TOKENS, "temperature": 0}})
    whole = generate(tree_server.base_url, prompts[0], NEW_TOKENS, temperature=0)
    assert chunks[-1]["text"] == whole["text"]
    assert len(chunks) > 1 and chunks[-1]["meta_info"]["dflash_acceptance_lengths"] == \
        whole["meta_info"]["dflash_acceptance_lengths"]
