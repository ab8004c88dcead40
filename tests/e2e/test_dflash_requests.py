"""Issue 4: requests that end inside a block, streaming, abort, invalid requests and KV accounting,
each checked against the AR server of the same build."""

from __future__ import annotations

import threading
import time

import pytest

from dflash_sglang.client import HTTPStatusError, generate, generate_many, post_json
from helpers.e2e import BLOCK, metric, stream_generate, token_usage, wait_for_zero_usage

pytestmark = pytest.mark.e2e

PROMPT = "def count_words(text):\n    \"\"\"Return how many words are in text.\"\"\"\n"


@pytest.mark.parametrize("max_tokens", [1, BLOCK - 1, BLOCK, BLOCK + 1], ids=lambda n: f"max{n}")
def test_max_tokens_ends_exactly_like_ar(ar_server, dflash_server, max_tokens):
    ar = generate(ar_server.base_url, PROMPT, max_tokens, temperature=0, ignore_eos=True)
    ours = generate(dflash_server.base_url, PROMPT, max_tokens, temperature=0, ignore_eos=True)
    assert ours["output_ids"] == ar["output_ids"]
    assert len(ours["output_ids"]) == max_tokens
    assert ours["meta_info"]["finish_reason"] == ar["meta_info"]["finish_reason"] == {"type": "length", "length": max_tokens}


def _ar_continuation(ar_server, n: int = 40) -> dict:
    return generate(ar_server.base_url, PROMPT, n, temperature=0, ignore_eos=True)


def test_stop_token_inside_a_block_ends_like_ar(ar_server, dflash_server):
    """A stop token id (the EOS mechanism) met mid-block: the rest of the block is dropped."""
    ids = _ar_continuation(ar_server)["output_ids"]
    fresh = [k for k in range(3, len(ids)) if ids[k] not in ids[:k]]  # a token AR first emits at step k
    assert fresh, f"the AR continuation repeats one token: {ids}"
    stop = ids[fresh[0]]
    ar = generate(ar_server.base_url, PROMPT, 40, temperature=0, stop_token_ids=[stop])
    ours = generate(dflash_server.base_url, PROMPT, 40, temperature=0, stop_token_ids=[stop])
    assert ours["output_ids"] == ar["output_ids"] and ar["output_ids"][-1] == stop
    assert ours["meta_info"]["finish_reason"] == ar["meta_info"]["finish_reason"]
    assert ours["meta_info"]["finish_reason"]["type"] == "stop"


def test_stop_string_inside_a_block_ends_like_ar(ar_server, dflash_server):
    text = _ar_continuation(ar_server)["text"]
    stop = text[len(text) // 3:len(text) // 3 + 3]
    ar = generate(ar_server.base_url, PROMPT, 40, temperature=0, stop=[stop])
    ours = generate(dflash_server.base_url, PROMPT, 40, temperature=0, stop=[stop])
    assert ours["text"] == ar["text"]
    assert stop not in ours["text"] and len(ours["text"]) < len(text)
    assert ours["meta_info"]["finish_reason"] == ar["meta_info"]["finish_reason"]


def test_streaming_delivers_each_step_and_the_same_text(dflash_server):
    payload = {"text": PROMPT, "sampling_params": {"max_new_tokens": 48, "temperature": 0, "ignore_eos": True}}
    chunks = stream_generate(dflash_server.base_url, payload)
    whole = generate(dflash_server.base_url, PROMPT, 48, temperature=0, ignore_eos=True)
    assert chunks[-1]["text"] == whole["text"]
    steps = whole["meta_info"]["dflash_acceptance_lengths"]
    # One chunk per speculative step (plus the prefill's first token): tokens arrive as they are accepted.
    assert len(chunks) >= len(steps)
    assert len(chunks) > 1
    # The per-step statistics stream too: each chunk carries the steps so far, the last one all of them.
    assert chunks[-1]["meta_info"]["dflash_acceptance_lengths"] == steps
    so_far = [len(c["meta_info"].get("dflash_acceptance_lengths", [])) for c in chunks]
    assert so_far == sorted(so_far)


def test_abort_mid_generation_frees_its_kv(dflash_server):
    rid = "abort-me-dflash"
    result: dict = {}

    def run():
        result.update(post_json(dflash_server.base_url, "/generate", {
            "text": PROMPT, "rid": rid,
            "sampling_params": {"max_new_tokens": 2000, "temperature": 0, "ignore_eos": True}}))

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 120
    while token_usage(dflash_server) == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # let a few speculative steps run
    post_json(dflash_server.base_url, "/abort_request", {"rid": rid})
    thread.join(timeout=120)
    assert result["meta_info"]["finish_reason"]["type"] == "abort"
    assert 0 < result["meta_info"]["completion_tokens"] < 2000
    wait_for_zero_usage(dflash_server)
    again = generate(dflash_server.base_url, PROMPT, 8, temperature=0)
    assert len(again["output_ids"]) == 8  # still serving


@pytest.mark.parametrize("sampling", [{"temperature": -0.5}, {"top_p": 0.0}], ids=["negative-temperature", "top_p-0"])
def test_invalid_request_is_400_and_server_keeps_serving(dflash_server, sampling):
    with pytest.raises(HTTPStatusError) as info:
        generate(dflash_server.base_url, PROMPT, 8, **sampling)
    assert info.value.status == 400
    assert len(generate(dflash_server.base_url, PROMPT, 4, temperature=0)["output_ids"]) == 4


def test_no_kv_slot_leaks_after_a_concurrent_load(dflash_server):
    prompts = [PROMPT + f"# variant {i}\n" for i in range(64)]
    results = generate_many(dflash_server.base_url, prompts, 24, 16, temperature=0)
    assert all(len(r["output_ids"]) >= 1 for r in results)
    wait_for_zero_usage(dflash_server)


def test_radix_cache_hit_reuses_the_drafters_kv(dflash_server):
    """A prompt served twice (the second time from the radix cache, drafter KV included) drafts the same."""
    prompt = PROMPT + "    # radix cache probe\n"
    first = generate(dflash_server.base_url, prompt, 32, temperature=0, ignore_eos=True)
    second = generate(dflash_server.base_url, prompt, 32, temperature=0, ignore_eos=True)
    assert second["meta_info"]["cached_tokens"] > 0  # the prefix really came from the cache
    assert second["output_ids"] == first["output_ids"]
    assert second["meta_info"]["dflash_acceptance_lengths"] == first["meta_info"]["dflash_acceptance_lengths"]


def test_statistics_in_meta_info_and_prometheus(dflash_server):
    meta = generate(dflash_server.base_url, PROMPT, 32, temperature=0, ignore_eos=True)["meta_info"]
    lengths = meta["dflash_acceptance_lengths"]
    assert all(1 <= n <= BLOCK for n in lengths)
    assert meta["spec_verify_ct"] == len(lengths)
    assert meta["spec_num_proposed_drafts"] == len(lengths) * (BLOCK - 1)
    assert meta["spec_num_correct_drafts"] == sum(lengths) - len(lengths)
    # The prefill gives the first token; the steps give the rest (the last one may overshoot max_new_tokens).
    assert meta["completion_tokens"] == 32 <= 1 + sum(lengths) < 32 + lengths[-1]
    assert metric(dflash_server, "spec_verify_calls_total") >= len(lengths)
