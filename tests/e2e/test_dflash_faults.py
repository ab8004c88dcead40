"""Issue 13's faults on real servers: a prompt past the context gets HTTP 400 and the server keeps serving; when the KV
pool runs out SGLang retracts requests mid-decode, and they resume and end with AR's tokens; SIGTERM under load drains the requests in flight, then stops the server and every process it started."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from dflash_sglang.client import HTTPStatusError, generate, generate_many, post_json
from dflash_sglang.serving import group_members, live_processes
from helpers.e2e import (
    FP32, METRICS, STRICT_MEMORY_ENV, dflash_args, leak_reports, metric, mismatches, token_usage, wait_for_zero_usage,
)

pytestmark = pytest.mark.e2e

DRAIN_REQUESTS, DRAIN_TOKENS, DRAIN_TIMEOUT_S = 6, 48, 600
# 12 requests of ~20 prompt + 240 new tokens need ~3,100 KV slots; the pool holds 640. SGLang admits a request if
# its whole max_new_tokens fits next to the running ones' remaining tokens scaled by its new-token ratio; a low
# --schedule-conservativeness scales that ratio down, so all are admitted and outgrow the pool. (With ignore_eos the
# ratio is 1 and nothing is ever retracted.)
RETRACT_REQUESTS, RETRACT_TOKENS = 12, 240
RETRACT_ARGS = ("--max-total-tokens", "640", "--schedule-conservativeness", "0.02")
PROMPT = "def count_words(text):\n    \"\"\"Return how many words are in text.\"\"\"\n"


def _doomed_args(drafter) -> tuple[str, ...]:
    return FP32 + METRICS + dflash_args(drafter) + ("--max-total-tokens", "640")


def _retract_args(drafter) -> tuple[str, ...]:
    return FP32 + METRICS + dflash_args(drafter) + RETRACT_ARGS


@pytest.fixture(scope="module", autouse=True)
def _start_module_servers(module_servers, pair):
    """This module's own servers start together, before its first test (conftest.py `start_together`)."""
    target, drafter = pair
    module_servers.start_together(target, {"dflash-retract": (_retract_args(drafter), STRICT_MEMORY_ENV),
                                           "dflash-sigterm": (_doomed_args(drafter), STRICT_MEMORY_ENV)})


@pytest.fixture(scope="module")
def doomed_server(module_servers, pair):
    """A DFLASH server of this module's own (a smaller KV pool keeps its key apart from the session's): the SIGTERM
    test ends it."""
    target, drafter = pair
    return module_servers.get("dflash-sigterm", target, _doomed_args(drafter), env=STRICT_MEMORY_ENV)


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


def test_requests_retracted_when_the_kv_pool_runs_out_end_with_ar_tokens(module_servers, pair, ar_server):
    target, drafter = pair
    args = _retract_args(drafter)
    server = module_servers.get("dflash-retract", target, args, env=STRICT_MEMORY_ENV)
    prompts = [PROMPT + f"# case {i}\n" for i in range(RETRACT_REQUESTS)]
    ours = generate_many(server.base_url, prompts, RETRACT_TOKENS, RETRACT_REQUESTS, temperature=0)
    retracted = metric(server, "num_retracted_requests_total")
    assert retracted > 0, "the KV pool never ran out: the test would prove nothing"
    assert any("KV cache pool is full. Retract requests." in line for line in server.log_text().splitlines())
    ar = generate_many(ar_server.base_url, prompts, RETRACT_TOKENS, 4, temperature=0)
    assert mismatches(ours, [a["output_ids"] for a in ar]) == {}
    assert [o["meta_info"]["finish_reason"] for o in ours] == [a["meta_info"]["finish_reason"] for a in ar]
    wait_for_zero_usage(server)
    assert not leak_reports(server)
    module_servers.release(target, args, env=STRICT_MEMORY_ENV)
    print(f"{retracted:.0f} retractions; {RETRACT_REQUESTS}/{RETRACT_REQUESTS} equal AR")


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for child, (parent, _) in live_processes().items():
        children.setdefault(parent, []).append(child)
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


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
    while (alive := sorted(children & set(live_processes()))) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not alive, f"server {doomed_server.pid} exited ({returncode}) leaving {alive} running"
    assert not group_members(doomed_server.pid)
    shutdown_log = doomed_server.log_text()[log_before:]
    assert "Traceback" not in shutdown_log and "crashed" not in shutdown_log, shutdown_log[-3000:]
    print(f"exit code {returncode}")
