"""Issue 4: sampling with DFLASH keeps the target's distribution. Over a few thousand seeded samples on
a 16-token vocabulary, the first and second generated tokens are distributed as under AR sampling."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2_contingency

from dflash_sglang.client import post_json
from helpers.e2e import FP32
from helpers.tiny_vocab_pair import BLOCK, VOCAB, make_tiny_vocab_pair

pytestmark = pytest.mark.e2e

SAMPLES = 2000
PROMPT = [3, 7, 1, 12, 5]
SERVER_ARGS = FP32 + ("--skip-tokenizer-init", "--random-seed", "0", "--max-running-requests", "64")


@pytest.fixture(scope="module")
def vocab_pair(tmp_path_factory):
    return make_tiny_vocab_pair(tmp_path_factory.mktemp("tiny-vocab"))


def _sample(server, **sampling) -> tuple[np.ndarray, list[int]]:
    """[SAMPLES, 2] the first two generated tokens of SAMPLES independent requests, and the acceptance
    length of each request's first speculative step (empty for AR)."""
    out, first_steps = [], []
    for start in range(0, SAMPLES, 500):
        batch = post_json(server.base_url, "/generate", {
            "input_ids": [PROMPT] * min(500, SAMPLES - start),
            "sampling_params": {"max_new_tokens": 2, "temperature": 1.0, "ignore_eos": True, **sampling}})
        out += [r["output_ids"][:2] for r in batch]
        first_steps += [r["meta_info"]["dflash_acceptance_lengths"][0] for r in batch
                        if r["meta_info"].get("dflash_acceptance_lengths")]
    return np.array(out), first_steps


def _p_value(a: np.ndarray, b: np.ndarray) -> float:
    table = np.stack([np.bincount(a, minlength=VOCAB), np.bincount(b, minlength=VOCAB)])
    return chi2_contingency(table[:, table.sum(0) > 0]).pvalue


@pytest.mark.parametrize("sampling", [{}, {"top_k": 5, "top_p": 0.9, "min_p": 0.05}], ids=["plain", "top-k-top-p-min-p"])
def test_first_and_second_token_distributions_match_ar(module_servers, vocab_pair, sampling):
    target, drafter = vocab_pair
    ar = module_servers.get("tiny-vocab-ar", target, SERVER_ARGS)
    dflash = module_servers.get("tiny-vocab-dflash", target, SERVER_ARGS + (
        "--speculative-algorithm", "DFLASH", "--speculative-draft-model-path", str(drafter),
        "--speculative-num-draft-tokens", str(BLOCK)))
    (ours, steps), (theirs, _) = _sample(dflash, **sampling), _sample(ar, **sampling)
    p_first, p_second = _p_value(ours[:, 0], theirs[:, 0]), _p_value(ours[:, 1], theirs[:, 1])
    accept_rate = sum(n >= 2 for n in steps) / len(steps)  # the first draft token was accepted
    print(f"{sampling}: p(first)={p_first:.3f} p(second)={p_second:.3f} first-draft acceptance={accept_rate:.2f}")
    assert p_first > 0.001 and p_second > 0.001
    assert len(steps) == SAMPLES and accept_rate > 0.02  # second tokens really went through accept
    assert len(np.unique(theirs[:, 1])) > 2  # the target really samples: not a near one-hot distribution
