"""SGLang's builtin DFLASH and NGRAM, made runnable on this CPU by `sglang_adapter.cpu`, give AR's greedy
tokens: the baselines we measure ourselves against are lossless here too.

A random target makes any drafter useless (acceptance length 1), which would leave the accept path
untested. So these tests serve a *two-token test target*: the bundled target with `lm_head` zeroed except
row(" the") = v and row(" and") = -v. It emits " the" or " and" by the sign of h . v, a pattern that
depends on the history; the builtin drafter borrows the target's `lm_head`, so its drafts are right
part of the time, and NGRAM finds the pattern's repeats.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from dflash_sglang.client import generate_many
from helpers.e2e import FP32, STRICT_MEMORY_ENV, dflash_args

pytestmark = pytest.mark.e2e

PROMPTS = ["def fibonacci(n):", "The capital of France is", "import numpy as np\n", "Once upon a time",
           "for i in range(10):"]
NEW_TOKENS = 48  # 64 until 2026-12-01: `make test` had reached 25 minutes
TOKEN_IDS = {" the": 297, " and": 389}  # in the bundled tokenizer; checked below
V_SEED = 2  # a direction that gives the bundled random drafter partial acceptance (tau ~2 at block 8)
BUILTIN_DFLASH_ENV = {**STRICT_MEMORY_ENV, "DFLASH_SGLANG_IMPL": "builtin"}
NGRAM_ARGS = ("--speculative-algorithm", "NGRAM", "--speculative-num-draft-tokens", "8")


@pytest.fixture(scope="module")
def two_token_target(pair, tmp_path_factory) -> Path:
    source, _ = pair
    target = tmp_path_factory.mktemp("two_token_target")
    for path in source.iterdir():
        shutil.copy(path, target / path.name)
    vocab = json.loads((source / "tokenizer.json").read_text())["model"]["vocab"]
    for text, token_id in TOKEN_IDS.items():
        assert vocab.get(text.replace(" ", "Ġ")) == token_id, (text, token_id)
    weights = load_file(target / "model.safetensors")
    embed = weights["model.embed_tokens.weight"]  # [vocab, hidden]
    v = torch.randn(embed.shape[1], generator=torch.Generator().manual_seed(V_SEED))  # [hidden]
    head = torch.zeros_like(embed)  # [vocab, hidden]
    head[TOKEN_IDS[" the"]], head[TOKEN_IDS[" and"]] = v, -v
    save_file({**weights, "lm_head.weight": head}, target / "model.safetensors")
    config = json.loads((target / "config.json").read_text())
    (target / "config.json").write_text(json.dumps({**config, "tie_word_embeddings": False}, indent=2))
    return target


@pytest.fixture(scope="module")
def servers(module_servers, pair, two_token_target):
    """server(name) -> that server, once ready; AR's and the baselines' start together (conftest.py); the names
    are also the log files' in the session's server directory, beside the session's own `ar`."""
    return module_servers.start_together(two_token_target, {
        "two-token-ar": (FP32, STRICT_MEMORY_ENV),
        "two-token-builtin-dflash": (FP32 + dflash_args(pair[1]), BUILTIN_DFLASH_ENV),
        "two-token-ngram": (FP32 + NGRAM_ARGS, STRICT_MEMORY_ENV),
    })


@pytest.fixture(scope="module")
def ar_ids(servers) -> list[list[int]]:
    results = generate_many(servers("two-token-ar").base_url, PROMPTS, NEW_TOKENS, 1, temperature=0)
    return [r["output_ids"] for r in results]


def first_difference(a: list[int], b: list[int]) -> int:
    return next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


@pytest.mark.parametrize("concurrency", [1, 5])
@pytest.mark.parametrize("name", ["builtin-dflash", "ngram"])
def test_greedy_tokens_equal_ar(servers, ar_ids, name, concurrency):
    server = servers(f"two-token-{name}")
    results = generate_many(server.base_url, PROMPTS, NEW_TOKENS, concurrency, temperature=0)
    mismatches = {prompt: first_difference(r["output_ids"], ar)
                  for prompt, r, ar in zip(PROMPTS, results, ar_ids) if r["output_ids"] != ar}
    assert not mismatches, f"prompt -> first differing token: {mismatches}"
    # SGLang's per-request stats: tokens per verify step, bonus token included.
    tokens = sum(r["meta_info"]["completion_tokens"] for r in results)
    steps = sum(r["meta_info"]["spec_verify_ct"] for r in results)
    print(f"{name} c={concurrency}: acceptance length {tokens / steps:.2f} over {steps} verify steps")
    assert tokens > steps, "no draft token was ever accepted: the accept path did not run"
