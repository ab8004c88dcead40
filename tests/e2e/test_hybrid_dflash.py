"""Issue 9: DFLASH on a hybrid target (Gated DeltaNet + full attention, `Qwen3NextForCausalLM`) is lossless,
with `--mamba-radix-cache-strategy` no_buffer and extra_buffer, and runs the same algorithm as SGLang's builtin.

A verify pass leaves the target's recurrent state untouched and keeps the state after each block position
aside; our worker's recurrent-state commit (sglang_adapter/recurrent_state.py) puts the state after exactly
the committed tokens back. Without it the second generated token already differs (the guard below).
"""

from __future__ import annotations

import pytest

from dflash_sglang.client import generate, generate_many
from helpers.e2e import (
    LOSSLESS_NEW_TOKENS as NEW_TOKENS, FP32, HYBRID_ENV, HYBRID_MEMORY_ARGS, SKIP_STATE_COMMIT_ENV, dflash_args,
    mismatches,
)

pytestmark = [pytest.mark.e2e, pytest.mark.long]

GUARD_PROMPTS = 8
STRATEGIES = ("no_buffer", "extra_buffer")
BUILTIN_ENV = {**HYBRID_ENV, "DFLASH_SGLANG_IMPL": "builtin"}


def _strategy(name: str) -> tuple[str, ...]:
    return HYBRID_MEMORY_ARGS + ("--mamba-radix-cache-strategy", name)


def _dflash(module_servers, hybrid_pair, strategy: str, env=HYBRID_ENV, name: str = "ours"):
    target, drafter = hybrid_pair
    return module_servers.get(f"hybrid-{name}-{strategy}", target, FP32 + _strategy(strategy) + dflash_args(drafter),
                              env=env)


def _release(module_servers, hybrid_pair, strategy: str, env=HYBRID_ENV) -> None:
    target, drafter = hybrid_pair
    module_servers.release(target, FP32 + _strategy(strategy) + dflash_args(drafter), env=env)


def _tau(results) -> float:
    lengths = [n for r in results for n in r["meta_info"]["dflash_acceptance_lengths"]]
    return sum(lengths) / len(lengths)


@pytest.mark.parametrize("concurrency", [1, 8])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_greedy_tokens_equal_ar(module_servers, hybrid_pair, prompts, hybrid_ar_outputs, strategy, concurrency):
    server = _dflash(module_servers, hybrid_pair, strategy)
    results = generate_many(server.base_url, prompts, NEW_TOKENS, concurrency, temperature=0)
    assert not (bad := mismatches(results, hybrid_ar_outputs)), f"prompt index -> first differing token: {bad}"
    print(f"{strategy} c={concurrency}: tau={_tau(results):.2f}")
    assert _tau(results) > 1.5  # drafts really were accepted, so partial blocks were committed


def test_guard_without_the_state_commit_output_differs(module_servers, hybrid_pair, prompts, hybrid_ar_outputs):
    env = {**HYBRID_ENV, SKIP_STATE_COMMIT_ENV: "1"}
    server = _dflash(module_servers, hybrid_pair, "no_buffer", env=env, name="no-commit")
    results = generate_many(server.base_url, prompts[:GUARD_PROMPTS], NEW_TOKENS, 1, temperature=0)
    bad = mismatches(results, hybrid_ar_outputs[:GUARD_PROMPTS])
    print(f"without the commit: {len(bad)}/{GUARD_PROMPTS} prompts differ, first differing tokens {bad}")
    _release(module_servers, hybrid_pair, "no_buffer", env=env)
    assert len(bad) >= GUARD_PROMPTS // 2


def test_acceptance_lengths_equal_the_builtins(module_servers, hybrid_pair, prompts):
    ours = _dflash(module_servers, hybrid_pair, "no_buffer")
    builtin = _dflash(module_servers, hybrid_pair, "no_buffer", env=BUILTIN_ENV, name="builtin")
    subset = prompts[:GUARD_PROMPTS]
    a = generate_many(ours.base_url, subset, NEW_TOKENS, 1, temperature=0)
    b = generate_many(builtin.base_url, subset, NEW_TOKENS, 1, temperature=0)
    _release(module_servers, hybrid_pair, "no_buffer", env=BUILTIN_ENV)
    _release(module_servers, hybrid_pair, "no_buffer")
    assert [r["output_ids"] for r in a] == [r["output_ids"] for r in b]
    lengths_a = [r["meta_info"]["dflash_acceptance_lengths"] for r in a]
    lengths_b = [r["meta_info"]["dflash_acceptance_lengths"] for r in b]
    assert lengths_a == lengths_b


def test_radix_cache_hits_keep_ar_tokens(module_servers, hybrid_ar_server, hybrid_pair, prompts):
    ar = hybrid_ar_server
    ours = _dflash(module_servers, hybrid_pair, "extra_buffer")
    shared = prompts[0] + prompts[1]  # a long prefix two requests share
    requests = [prompts[2], prompts[2], shared + "\n# first\n", shared + "\n# second\n"]
    cached = []
    for text in requests:
        mine, theirs = generate(ours.base_url, text, NEW_TOKENS, temperature=0), \
            generate(ar.base_url, text, NEW_TOKENS, temperature=0)
        assert mine["output_ids"] == theirs["output_ids"], text[:60]
        cached.append(mine["meta_info"]["cached_tokens"])
    print(f"cached tokens per request: {cached}")
    assert cached[1] > 0 and cached[3] > 0  # the repeat and the shared prefix hit the radix cache
