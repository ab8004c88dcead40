"""Issue 12: verify trees (DDTree) with a fixed budget on a real SGLang server, bundled pair, block 8.

Greedy tokens with `--speculative-dflash-tree-budget 32` equal AR's on 30 HumanEval prompts at c=1 and
c=8, with SGLang's strict idle memory check on (a temporary KV slot that is never freed, or freed
twice, ends the server). τ is printed next to the chain's from the same prompts' meta_info.
"""

from __future__ import annotations

import pytest
import torch

from dflash_sglang.client import generate, generate_many, post_json
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


def test_cached_prefixes_give_way_to_the_tree(tree_server, prompts):
    """The radix cache keeps finished requests' K/V until the pool is needed. The tree's temporary slots evict it
    as SGLang's own decode slots do (tree_models.py `reserve`); before, a warm server's steps at c=8 found the pool
    full and ran on the chain. Distinct prompts of 24 x 400 tokens overfill the 8,192-token pool's cache first."""
    generator = torch.Generator().manual_seed(0)
    fill = torch.randint(100, 4000, (24, 400), generator=generator).tolist()
    post_json(tree_server.base_url, "/generate", {"input_ids": fill, "sampling_params": {"max_new_tokens": 1}})
    results = generate_many(tree_server.base_url, prompts[:8], 16, 8, temperature=0)
    print(f"tree {TREE_BUDGET} after the cache filled, c=8: tau={_tau(results):.2f}")
    assert "kv-pool-full" not in tree_server.log_text()
    assert not leak_reports(tree_server)
