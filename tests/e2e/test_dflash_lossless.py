"""Issue 4: DFLASH greedy output equals AR output from the same server build, at concurrency 1 and 8."""

from __future__ import annotations

import pytest

from dflash_sglang.client import generate_many
from helpers.e2e import LOSSLESS_NEW_TOKENS as NEW_TOKENS, mismatches

pytestmark = pytest.mark.e2e



@pytest.mark.parametrize("concurrency", [1, 8])
def test_greedy_tokens_equal_ar(dflash_server, prompts, ar_outputs, concurrency):
    results = generate_many(dflash_server.base_url, prompts, NEW_TOKENS, concurrency, temperature=0)
    assert not (bad := mismatches(results, ar_outputs)), f"prompt index -> first differing token: {bad}"
    steps = [len(r["meta_info"]["dflash_acceptance_lengths"]) for r in results]
    assert all(s > 0 for s in steps)  # every request ran speculative steps
    accepted = sum(sum(r["meta_info"]["dflash_acceptance_lengths"]) for r in results)
    print(f"c={concurrency}: tau={accepted / sum(steps):.2f} over {sum(steps)} steps")
