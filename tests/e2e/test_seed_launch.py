"""Issue 6 end to end: a seed's launch command, as the card prints it (tiny pair, CPU flags added), starts a
real server with our plugin and answers a chat request.

The card is 001 (Qwen3-Coder-30B-A3B), the one seed whose target is not hybrid: the others ask for a mamba
cache strategy that SGLang refuses for a target without mamba state (tests/adapter/test_seed_commands.py).
It runs with the card's optional overlap switches exported, as the card suggests.
"""

from __future__ import annotations

import openai
import pytest

from dflash_sglang.sglang_adapter.legacy_args import OVERLAP_LINE
from helpers import seed_commands
from helpers.seed_commands import for_tiny_pair, without_flag

pytestmark = pytest.mark.e2e

CARD = next(c for c in seed_commands.load() if c.seed.startswith("001_"))


@pytest.fixture(scope="module")
def seed_server(module_servers, pair):
    target, drafter = pair
    argv = without_flag(for_tiny_pair(CARD.argv, target, drafter), "--model-path")  # launch() passes it
    return module_servers.get("seed-001", target, tuple(argv), env={**CARD.env, **CARD.optional_env})


def test_seed_command_answers_a_chat_request(seed_server):
    client = openai.OpenAI(base_url=seed_server.base_url + "/v1", api_key="EMPTY", timeout=120)
    reply = client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": "Write a quicksort in Python."}],
        max_tokens=32, temperature=0.0)
    assert reply.choices[0].message.content
    assert reply.usage.completion_tokens > 0


def test_seed_server_runs_our_worker_and_states_overlap_once(seed_server):
    log = seed_server.log_text().splitlines()
    assert any("DFLASH worker: block 8" in line for line in log), seed_server.tail()
    prefix = OVERLAP_LINE.split("%s")[0]
    overlap = [line for line in log if prefix in line]
    assert len(overlap) == 1, overlap  # the launcher resolves; schedulers receive resolved args
    assert "DFLASH overlap schedule: on (SGLANG_ENABLE_SPEC_V2=1 asks for it" in overlap[0]
