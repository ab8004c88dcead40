"""Issue 13 item 1: our DFLASH worker with `--tp-size 2` on this CPU (gloo), lossless.

The target's embedding and lm_head are vocab-parallel at TP 2; the replicated drafter needs the whole head
(sglang_adapter/tensor_parallel.py). On 30 HumanEval prompts, at c=1 and c=4:
- greedy tokens equal AR's at TP 1 (the session's AR server);
- every request's per-step acceptance lengths equal our worker's at TP 1 (the session's DFLASH server):
  the drafter sees the same full-vocab logits, and every rank commits rank 0's decision.
One TP-2 server for the module (a TP-2 start is slow here: two scheduler processes plus gloo groups), so the
module runs in `make test-long`, keeping `make test` inside its 25 minutes.
"""

from __future__ import annotations

import pytest

from dflash_sglang.client import generate_many
from helpers.e2e import (
    LOSSLESS_NEW_TOKENS as NEW_TOKENS, FP32, METRICS, STRICT_MEMORY_ENV, assert_tp2_equals_tp1, dflash_args,
    leak_reports, token_usage,
)

pytestmark = [pytest.mark.e2e, pytest.mark.long]

TP2 = ("--tp-size", "2")


@pytest.fixture(scope="module")
def tp1_acceptance(dflash_server, prompts) -> list[list[int]]:
    results = generate_many(dflash_server.base_url, prompts, NEW_TOKENS, 1, temperature=0)
    return [r["meta_info"]["dflash_acceptance_lengths"] for r in results]


@pytest.fixture(scope="module")
def tp2_server(module_servers, pair):
    target, drafter = pair
    return module_servers.get("dflash-tp2", target, FP32 + METRICS + dflash_args(drafter) + TP2,
                              env=STRICT_MEMORY_ENV)


@pytest.mark.parametrize("concurrency", [1, 4])
def test_tp2_greedy_tokens_equal_ar_and_acceptance_equals_tp1(tp2_server, prompts, ar_outputs, tp1_acceptance,
                                                              concurrency):
    results = generate_many(tp2_server.base_url, prompts, NEW_TOKENS, concurrency, temperature=0)
    print(f"TP 2, c={concurrency}: {assert_tp2_equals_tp1(results, ar_outputs, tp1_acceptance)}")


def test_tp2_server_holds_no_tokens_at_idle_and_reports_no_leak(tp2_server, prompts):
    generate_many(tp2_server.base_url, prompts[:4], NEW_TOKENS, 4, temperature=0)
    assert token_usage(tp2_server) == 0
    assert not leak_reports(tp2_server)
