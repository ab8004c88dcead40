"""Issue 11: every request feature through our verify step, checked against AR from the same build.

Greedy, 30 HumanEval prompts at concurrency 1 and 4: grammars (JSON schema, regex, EBNF), penalties
exact per position, logit bias and min_new_tokens give AR's tokens; logprobs give AR's tokens and
values. A grammar that rejects most drafts stays lossless with τ near 1; parallel sampling (n=3),
streaming with logprobs and the OpenAI API's `response_format` and `logprobs` work.
"""

from __future__ import annotations

import json

import jsonschema
import pytest

from dflash_sglang.client import post_json
from dflash_sglang.datasets import humaneval_prompts
from helpers.e2e import mismatches, stream_generate
from helpers.request_features import (
    FEATURES, NEW_TOKENS, NUM_PROMPTS, SCHEMA, generate_all, tau, whitespace_bias,
)

pytestmark = [pytest.mark.e2e, pytest.mark.long]

_ar_results: dict[str, list[dict]] = {}
JSON_TOKENS = 64


@pytest.fixture(scope="module")
def prompts() -> list[str]:
    return humaneval_prompts(NUM_PROMPTS)


def _ar(ar_server, prompts, name: str) -> list[dict]:
    if name not in _ar_results:
        sampling, max_tokens = FEATURES[name]
        _ar_results[name] = generate_all(ar_server, prompts, sampling, max_tokens, 1)
    return _ar_results[name]


@pytest.mark.parametrize("concurrency", [1, 4])
@pytest.mark.parametrize("name", list(FEATURES))
def test_greedy_output_equals_ar(ar_server, dflash_server, prompts, name, concurrency):
    sampling, max_tokens = FEATURES[name]
    theirs = _ar(ar_server, prompts, name)
    ours = generate_all(dflash_server, prompts, sampling, max_tokens, concurrency)
    differing = mismatches(ours, [a["output_ids"] for a in theirs])
    assert not differing, f"prompt index -> first differing token: {differing}"
    assert [o["meta_info"]["finish_reason"] for o in ours] == [a["meta_info"]["finish_reason"] for a in theirs]
    print(f"{name} c={concurrency}: tau={tau(ours):.2f}")


def test_json_schema_answers_parse_against_the_schema(dflash_server, ar_server, pair, prompts):
    """The tiny model spends any budget on the whitespace JSON allows, so whitespace tokens get a bias of -100:
    the answers then end, parse against the schema and equal AR's (a grammar and a bias together)."""
    sampling = {**FEATURES["json_schema"][0], "logit_bias": whitespace_bias(pair[0])}
    ours = generate_all(dflash_server, prompts, sampling, JSON_TOKENS, 4)
    theirs = generate_all(ar_server, prompts, sampling, JSON_TOKENS, 4)
    assert mismatches(ours, [r["output_ids"] for r in theirs]) == {}
    finished = [r for r in ours if r["meta_info"]["finish_reason"]["type"] == "stop"]
    assert len(finished) >= len(prompts) // 2, f"only {len(finished)}/{len(prompts)} answers ended"
    for r in finished:
        jsonschema.validate(json.loads(r["text"]), SCHEMA)
    print(f"{len(finished)}/{len(prompts)} JSON answers ended within {JSON_TOKENS} tokens and parse; tau {tau(ours):.2f}")


def test_min_new_tokens_holds_off_the_stop_token(dflash_server, ar_server, prompts):
    """Without min_new_tokens some answers stop early; with it none stops before 40 tokens."""
    plain = generate_all(ar_server, prompts[:8], {}, 48, 4)
    early = [len(r["output_ids"]) for r in plain if len(r["output_ids"]) < 40]
    ours = generate_all(dflash_server, prompts[:8], *FEATURES["min_new_tokens"], 4)
    assert all(len(r["output_ids"]) >= 40 for r in ours)
    print(f"AR without min_new_tokens stops early in {len(early)}/8 answers")


def test_a_grammar_rejecting_most_drafts_stays_lossless_with_tau_near_one(dflash_server, ar_server, prompts):
    """The drafter proposes Python; the JSON schema forbids almost all of it: τ falls, output stays AR's."""
    plain = generate_all(dflash_server, prompts, {}, NEW_TOKENS, 4)
    constrained = generate_all(dflash_server, prompts, *FEATURES["json_schema"], 4)
    assert [r["output_ids"] for r in constrained] == [r["output_ids"] for r in _ar(ar_server, prompts, "json_schema")]
    tau_plain, tau_grammar = tau(plain), tau(constrained)
    print(f"tau without grammar {tau_plain:.2f}, with the JSON schema {tau_grammar:.2f}")
    assert 1.0 <= tau_grammar < tau_plain


LOGPROB_REQUEST = {"return_logprob": True, "top_logprobs_num": 5, "logprob_start_len": 0,
                   "token_ids_logprob": [25, 198, 220]}
LOGPROB_KEYS = ("output_token_logprobs", "output_top_logprobs", "output_token_ids_logprobs",
                "input_token_logprobs")


def _assert_logprobs_close(ours: dict, theirs: dict, key: str) -> None:
    """Same token ids at every entry, values within 1e-4 (entries are [logprob, token id, text])."""
    def flat(entries):
        for entry in entries:
            if entry and isinstance(entry[0], list):
                yield from flat(entry)
            else:
                yield entry

    a, b = list(flat(ours["meta_info"][key])), list(flat(theirs["meta_info"][key]))
    assert [e[1] for e in a] == [e[1] for e in b], key
    worst = max((abs(x[0] - y[0]) for x, y in zip(a, b) if x[0] is not None), default=0.0)
    assert worst <= 1e-4, f"{key}: max |difference| {worst}"


@pytest.mark.parametrize("concurrency", [1, 4])
def test_logprobs_equal_ar(ar_server, dflash_server, prompts, concurrency):
    if "logprobs" not in _ar_results:
        _ar_results["logprobs"] = generate_all(ar_server, prompts, {}, NEW_TOKENS, 1, **LOGPROB_REQUEST)
    ours = generate_all(dflash_server, prompts, {}, NEW_TOKENS, concurrency, **LOGPROB_REQUEST)
    for o, a in zip(ours, _ar_results["logprobs"]):
        assert o["output_ids"] == a["output_ids"]
        assert len(o["meta_info"]["output_token_logprobs"]) == len(o["output_ids"])
        for key in LOGPROB_KEYS:
            _assert_logprobs_close(o, a, key)


def test_streaming_with_logprobs_delivers_the_same_logprobs(dflash_server, prompts):
    payload = {"text": prompts[0], "sampling_params": {"max_new_tokens": NEW_TOKENS, "temperature": 0},
               "return_logprob": True, "top_logprobs_num": 5}
    chunks = stream_generate(dflash_server.base_url, payload)
    whole = post_json(dflash_server.base_url, "/generate", payload)
    assert len(chunks) > 1
    assert chunks[-1]["text"] == whole["text"]
    streamed = [e for c in chunks for e in c["meta_info"]["output_token_logprobs"]]
    if len(streamed) != len(whole["meta_info"]["output_token_logprobs"]):  # each chunk repeats all so far
        streamed = chunks[-1]["meta_info"]["output_token_logprobs"]
    assert [e[1] for e in streamed] == whole["output_ids"] == [e[1] for e in whole["meta_info"]["output_token_logprobs"]]


def test_parallel_sampling_n3_with_penalties(dflash_server, prompts):
    payload = {"text": prompts[1], "sampling_params": {
        "max_new_tokens": 24, "temperature": 0.8, "n": 3, "frequency_penalty": 1.0, "ignore_eos": True},
        "return_logprob": True}
    results = post_json(dflash_server.base_url, "/generate", payload)
    assert isinstance(results, list) and len(results) == 3
    for r in results:
        assert len(r["output_ids"]) == 24 == len(r["meta_info"]["output_token_logprobs"])


def test_openai_response_format_and_logprobs_equal_ar(ar_server, dflash_server):
    def ask(server) -> dict:
        return post_json(server.base_url, "/v1/chat/completions", {
            "model": "default", "messages": [{"role": "user", "content": "Describe a file as JSON."}],
            "max_tokens": NEW_TOKENS, "temperature": 0, "logprobs": True, "top_logprobs": 5,
            "response_format": {"type": "json_schema", "json_schema": {"name": "file", "schema": SCHEMA}}})

    ours, theirs = ask(dflash_server)["choices"][0], ask(ar_server)["choices"][0]
    assert ours["message"]["content"] == theirs["message"]["content"]
    a, b = ours["logprobs"]["content"], theirs["logprobs"]["content"]
    assert [t["token"] for t in a] == [t["token"] for t in b]
    assert max(abs(x["logprob"] - y["logprob"]) for x, y in zip(a, b)) <= 1e-4
    if ours["finish_reason"] == "stop":
        jsonschema.validate(json.loads(ours["message"]["content"]), SCHEMA)
