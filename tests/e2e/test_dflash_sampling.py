"""Issues 4, 12 and 15: sampling with DFLASH keeps the target's distribution. Over a few thousand seeded
samples on a 16-token vocabulary, each of the first three generated tokens is distributed as under AR
sampling (chi-squared), at temperatures 0.7 and 1.0, with and without top-p 0.9.

Our worker drafts from the drafter's own distribution and accepts by rejection (spec/rejection.py).
Issue 15 item 2: SGLang's builtin on CPU, through our torch sampling verify
(sglang_adapter/cpu/builtin_sampling_verify.py), passes the same test instead of silently going greedy.
Issue 12: through verify trees (`--speculative-dflash-tree-budget 32`, block 4), sampled rows verify branches
drawn from the drafter's q, walked by multi-draft speculative sampling (spec/tree_sampled.py).
Issue 11: with a frequency penalty (the second and third tokens are drawn at block positions whose penalty
counts the drafts before them); the AR oracle runs without the overlap scheduler, which counts penalties late.
The module's servers start together (conftest.py `start_together`), and every test reads the same AR samples.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2_contingency

from dflash_sglang.client import post_json
from helpers.e2e import FP32
from helpers.request_features import SYNC_ARGS
from helpers.tiny_vocab_pair import BLOCK, VOCAB, make_tiny_vocab_pair

pytestmark = pytest.mark.e2e

SAMPLES, BATCH, TOKENS = 1000, 500, 3  # enough to resolve a 16-token marginal; exactness is the unit tests' job
AUTO_TOKENS = 8
PROMPT = [3, 7, 1, 12, 5]
SERVER_ARGS = FP32 + ("--skip-tokenizer-init", "--random-seed", "0", "--max-running-requests", "250")
BUILTIN_ENV = {"DFLASH_SGLANG_IMPL": "builtin"}
TREE_BUDGET = 32
# 32 requests x 32 nodes of temporary KV slots fit the 8192-token pool; at 250 running requests they would not,
# and those steps would run on the chain (kv-pool-full), testing nothing here.
TREE_MAX_RUNNING = ("--max-running-requests", "32")
TREE_SAMPLINGS = ("T1.0", "T0.7-top-p0.9")
SAMPLINGS = {
    "T1.0": {"temperature": 1.0},
    "T1.0-top-p0.9": {"temperature": 1.0, "top_p": 0.9},
    "T0.7": {"temperature": 0.7},
    "T0.7-top-p0.9": {"temperature": 0.7, "top_p": 0.9},
    "T1.0-top-k5-top-p0.9-min-p0.05": {"temperature": 1.0, "top_k": 5, "top_p": 0.9, "min_p": 0.05},
    "T1.0-frequency-penalty1.0": {"temperature": 1.0, "frequency_penalty": 1.0},
}


@pytest.fixture(scope="module")
def vocab_pair(tmp_path_factory):
    return make_tiny_vocab_pair(tmp_path_factory.mktemp("tiny-vocab"))


def _dflash_args(drafter) -> tuple[str, ...]:
    return SERVER_ARGS + ("--speculative-algorithm", "DFLASH", "--speculative-draft-model-path", str(drafter),
                          "--speculative-num-draft-tokens", str(BLOCK))


@pytest.fixture(scope="module")
def servers(module_servers, vocab_pair):
    """server(name) -> that server, once ready. All of them start at once (conftest.py `start_together`)."""
    target, drafter = vocab_pair
    specs = {
        "tiny-vocab-ar": (SERVER_ARGS + SYNC_ARGS, None),
        "tiny-vocab-dflash": (_dflash_args(drafter), None),
        "tiny-vocab-builtin": (_dflash_args(drafter), BUILTIN_ENV),
        "tiny-vocab-dflash-auto": (_dflash_args(drafter) + ("--speculative-dflash-tree-budget", "auto"), None),
        "tiny-vocab-tree32": (_dflash_args(drafter) + ("--speculative-dflash-tree-budget", str(TREE_BUDGET))
                              + TREE_MAX_RUNNING, None),
    }
    return module_servers.start_together(target, specs)


def _sample(server, sampling: dict, widths: list[int] | None = None,
            tokens: int = TOKENS) -> tuple[np.ndarray, list[int]]:
    """[SAMPLES, tokens] the first generated tokens of SAMPLES independent requests, and the acceptance
    length of each request's first speculative step (empty for AR). `widths` collects `auto`'s verify widths."""
    out, first_steps = [], []
    for start in range(0, SAMPLES, BATCH):
        batch = post_json(server.base_url, "/generate", {
            "input_ids": [PROMPT] * min(BATCH, SAMPLES - start),
            "sampling_params": {"max_new_tokens": tokens, "ignore_eos": True, **sampling}})
        out += [r["output_ids"][:tokens] for r in batch]
        first_steps += [r["meta_info"]["dflash_acceptance_lengths"][0] for r in batch
                        if r["meta_info"].get("dflash_acceptance_lengths")]
        if widths is not None:
            widths += [w for r in batch for w in r["meta_info"]["dflash_verify_widths"]]
    return np.array(out), first_steps


@pytest.fixture(scope="module")
def ar_samples() -> dict[tuple[str, int], np.ndarray]:
    return {}  # per sampling and length: AR's tokens, taken on first use


def _ar(servers, samples: dict[str, np.ndarray], name: str, tokens: int = TOKENS) -> np.ndarray:
    if (name, tokens) not in samples:
        samples[name, tokens] = _sample(servers("tiny-vocab-ar"), SAMPLINGS[name], tokens=tokens)[0]
    return samples[name, tokens]


def _p_values(ours: np.ndarray, theirs: np.ndarray) -> list[float]:
    """One chi-squared p-value per token position."""
    values = []
    for k in range(ours.shape[1]):
        table = np.stack([np.bincount(ours[:, k], minlength=VOCAB), np.bincount(theirs[:, k], minlength=VOCAB)])
        values.append(chi2_contingency(table[:, table.sum(0) > 0]).pvalue)
    return values


@pytest.mark.parametrize("name", list(SAMPLINGS))
def test_first_three_token_distributions_match_ar(servers, ar_samples, name):
    theirs = _ar(servers, ar_samples, name)
    ours, steps = _sample(servers("tiny-vocab-dflash"), SAMPLINGS[name])
    p_values = _p_values(ours, theirs)
    accept_rate = sum(n >= 2 for n in steps) / len(steps)  # the first draft token was accepted
    print(f"{name}: p-values {[round(p, 3) for p in p_values]} first-draft acceptance={accept_rate:.2f}")
    assert min(p_values) > 0.001
    assert len(steps) == SAMPLES and accept_rate > 0.05  # later tokens really went through accept
    assert len(np.unique(theirs[:, 1])) > 2  # the target really samples: not a near one-hot distribution


def test_the_frequency_penalty_shapes_the_ar_samples(servers, ar_samples):
    """The penalty case above tests something: under AR the second token rarely repeats the first."""
    theirs = _ar(servers, ar_samples, "T1.0-frequency-penalty1.0")
    without = _ar(servers, ar_samples, "T1.0")
    repeats, repeats_without = ((s[:, 1] == s[:, 0]).mean() for s in (theirs, without))
    print(f"second token repeats the first: {repeats:.2f} with the penalty, {repeats_without:.2f} without")
    assert repeats < min(0.5, repeats_without)


@pytest.mark.parametrize("name", ["T1.0", "T0.7-top-p0.9"])
def test_builtin_on_cpu_keeps_the_distribution(servers, ar_samples, name):
    """Without our sampling verify the builtin accepts greedily: its second and third tokens collapse
    onto the argmax path, and the p-values fall to ~0."""
    theirs = _ar(servers, ar_samples, name)
    ours, _ = _sample(servers("tiny-vocab-builtin"), SAMPLINGS[name])
    p_values = _p_values(ours, theirs)
    print(f"builtin {name}: p-values {[round(p, 3) for p in p_values]}")
    assert min(p_values) > 0.001
    assert len(np.unique(ours[:, 2])) > 2  # not collapsed onto one greedy continuation


def test_auto_keeps_the_distribution(servers, ar_samples):
    """`--speculative-dflash-tree-budget auto`: its warm-up runs the full chain, plain decoding (SGLang's
    DECODE forward, sglang_adapter/plain_pass.py), shortened chains and trees within the first AUTO_TOKENS
    tokens of the first samples (one chain step alone often commits three tokens); later ones, its choices."""
    auto = servers("tiny-vocab-dflash-auto")
    widths: list[int] = []
    for name in ("T0.7", "T1.0-top-p0.9"):
        theirs = _ar(servers, ar_samples, name, AUTO_TOKENS)
        ours, _ = _sample(auto, SAMPLINGS[name], widths, AUTO_TOKENS)
        p_values = _p_values(ours, theirs)
        print(f"auto {name}: p-values {[round(p, 3) for p in p_values]}")
        assert min(p_values) > 0.001, name
    print(f"auto widths {sorted(set(widths))}")
    assert 1 in widths and BLOCK in widths  # plain decoding and the full chain both produced these tokens
    assert "the target's DECODE pass" in auto.log_text()
    assert "first plain run" in auto.log_text()  # several plain passes in one step produced some of them


@pytest.mark.parametrize("name", TREE_SAMPLINGS)
def test_tree_token_distributions_match_ar(servers, ar_samples, name):
    theirs = _ar(servers, ar_samples, name)
    server = servers("tiny-vocab-tree32")
    ours, steps = _sample(server, SAMPLINGS[name])
    p_values = _p_values(ours, theirs)
    accept_rate = sum(n >= 2 for n in steps) / len(steps)
    print(f"tree {TREE_BUDGET} {name}: p-values {[round(p, 3) for p in p_values]} first-draft acceptance="
          f"{accept_rate:.2f}")
    assert min(p_values) > 0.001
    assert len(steps) == SAMPLES and accept_rate > 0.05  # later tokens really went through the walk
    assert "kv-pool-full" not in server.log_text()  # every step was a tree step
