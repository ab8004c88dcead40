"""Issue 13's faults on real servers: a prompt past the context gets HTTP 400 and the server keeps serving; SIGTERM
under load drains the requests in flight, then stops the server and every process it started."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from dflash_sglang.client import HTTPStatusError, generate, post_json
from dflash_sglang.serving import group_members
from helpers.e2e import FP32, METRICS, STRICT_MEMORY_ENV, dflash_args, token_usage, wait_for_zero_usage

pytestmark = pytest.mark.e2e

DRAIN_REQUESTS, DRAIN_TOKENS, DRAIN_TIMEOUT_S = 6, 48, 600
PROMPT = "def count_words(text):\n    \"\"\"Return how many words are in text.\"\"\"\n"


@pytest.fixture(scope="module")
def doomed_server(module_servers, pair):
    """A DFLASH server of this module's own (a smaller KV pool keeps its key apart from the session's): the SIGTERM
    test ends it."""
    target, drafter = pair
    args = FP32 + METRICS + dflash_args(drafter) + ("--max-total-tokens", "640")
    return module_servers.get("dflash-sigterm", target, args, env=STRICT_MEMORY_ENV)


def test_prompt_longer_than_the_context_is_400_and_server_keeps_serving(dflash_server):
    info = generate(dflash_server.base_url, PROMPT, 4, temperature=0)
    context = 2048  # the bundled target's max_position_embeddings
    too_long = (info["output_ids"] * (context // 4 + 1))[:context + 16]
    with pytest.raises(HTTPStatusError) as err:
        generate(dflash_server.base_url, too_long, 8, temperature=0)
    assert err.value.status == 400
    assert "context" in err.value.body.lower()
    assert generate(dflash_server.base_url, PROMPT, 4, temperature=0)["output_ids"] == info["output_ids"]
    wait_for_zero_usage(dflash_server)


def _descendants(pid: int) -> set[int]:
    """Live (non-zombie) descendants of pid, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after the command name, which may hold spaces
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_sigterm_under_load_drains_and_stops_every_process(doomed_server):
    """SGLang's SIGTERM drains: requests in flight finish, then the schedulers get a ShutdownReq and the launcher
    ends its process tree. Last in this module: it ends the pressure server."""
    children = _descendants(doomed_server.pid)
    assert len(children) >= 2, f"expected the scheduler and detokenizer under {doomed_server.pid}, got {children}"
    answers: dict[int, dict] = {}

    def load(i: int) -> None:
        answers[i] = post_json(doomed_server.base_url, "/generate", {
            "text": PROMPT + f"# {i}\n", "sampling_params": {"max_new_tokens": DRAIN_TOKENS, "temperature": 0,
                                                              "ignore_eos": True}}, timeout=DRAIN_TIMEOUT_S)

    threads = [threading.Thread(target=load, args=(i,), daemon=True) for i in range(DRAIN_REQUESTS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120
    while token_usage(doomed_server) == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert token_usage(doomed_server) > 0, "the load never reached the server"
    log_before = len(doomed_server.log_text())
    os.kill(doomed_server.pid, signal.SIGTERM)
    returncode = doomed_server.process.wait(timeout=DRAIN_TIMEOUT_S)
    for t in threads:
        t.join(timeout=30)
    assert sorted(answers) == list(range(DRAIN_REQUESTS)), "a request in flight was lost"
    assert all(len(a["output_ids"]) == DRAIN_TOKENS for a in answers.values())
    deadline = time.monotonic() + 30
    while (alive := [p for p in children if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not alive, f"server {doomed_server.pid} exited ({returncode}) leaving {alive} running"
    assert not group_members(doomed_server.pid)
    shutdown_log = doomed_server.log_text()[log_before:]
    assert "Traceback" not in shutdown_log and "crashed" not in shutdown_log, shutdown_log[-3000:]
    print(f"exit code {returncode}")
