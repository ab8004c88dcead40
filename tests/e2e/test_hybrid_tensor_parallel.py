"""Issue 13 item 1 on the hybrid pair (Gated DeltaNet + attention): our DFLASH worker with `--tp-size 2` on this CPU.

At TP 2 SGLang shards the recurrent layers' heads and state across the ranks; our worker commits each rank's share
of the state after exactly the committed tokens (sglang_adapter/recurrent_state.py) and every rank commits rank 0's
tokens. On the session's 30 HumanEval prompts, at c=1 and c=4: greedy tokens equal AR's at TP 1, and every
request's per-step acceptance lengths equal our worker's at TP 1. Servers: hybrid AR (the session's), our worker at
TP 1 (released once its acceptance lengths are read) and at TP 2.
"""

from __future__ import annotations

import pytest

from dflash_sglang.client import generate_many
from helpers.e2e import (
    LOSSLESS_NEW_TOKENS as NEW_TOKENS, FP32, HYBRID_ENV, HYBRID_MEMORY_ARGS, assert_tp2_equals_tp1, dflash_args,
    leak_reports,
)

pytestmark = [pytest.mark.e2e, pytest.mark.long]

TP2 = ("--tp-size", "2")
STRATEGY = ("--mamba-radix-cache-strategy", "no_buffer")


def _args(drafter) -> tuple[str, ...]:
    return FP32 + HYBRID_MEMORY_ARGS + STRATEGY + dflash_args(drafter)


@pytest.fixture(scope="module")
def tp1_acceptance(module_servers, hybrid_pair, prompts) -> list[list[int]]:
    target, drafter = hybrid_pair
    server = module_servers.get("hybrid-ours-tp1", target, _args(drafter), env=HYBRID_ENV)
    results = generate_many(server.base_url, prompts, NEW_TOKENS, 1, temperature=0)
    module_servers.release(target, _args(drafter), env=HYBRID_ENV)  # memory for the two TP-2 ranks
    return [r["meta_info"]["dflash_acceptance_lengths"] for r in results]


@pytest.fixture(scope="module")
def tp2_server(module_servers, hybrid_pair, tp1_acceptance):
    target, drafter = hybrid_pair
    return module_servers.get("hybrid-ours-tp2", target, _args(drafter) + TP2, env=HYBRID_ENV)


@pytest.mark.parametrize("concurrency", [1, 4])
def test_hybrid_tp2_greedy_tokens_equal_ar_and_acceptance_equals_tp1(tp2_server, prompts, hybrid_ar_outputs,
                                                                     tp1_acceptance, concurrency):
    results = generate_many(tp2_server.base_url, prompts, NEW_TOKENS, concurrency, temperature=0)
    line = assert_tp2_equals_tp1(results, hybrid_ar_outputs, tp1_acceptance)
    assert not leak_reports(tp2_server)
    print(f"hybrid TP 2, c={concurrency}: {line}")
