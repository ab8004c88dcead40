"""Issue 11: sampling with a frequency penalty keeps AR's distribution. On the 16-token vocabulary pair,
each of the first three generated tokens (the second and third are drawn at block positions whose
penalty counts the drafts before them) is distributed as under AR sampling (chi-squared)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2_contingency

from dflash_sglang.client import post_json
from helpers.e2e import FP32
from helpers.request_features import SYNC_ARGS
from helpers.tiny_vocab_pair import BLOCK, VOCAB, make_tiny_vocab_pair

pytestmark = pytest.mark.e2e

SAMPLES, BATCH, TOKENS = 1000, 500, 3
PROMPT = [3, 7, 1, 12, 5]
SAMPLING = {"temperature": 1.0, "frequency_penalty": 1.0}
SERVER_ARGS = FP32 + ("--skip-tokenizer-init", "--random-seed", "0", "--max-running-requests", "250")


@pytest.fixture(scope="module")
def vocab_pair(tmp_path_factory):
    return make_tiny_vocab_pair(tmp_path_factory.mktemp("tiny-vocab-penalty"))


def _sample(server) -> np.ndarray:  # [SAMPLES, TOKENS]
    out = []
    for start in range(0, SAMPLES, BATCH):
        batch = post_json(server.base_url, "/generate", {
            "input_ids": [PROMPT] * min(BATCH, SAMPLES - start),
            "sampling_params": {"max_new_tokens": TOKENS, "ignore_eos": True, **SAMPLING}})
        out += [r["output_ids"][:TOKENS] for r in batch]
    return np.array(out)


def test_frequency_penalty_keeps_the_first_three_token_distributions(module_servers, vocab_pair):
    target, drafter = vocab_pair
    dflash_args = ("--speculative-algorithm", "DFLASH", "--speculative-draft-model-path", str(drafter),
                   "--speculative-num-draft-tokens", str(BLOCK))
    module_servers.start("tiny-vocab-dflash-penalty", target, SERVER_ARGS + dflash_args)  # alongside AR's start-up
    theirs = _sample(module_servers.get("tiny-vocab-ar-sync", target, SERVER_ARGS + SYNC_ARGS))
    ours = _sample(module_servers.get("tiny-vocab-dflash-penalty", target, SERVER_ARGS + dflash_args))
    p_values = []
    for k in range(TOKENS):
        table = np.stack([np.bincount(ours[:, k], minlength=VOCAB), np.bincount(theirs[:, k], minlength=VOCAB)])
        p_values.append(chi2_contingency(table[:, table.sum(0) > 0]).pvalue)
    print(f"frequency_penalty 1.0: p-values {[round(p, 3) for p in p_values]}")
    assert min(p_values) > 0.001
    repeats = (theirs[:, 1] == theirs[:, 0]).mean()
    assert repeats < 0.5  # the penalty really shapes the second token: it rarely repeats the first
