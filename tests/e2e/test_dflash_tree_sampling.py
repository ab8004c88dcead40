"""Issue 12: sampling through verify trees keeps the target's distribution. `--speculative-dflash-tree-budget
32` on the 16-token pair (block 4): each of the first three generated tokens of 1000 seeded requests is
distributed as under AR sampling (chi-squared), at temperature 1.0 and at 0.7 with top-p 0.9.

Sampled rows verify branches drawn from the drafter's q and walked by multi-draft speculative sampling
(spec/tree_sampled.py); the sampling module's AR samples are taken again here from this module's own server.
"""

from __future__ import annotations

import pytest

from helpers.tiny_vocab_pair import BLOCK, make_tiny_vocab_pair
from test_dflash_sampling import SAMPLES, SERVER_ARGS, _p_values, _sample  # the sampling module's χ² machinery

pytestmark = pytest.mark.e2e

TREE_BUDGET = 32
# 32 requests x 32 nodes of temporary KV slots fit the 8192-token pool; at the sampling module's 250 they would not,
# and those steps would run on the chain (kv-pool-full), testing nothing here.
MAX_RUNNING = ("--max-running-requests", "32")
SAMPLINGS = {"T1.0": {"temperature": 1.0}, "T0.7-top-p0.9": {"temperature": 0.7, "top_p": 0.9}}


@pytest.fixture(scope="module")
def vocab_pair(tmp_path_factory):
    return make_tiny_vocab_pair(tmp_path_factory.mktemp("tiny-vocab"))


@pytest.mark.parametrize("name", list(SAMPLINGS))
def test_tree_token_distributions_match_ar(module_servers, vocab_pair, name):
    target, drafter = vocab_pair
    theirs, _ = _sample(module_servers.get("tiny-vocab-ar", target, SERVER_ARGS), SAMPLINGS[name])
    args = SERVER_ARGS + ("--speculative-algorithm", "DFLASH", "--speculative-draft-model-path", str(drafter),
                          "--speculative-num-draft-tokens", str(BLOCK), "--speculative-dflash-tree-budget",
                          str(TREE_BUDGET)) + MAX_RUNNING
    server = module_servers.get("tiny-vocab-tree32", target, args)
    ours, steps = _sample(server, SAMPLINGS[name])
    p_values = _p_values(ours, theirs)
    accept_rate = sum(n >= 2 for n in steps) / len(steps)
    print(f"tree {TREE_BUDGET} {name}: p-values {[round(p, 3) for p in p_values]} first-draft acceptance="
          f"{accept_rate:.2f}")
    assert min(p_values) > 0.001
    assert len(steps) == SAMPLES and accept_rate > 0.05  # later tokens really went through the walk
    assert "kv-pool-full" not in server.log_text()  # every step was a tree step
