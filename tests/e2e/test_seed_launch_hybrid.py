"""Issue 9 end to end: the seeds' hybrid cards (000 Qwen3-Coder-Next, 002 Qwen3.5-35B-A3B, 003 Qwen3.5-9B), as
the cards print them apart from the model paths and the CPU flags, start a real server on the bundled hybrid
pair (`--mamba-scheduler-strategy extra_buffer`, block 16, card 003's overlap exports) and answer a chat
request with AR's answer."""

from __future__ import annotations

import openai
import pytest

from helpers import seed_commands
from helpers.e2e import HYBRID_ENV, HYBRID_MEMORY_ARGS
from helpers.seed_commands import for_tiny_pair, without_flag

pytestmark = [pytest.mark.e2e, pytest.mark.long]

CARDS = {c.id: c for c in seed_commands.load() if c.id in ("000", "002", "003")}
MESSAGES = [{"role": "user", "content": "Write a quicksort in Python."}]


def _chat(server) -> str:
    client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="EMPTY", timeout=300)
    reply = client.chat.completions.create(model="default", messages=MESSAGES, max_tokens=48, temperature=0.0)
    assert reply.usage.completion_tokens > 0
    return reply.choices[0].message.content


@pytest.fixture(scope="module")
def ar_answer(hybrid_ar_server) -> str:
    return _chat(hybrid_ar_server)


@pytest.mark.parametrize("card_id", sorted(CARDS))
def test_hybrid_card_answers_a_chat_request_as_ar_does(module_servers, hybrid_pair, ar_answer, card_id):
    card = CARDS[card_id]
    target, drafter = hybrid_pair
    argv = without_flag(for_tiny_pair(card.argv, target, drafter), "--model-path") + list(HYBRID_MEMORY_ARGS)
    server = module_servers.get(f"seed-{card_id}-hybrid", target, tuple(argv), env={**HYBRID_ENV, **card.env})
    assert any("DFLASH worker: block 16" in line for line in server.log_text().splitlines()), server.tail()
    assert _chat(server) == ar_answer
    stop_message = module_servers.pool.stop(module_servers.pool.key(target, tuple(argv), {**HYBRID_ENV, **card.env}))
    assert stop_message is None, stop_message  # one card's server at a time: they are not needed again
