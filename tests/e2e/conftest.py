"""Real SGLang servers for the e2e tests, stopped by PID.

Servers are keyed by their arguments, so tests that need the same configuration share one start-up
(30-60 s each on this CPU). The bundled pair's AR and DFLASH servers live for the session; a module
that needs servers of its own asks `module_servers`, which stops them when the module is done, so
that at most a few servers hold memory at once.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Callable

import pytest

from dflash_sglang.bundled import tiny_pair
from dflash_sglang.serving import ServerProcess, group_members, launch
from dflash_sglang.client import generate_many
from dflash_sglang.datasets import humaneval_prompts
from helpers.e2e import (
    FP32, HYBRID_ENV, HYBRID_MEMORY_ARGS, LOSSLESS_NEW_TOKENS, LOSSLESS_PROMPTS, METRICS, STRICT_MEMORY_ENV, dflash_args,
)
from helpers.request_features import SYNC_ARGS

AR_ORACLE_ARGS = FP32 + METRICS + SYNC_ARGS

Key = tuple


class ServerPool:
    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.servers: dict[Key, ServerProcess] = {}

    @staticmethod
    def key(model_path: Path, extra_args: tuple[str, ...], env: dict | None) -> Key:
        return str(model_path), tuple(extra_args), tuple(sorted((env or {}).items()))

    def start(self, name: str, model_path: Path, extra_args: tuple[str, ...] = (), env: dict | None = None) -> ServerProcess:
        """Launch without waiting for readiness. A start-up leaves one of the two cores idle for much of its
        ~30 s (two together were ready in 49 s, 2026-12-01), so a module starts the servers it needs together."""
        key = self.key(model_path, extra_args, env)
        if key not in self.servers:
            self.servers[key] = launch(model_path, extra_args, log_path=self.log_dir / f"{name}.log",
                                       env={**os.environ, **(env or {})})
        return self.servers[key]

    def get(self, name: str, model_path: Path, extra_args: tuple[str, ...] = (), env: dict | None = None) -> ServerProcess:
        server = self.start(name, model_path, extra_args, env)
        server.wait_ready()
        return server

    def stop(self, key: Key) -> str | None:
        """Stop one server by its process group; a message if any member survived."""
        server = self.servers.pop(key)
        server.stop()
        alive = group_members(server.pid)
        return f"pid {server.pid}: members {alive} still alive" if alive else None

    def stop_all(self) -> list[str]:
        return [msg for key in list(self.servers) if (msg := self.stop(key))]


class ModuleServers:
    """The pool's `get`, remembering what this module started so that it can stop exactly those."""

    def __init__(self, pool: ServerPool):
        self.pool = pool
        self.started: list[Key] = []

    def start(self, name: str, model_path: Path, extra_args: tuple[str, ...] = (), env: dict | None = None) -> ServerProcess:
        key = self.pool.key(model_path, extra_args, env)
        if key not in self.pool.servers:
            self.started.append(key)
        return self.pool.start(name, model_path, extra_args, env)

    def get(self, name: str, model_path: Path, extra_args: tuple[str, ...] = (), env: dict | None = None) -> ServerProcess:
        server = self.start(name, model_path, extra_args, env)
        server.wait_ready()
        return server

    def start_together(self, model_path: Path, specs: dict[str, tuple[tuple[str, ...], dict | None]]
                       ) -> Callable[[str], ServerProcess]:
        """Start every server of `specs` (name -> (extra args, env)) now, for their start-ups to overlap (`start`);
        the returned function waits for the named one and returns it."""
        for name, (extra_args, env) in specs.items():
            self.start(name, model_path, extra_args, env)
        return lambda name: self.get(name, model_path, *specs[name])

    def release(self, model_path: Path, extra_args: tuple[str, ...] = (), env: dict | None = None) -> None:
        """Stop a server this module no longer needs, before the module ends: on this 24 GiB machine
        every live server (three processes, ~2.4 GB) counts."""
        key = self.pool.key(model_path, extra_args, env)
        if key in self.started and key in self.pool.servers:
            assert (msg := self.pool.stop(key)) is None, msg

    def stop_started(self) -> list[str]:
        return [msg for key in self.started if key in self.pool.servers and (msg := self.pool.stop(key))]


def _interrupt_on_sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")  # pytest then runs the fixtures' teardown: servers stop


@pytest.fixture(scope="session")
def server_pool(tmp_path_factory):
    previous = signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    pool = ServerPool(tmp_path_factory.mktemp("servers"))
    try:
        yield pool
    finally:
        leftovers = pool.stop_all()
        signal.signal(signal.SIGTERM, previous)
    assert not leftovers, f"servers not stopped: {leftovers}"


@pytest.fixture(scope="module")
def module_servers(server_pool):
    servers = ModuleServers(server_pool)
    yield servers
    leftovers = servers.stop_started()
    assert not leftovers, f"servers not stopped: {leftovers}"


@pytest.fixture(scope="session")
def pair() -> tuple[Path, Path]:
    return tiny_pair()


def _start_session_pair(server_pool: ServerPool, pair) -> tuple[ServerProcess, ServerProcess]:
    """The bundled pair's AR and DFLASH servers, started together: nearly every e2e module needs both."""
    target, drafter = pair
    ar = server_pool.start("ar", target, AR_ORACLE_ARGS, env=STRICT_MEMORY_ENV)
    dflash = server_pool.start("dflash", target, FP32 + METRICS + dflash_args(drafter), env=STRICT_MEMORY_ENV)
    return ar, dflash


@pytest.fixture(scope="session")
def ar_server(server_pool, pair) -> ServerProcess:
    """AR without the overlap scheduler, which counts penalties one token late (helpers/request_features.py):
    the oracle of every module, penalties included."""
    ar, _ = _start_session_pair(server_pool, pair)
    ar.wait_ready()
    return ar


@pytest.fixture(scope="session")
def dflash_server(server_pool, pair) -> ServerProcess:
    _, dflash = _start_session_pair(server_pool, pair)
    dflash.wait_ready()
    return dflash


@pytest.fixture(scope="session")
def hybrid_pair() -> tuple[Path, Path]:
    return tiny_pair("hybrid")


@pytest.fixture(scope="session")
def hybrid_ar_server(server_pool, hybrid_pair) -> ServerProcess:
    """AR on the hybrid target: the oracle of every hybrid module, so it lives for the session."""
    target, _ = hybrid_pair
    return server_pool.get("hybrid-ar", target, FP32 + HYBRID_MEMORY_ARGS + ("--mamba-radix-cache-strategy", "no_buffer"),
                           env=HYBRID_ENV)


@pytest.fixture(scope="session")
def prompts() -> list[str]:
    """The lossless checks' HumanEval prompts (a module may define its own)."""
    return humaneval_prompts(LOSSLESS_PROMPTS)


@pytest.fixture(scope="session")
def hybrid_ar_outputs(hybrid_ar_server, prompts) -> list[list[int]]:
    """AR's greedy tokens on `prompts` with the hybrid target, once for every hybrid module (AR is slow there)."""
    results = generate_many(hybrid_ar_server.base_url, prompts, LOSSLESS_NEW_TOKENS, 1, temperature=0)
    return [r["output_ids"] for r in results]


@pytest.fixture(scope="session")
def ar_outputs(ar_server, prompts) -> list[list[int]]:
    """AR's greedy tokens on `prompts`, once for every module that compares a DFLASH mode with them."""
    results = generate_many(ar_server.base_url, prompts, LOSSLESS_NEW_TOKENS, 1, temperature=0)
    return [r["output_ids"] for r in results]
