"""What the soak sends: a fixed pool of greedy requests (AR answers each once, beforehand) and requests drawn
on the fly (sampled, disconnecting, aborted, invalid), all from one seeded `random.Random`.

Every greedy request's prompt plus `max_tokens` fits the target's context, so AR and DFLASH never clamp.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

# kinds of request; the greedy ones are checked against AR
GREEDY, SAMPLED, DISCONNECT, ABORT, INVALID = "greedy", "sampled", "disconnect", "abort", "invalid"
KINDS = (GREEDY, SAMPLED, DISCONNECT, ABORT, INVALID)
# each deck of 16 requests holds every kind this often, shuffled: a short run still sees every kind
KIND_DECK = {GREEDY: 8, SAMPLED: 4, DISCONNECT: 1, ABORT: 2, INVALID: 1}

SCHEMA = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 6},
                                           "size": {"type": "integer", "minimum": 0, "maximum": 999}},
          "required": ["name", "size"], "additionalProperties": False}
# request features our verify step handles (README, Request features); each: (sampling params, top-level fields)
FEATURES: dict[str, tuple[dict, dict]] = {
    "plain": ({}, {}),
    "stop_string": ({"stop": ["\n\n", "return"]}, {}),
    "logprobs": ({}, {"return_logprob": True, "top_logprobs_num": 3}),
    "penalties": ({"frequency_penalty": 0.5, "presence_penalty": 0.4, "repetition_penalty": 1.2}, {}),
    "json_schema": ({"json_schema": json.dumps(SCHEMA)}, {}),
    "regex": ({"regex": r"(    [a-z_ =()\[\]0-9.,:]{1,30}\n){1,6}"}, {}),
    "logit_bias": ({"logit_bias": {"198": 3.0, "220": -2.0, "25": 4.0}}, {}),
    "min_new_tokens": ({"min_new_tokens": 24}, {}),
}
FEATURE_WEIGHTS = {"plain": 6, "stop_string": 3, "logprobs": 2, "penalties": 2, "json_schema": 1, "regex": 1,
                   "logit_bias": 1, "min_new_tokens": 1}
MAX_TOKENS = 512
EDGE_MAX_TOKENS = (1, 2, 7, 8, 9, 16)  # around one block of 8


@dataclass(frozen=True)
class Prompt:
    text: str
    tokens: int  # its length under the target's tokenizer
    shape: str  # short | medium | long | shared-prefix


@dataclass(frozen=True)
class RequestSpec:
    kind: str
    payload: dict  # the /generate body, without `stream` and `rid`
    stream: bool
    key: str | None = None  # greedy: the reference's key
    disconnect_after_chunks: int = 0  # DISCONNECT: chunks read before the client closes its socket
    abort_after_s: float = 0.0  # ABORT: delay before /abort_request
    shape: str = ""
    feature: str = "plain"
    meta: dict = field(default_factory=dict)

    @property
    def max_tokens(self) -> int:
        return int(self.payload["sampling_params"]["max_new_tokens"])


def build_prompts(texts: list[str], count_tokens, context_len: int, rng: random.Random) -> list[Prompt]:
    """Short (a prompt's first line), medium (a HumanEval prompt), long (several joined) and shared-prefix
    prompts (one long prompt, different tails: radix-cache hits)."""
    budget = context_len - MAX_TOKENS - 32
    prompts = [Prompt(t, count_tokens(t), "medium") for t in texts]
    prompts += [Prompt(line, count_tokens(line), "short") for t in texts[:24] if (line := t.strip().splitlines()[0])]
    for _ in range(16):
        joined = "\n\n".join(rng.sample(texts, 4))
        prompts.append(Prompt(joined, count_tokens(joined), "long"))
    base = max(texts[:40], key=len)
    for k in range(8):
        tail = f"\n# variant {k}: {texts[k].strip().splitlines()[0]}\n"
        prompts.append(Prompt(base + tail, count_tokens(base + tail), "shared-prefix"))
    return [p for p in prompts if 0 < p.tokens <= budget]


def _max_tokens(rng: random.Random, prompt: Prompt, context_len: int) -> int:
    roll = rng.random()
    n = rng.choice(EDGE_MAX_TOKENS) if roll < 0.3 else rng.randint(1, 64) if roll < 0.7 else rng.randint(65, MAX_TOKENS)
    return max(1, min(n, context_len - prompt.tokens - 16))


def _weighted(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _with_feature(rng: random.Random, params: dict) -> tuple[str, dict, dict]:
    """(feature name, sampling params with it, top-level fields); SGLang wants min_new_tokens <= max_new_tokens."""
    feature = _weighted(rng, FEATURE_WEIGHTS)
    sampling, top = FEATURES[feature]
    params = {**params, **sampling}
    if "min_new_tokens" in params:
        params["min_new_tokens"] = min(params["min_new_tokens"], params["max_new_tokens"])
    return feature, params, top


def greedy_pool(prompts: list[Prompt], size: int, context_len: int, rng: random.Random) -> list[RequestSpec]:
    """`size` greedy requests; shared-prefix prompts recur, so the pool itself hits the radix cache."""
    pool = []
    for i in range(size):
        prompt = rng.choice(prompts)
        feature, params, top = _with_feature(rng, {"max_new_tokens": _max_tokens(rng, prompt, context_len),
                                                   "temperature": 0, "ignore_eos": rng.random() < 0.5})
        payload = {"text": prompt.text, "sampling_params": params, **top}
        pool.append(RequestSpec(GREEDY, payload, stream=False, key=f"g{i}", shape=prompt.shape, feature=feature))
    return pool


def _sampled(rng: random.Random, prompt: Prompt, context_len: int) -> dict:
    _, params, top = _with_feature(rng, {
        "max_new_tokens": _max_tokens(rng, prompt, context_len), "temperature": rng.choice([0.6, 1.0]),
        "top_p": rng.choice([1.0, 0.9]), "top_k": rng.choice([-1, 20]), "ignore_eos": rng.random() < 0.5})
    return {"text": prompt.text, "sampling_params": params, **top}


def _invalid(rng: random.Random, prompts: list[Prompt], context_len: int) -> tuple[dict, str]:
    """A request SGLang must refuse with HTTP 400: a prompt past the context, or a negative temperature."""
    if rng.random() < 0.5:
        return {"input_ids": [rng.randint(10, 1000) for _ in range(context_len + 64)],
                "sampling_params": {"max_new_tokens": 8}}, "prompt_too_long"
    return {"text": rng.choice(prompts).text, "sampling_params": {"max_new_tokens": 8, "temperature": -1.0}}, \
        "negative_temperature"


def kinds(rng: random.Random):
    """Request kinds forever, deck after shuffled deck (KIND_DECK)."""
    deck = [kind for kind, n in KIND_DECK.items() for _ in range(n)]
    while True:
        rng.shuffle(deck)
        yield from deck


def next_request(rng: random.Random, kind: str, pool: list[RequestSpec], prompts: list[Prompt],
                 context_len: int) -> RequestSpec:
    """One request of this kind: a greedy one from the pool (streamed or not), or a fresh one."""
    stream = rng.random() < 0.5
    if kind == GREEDY:
        spec = rng.choice(pool)
        return RequestSpec(GREEDY, spec.payload, stream, spec.key, shape=spec.shape, feature=spec.feature)
    prompt = rng.choice(prompts)
    if kind == SAMPLED:
        payload = _sampled(rng, prompt, context_len)
        return RequestSpec(SAMPLED, payload, stream, shape=prompt.shape)
    long_run = {"text": prompt.text, "sampling_params": {"max_new_tokens": max(1, min(MAX_TOKENS, context_len -
                                                                                           prompt.tokens - 16)),
                                                         "temperature": rng.choice([0, 1.0]), "ignore_eos": True}}
    if kind == DISCONNECT:
        return RequestSpec(DISCONNECT, long_run, True, disconnect_after_chunks=rng.randint(1, 6), shape=prompt.shape)
    if kind == ABORT:
        return RequestSpec(ABORT, long_run, stream, abort_after_s=rng.uniform(0.05, 3.0), shape=prompt.shape)
    payload, why = _invalid(rng, prompts, context_len)
    return RequestSpec(INVALID, payload, stream=False, meta={"why": why})
