"""Issue 9, part 1: SGLang's own hybrid path serves a `Qwen3NextForCausalLM` (Gated DeltaNet + full attention,
MoE MLPs) on this CPU through our CPU enablement (sglang_adapter/cpu/hybrid.py), with
`--mamba-radix-cache-strategy` no_buffer and extra_buffer: AR greedy tokens equal transformers' greedy tokens,
and their logprobs agree.

The target is the project's seeded random hybrid target (`make_hybrid_pair`, as `make_tiny_pair.py --kind
hybrid` writes it). The 8 prompts go in together, so SGLang batches them: ragged prefill, several pool rows per
decode step. No SGLANG_MAMBA_CONV_DTYPE is set: on CPU our enablement keeps the conv state in float32.
"""

from __future__ import annotations

import pytest
import torch

from dflash_sglang.client import post_json
from dflash_sglang.datasets import humaneval_prompts
from dflash_sglang.training.tiny_hybrid_pair import make_hybrid_pair
from helpers.e2e import FP32

pytestmark = pytest.mark.e2e

NUM_PROMPTS = 8
NEW_TOKENS = 32
LOGPROB_ATOL = 1e-4  # float32 throughout; measured ~1e-6
STRATEGIES = ("no_buffer", "extra_buffer")


@pytest.fixture(scope="module")
def hybrid_target(tmp_path_factory):
    target, _ = make_hybrid_pair(tmp_path_factory.mktemp("hybrid-pair"), seed=0)
    return target


def _server_args(strategy: str) -> tuple[str, ...]:
    return FP32 + ("--mamba-radix-cache-strategy", strategy)


@pytest.fixture(scope="module")
def prompt_ids(module_servers, hybrid_target) -> list[list[int]]:
    """Also starts both strategies' servers, so that their start-ups overlap each other and transformers' run."""
    module_servers.start_together(hybrid_target, {f"hybrid-ar-{s}": (_server_args(s), None) for s in STRATEGIES})
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(hybrid_target)
    return [tokenizer(p)["input_ids"] for p in humaneval_prompts(NUM_PROMPTS)]


@pytest.fixture(scope="module")
def transformers_greedy(hybrid_target, prompt_ids) -> list[tuple[list[int], list[float]]]:
    """(tokens, logprob of each token) of transformers' own greedy decoding (its torch GDN fallbacks)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(hybrid_target, dtype=torch.float32).eval()
    model.generation_config.eos_token_id = None  # the server ignores EOS too
    out = []
    with torch.no_grad():
        for ids in prompt_ids:
            gen = model.generate(torch.tensor([ids]), max_new_tokens=NEW_TOKENS, do_sample=False,
                                 output_scores=True, return_dict_in_generate=True, pad_token_id=0)
            tokens = gen.sequences[0, len(ids):].tolist()
            logprobs = [torch.log_softmax(s[0].float(), -1)[t].item() for s, t in zip(gen.scores, tokens)]
            out.append((tokens, logprobs))
    return out


def _greedy_all_at_once(server, prompt_ids) -> list[dict]:
    from concurrent.futures import ThreadPoolExecutor

    def one(ids):
        return post_json(server.base_url, "/generate", {
            "input_ids": ids, "return_logprob": True,
            "sampling_params": {"max_new_tokens": NEW_TOKENS, "temperature": 0, "ignore_eos": True}})

    with ThreadPoolExecutor(len(prompt_ids)) as pool:
        return list(pool.map(one, prompt_ids))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_ar_greedy_equals_transformers(module_servers, hybrid_target, prompt_ids, transformers_greedy, strategy):
    server = module_servers.get(f"hybrid-ar-{strategy}", hybrid_target, _server_args(strategy))
    results = _greedy_all_at_once(server, prompt_ids)
    worst = 0.0
    for i, (result, (tokens, logprobs)) in enumerate(zip(results, transformers_greedy)):
        assert result["output_ids"] == tokens, f"prompt {i}: SGLang {result['output_ids']} vs transformers {tokens}"
        served = [entry[0] for entry in result["meta_info"]["output_token_logprobs"]]
        worst = max(worst, max(abs(a - b) for a, b in zip(served, logprobs)))
    print(f"{strategy}: {NUM_PROMPTS}/{NUM_PROMPTS} prompts identical, max |dlogprob| {worst:.2e}")
    assert worst < LOGPROB_ATOL
