"""Issue 2 end to end: stock SGLang serves the tiny target on this host with our plugin loaded."""

from __future__ import annotations

import openai
import pytest

from dflash_sglang.sglang_adapter.plugin import ACTIVE_LINE

pytestmark = pytest.mark.e2e

PROMPT = [{"role": "user", "content": "def fibonacci(n):"}]


def _client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="EMPTY", timeout=120)


def test_chat_completion_answers(ar_server):
    reply = _client(ar_server).chat.completions.create(
        model="default", messages=PROMPT, max_tokens=24, temperature=0)
    assert reply.choices[0].message.content
    assert reply.usage.completion_tokens > 0


def test_stream_equals_non_stream_at_temperature_0(ar_server):
    client = _client(ar_server)
    whole = client.chat.completions.create(model="default", messages=PROMPT, max_tokens=32, temperature=0)
    chunks = client.chat.completions.create(model="default", messages=PROMPT, max_tokens=32, temperature=0,
                                            stream=True)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == whole.choices[0].message.content


def test_server_log_has_the_plugin_line(ar_server):
    prefix = ACTIVE_LINE.split("%s")[0]  # "dflash-sglang "
    active = [line for line in ar_server.log_text().splitlines()
              if line.startswith("[dflash-sglang") and "active: plugin loaded on SGLang 0.5.23" in line]
    assert active, ar_server.tail()
    assert all(prefix in line for line in active)
    # Loaded in the launcher and in the scheduler process: at least two distinct PIDs.
    assert len({line.split()[1] for line in active}) >= 2, active
