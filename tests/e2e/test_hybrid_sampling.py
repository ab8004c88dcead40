"""Issue 9: sampling with DFLASH on a hybrid target keeps the target's distribution: over seeded samples on a
16-token vocabulary (a Qwen3Next target of Gated DeltaNet and full-attention layers), the first and second
generated tokens are distributed as under AR sampling (chi-squared). The second token comes from the state
that the first verify's commit left behind."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2_contingency

from dflash_sglang.client import post_json
from helpers.e2e import FP32, HYBRID_ENV, HYBRID_MEMORY_ARGS
from helpers.tiny_vocab_pair import BLOCK, VOCAB, make_tiny_vocab_pair

pytestmark = [pytest.mark.e2e, pytest.mark.long]

SAMPLES, BATCH = 2000, 500
PROMPT = [3, 7, 1, 12, 5]
SERVER_ARGS = FP32 + HYBRID_MEMORY_ARGS + ("--skip-tokenizer-init", "--random-seed", "0",
                                          "--max-running-requests", "250", "--mamba-radix-cache-strategy", "no_buffer")


def _sample(server) -> tuple[np.ndarray, list[int]]:
    """[SAMPLES, 2] first two tokens, and each request's first-step acceptance length (empty for AR)."""
    out, first_steps = [], []
    for start in range(0, SAMPLES, BATCH):
        batch = post_json(server.base_url, "/generate", {
            "input_ids": [PROMPT] * min(BATCH, SAMPLES - start),
            "sampling_params": {"max_new_tokens": 2, "temperature": 1.0, "ignore_eos": True}})
        out += [r["output_ids"][:2] for r in batch]
        first_steps += [r["meta_info"]["dflash_acceptance_lengths"][0] for r in batch
                        if r["meta_info"].get("dflash_acceptance_lengths")]
    return np.array(out), first_steps


def _p_value(a: np.ndarray, b: np.ndarray) -> float:
    table = np.stack([np.bincount(a, minlength=VOCAB), np.bincount(b, minlength=VOCAB)])
    return chi2_contingency(table[:, table.sum(0) > 0]).pvalue


def test_first_and_second_token_distributions_match_ar(module_servers, tmp_path_factory):
    target, drafter = make_tiny_vocab_pair(tmp_path_factory.mktemp("tiny-vocab-hybrid"), kind="hybrid")
    ar = module_servers.get("tiny-vocab-hybrid-ar", target, SERVER_ARGS, env=HYBRID_ENV)
    dflash = module_servers.get("tiny-vocab-hybrid-dflash", target, SERVER_ARGS + (
        "--speculative-algorithm", "DFLASH", "--speculative-draft-model-path", str(drafter),
        "--speculative-num-draft-tokens", str(BLOCK)), env=HYBRID_ENV)
    (ours, steps), (theirs, _) = _sample(dflash), _sample(ar)
    p_first, p_second = _p_value(ours[:, 0], theirs[:, 0]), _p_value(ours[:, 1], theirs[:, 1])
    accept_rate = sum(n >= 2 for n in steps) / len(steps)  # the first draft token was accepted
    print(f"hybrid: p(first)={p_first:.3f} p(second)={p_second:.3f} first-draft acceptance={accept_rate:.2f}")
    assert p_first > 0.001 and p_second > 0.001
    assert len(steps) == SAMPLES and accept_rate > 0.02  # second tokens really went through accept
    assert len(np.unique(theirs[:, 1])) > 2  # the target really samples: not a near one-hot distribution
