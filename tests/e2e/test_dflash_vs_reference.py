"""Issue 4: the same algorithm as z-lab's reference. On the same pair and prompts, every request's
per-step acceptance lengths on our server equal those of `dflash.model.dflash_generate` (fp32, CPU)."""

from __future__ import annotations

import time

import pytest
import torch

from dflash_sglang.client import generate
from dflash_sglang.datasets import humaneval_prompts

pytestmark = pytest.mark.e2e

NUM_PROMPTS = 8
NEW_TOKENS = 64


@pytest.fixture(scope="module")
def reference(pair):
    """z-lab's loop on the bundled pair: prompt ids, output ids and per-step acceptance lengths."""
    import dflash.model as zlab
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target_dir, drafter_dir = pair
    tokenizer = AutoTokenizer.from_pretrained(target_dir)
    target = AutoModelForCausalLM.from_pretrained(target_dir, dtype=torch.float32).eval()
    drafter = zlab.DFlashDraftModel.from_pretrained(drafter_dir, dtype=torch.float32).eval()
    original_clock, zlab._cuda_time = zlab._cuda_time, time.perf_counter  # z-lab's clock syncs CUDA
    try:
        runs = []
        for prompt in humaneval_prompts(NUM_PROMPTS):
            ids = tokenizer(prompt, return_tensors="pt").input_ids
            stats = zlab.dflash_generate(drafter, target, ids, NEW_TOKENS, None, temperature=0.0, return_stats=True)
            runs.append((ids[0].tolist(), stats.output_ids[0, ids.shape[1]:].tolist(), stats.acceptance_lengths))
        return runs
    finally:
        zlab._cuda_time = original_clock


def clipped(lengths: list[int], budget: int) -> list[int]:
    """Our per-step lengths, cut where the request's token budget ran out (as z-lab records them)."""
    out = []
    for n in lengths:
        if budget <= 0:
            break
        out.append(min(n, budget))
        budget -= out[-1]
    return out


def test_acceptance_lengths_equal_zlab_reference(dflash_server, reference):
    compared_steps = 0
    for prompt_ids, ref_output, ref_lengths in reference:
        ours = generate(dflash_server.base_url, prompt_ids, NEW_TOKENS, temperature=0, ignore_eos=True)
        assert ours["output_ids"] == ref_output
        # The prefill's token is not a speculative step; the decode steps share NEW_TOKENS - 1.
        assert clipped(ours["meta_info"]["dflash_acceptance_lengths"], NEW_TOKENS - 1) == ref_lengths
        compared_steps += len(ref_lengths)
    assert compared_steps >= NUM_PROMPTS
