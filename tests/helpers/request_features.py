"""Shared by the request-feature e2e tests (issue 11): the features, the AR oracle's flags, requests."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from dflash_sglang.client import post_json

# SGLang 0.5.23's overlap scheduler feeds the penalizers each decode step's input token before the
# previous result is processed, so AR with overlap counts the output one token late (its first decode
# counts the prompt's last token). Non-overlapped AR counts every output token so far: that is the oracle.
SYNC_ARGS = ("--disable-overlap-schedule",)

NUM_PROMPTS, NEW_TOKENS = 30, 32
SCHEMA = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 6},
                                           "size": {"type": "integer", "minimum": 0, "maximum": 999}},
          "required": ["name", "size"], "additionalProperties": False}
EBNF = 'root ::= "def " name "(" name "):" [ \\n]+ "return " name\nname ::= [a-z_]+'
FEATURES = {  # name -> extra sampling params, max_new_tokens
    "json_schema": ({"json_schema": json.dumps(SCHEMA)}, NEW_TOKENS),
    "regex": ({"regex": r"(    [a-z_ =()\[\]0-9.,:]{1,30}\n){1,6}"}, NEW_TOKENS),
    "ebnf": ({"ebnf": EBNF}, NEW_TOKENS),
    "frequency": ({"frequency_penalty": 1.0}, NEW_TOKENS),
    "presence": ({"presence_penalty": 0.8}, NEW_TOKENS),
    "repetition": ({"repetition_penalty": 1.3}, NEW_TOKENS),
    "penalties": ({"frequency_penalty": 0.5, "presence_penalty": 0.4, "repetition_penalty": 1.2}, NEW_TOKENS),
    "logit_bias": ({"logit_bias": {"198": 3.0, "220": -2.0, "25": 4.0}}, NEW_TOKENS),
    "min_new_tokens": ({"min_new_tokens": 40}, 48),
}
PENALTY_FEATURES = ("frequency", "presence", "repetition", "penalties")


def generate_all(server, prompts: list[str], sampling: dict, max_tokens: int, concurrency: int,
                 **top_level) -> list[dict]:
    """Greedy answers to every prompt, `concurrency` requests in flight, in prompt order."""

    def one(prompt: str) -> dict:
        payload = {"text": prompt, "sampling_params": {"max_new_tokens": max_tokens, "temperature": 0, **sampling},
                   **top_level}
        return post_json(server.base_url, "/generate", payload)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(one, prompts))


def tau(results: list[dict]) -> float:
    steps = [n for r in results for n in r["meta_info"]["dflash_acceptance_lengths"]]
    return sum(steps) / len(steps)


def whitespace_bias(model_dir, bias: float = -100.0) -> dict[str, float]:
    """`logit_bias` pushing down every token that decodes to whitespace only."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    return {str(i): bias for i in range(len(tokenizer)) if tokenizer.decode([i]).strip() == ""}
