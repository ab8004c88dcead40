"""Issue 13: a drafter whose weights hold NaN and Inf still gives AR's tokens (the target decides every token),
greedy and sampled requests both run, and the server says so in one warning line at load."""

from __future__ import annotations

import pytest

from dflash_sglang.client import generate_many
from dflash_sglang.datasets import humaneval_prompts
from helpers.broken_drafter import broken_drafter
from helpers.e2e import FP32, METRICS, STRICT_MEMORY_ENV, dflash_args, first_divergence

pytestmark = pytest.mark.e2e

NUM_PROMPTS, NEW_TOKENS = 8, 48
WARNING = "the draft checkpoint has NaN or Inf"  # sglang_adapter/models/dflash_drafter.py


@pytest.fixture(scope="module")
def broken_server(module_servers, pair, tmp_path_factory):
    target, drafter = pair
    broken = broken_drafter(drafter, tmp_path_factory.mktemp("drafter") / "nan-inf-drafter")
    return module_servers.get("dflash-broken-drafter", target, FP32 + METRICS + dflash_args(broken),
                              env=STRICT_MEMORY_ENV)


def test_greedy_tokens_equal_ar_with_one_warning(broken_server, ar_server):
    prompts = humaneval_prompts(NUM_PROMPTS)
    ours = generate_many(broken_server.base_url, prompts, NEW_TOKENS, 4, temperature=0, ignore_eos=True)
    ar = generate_many(ar_server.base_url, prompts, NEW_TOKENS, 4, temperature=0, ignore_eos=True)
    mismatches = {i: first_divergence(o["output_ids"], a["output_ids"])
                  for i, (o, a) in enumerate(zip(ours, ar)) if o["output_ids"] != a["output_ids"]}
    assert not mismatches, f"prompt index -> first differing token: {mismatches}"
    warnings = [line for line in broken_server.log_text().splitlines() if WARNING in line]
    assert len(warnings) == 1, warnings
    # the fault reached the drafts: every draft logit row is non-finite, so every draft is the uniform row's
    # argmax (token 0, BOS), which the target never picks: no step accepts a draft
    steps = [n for r in ours for n in r["meta_info"]["dflash_acceptance_lengths"]]
    assert steps and set(steps) == {1}, f"acceptance lengths {sorted(set(steps))}: the drafter was not broken"


def test_sampled_requests_run(broken_server):
    """The drafter's NaN logits reach sampled drafts (softmax, multinomial, the rejection test) without the guard."""
    prompts = humaneval_prompts(NUM_PROMPTS)
    results = generate_many(broken_server.base_url, prompts, NEW_TOKENS, 4, temperature=1.0, top_p=0.9,
                            ignore_eos=True)
    assert all(len(r["output_ids"]) == NEW_TOKENS for r in results)
