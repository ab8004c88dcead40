"""Real SGLang servers for the e2e tests, started once per session and stopped by PID.

Servers are keyed by their arguments, so test modules that need the same configuration share one
start-up (about a minute each on this CPU).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dflash_sglang.bundled import tiny_pair
from dflash_sglang.serving import ServerProcess, group_members, launch
from helpers.e2e import FP32, METRICS, STRICT_MEMORY_ENV, dflash_args


class ServerPool:
    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.servers: dict[tuple, ServerProcess] = {}

    def get(self, name: str, model_path: Path, extra_args: tuple[str, ...] = (), env: dict | None = None) -> ServerProcess:
        key = (str(model_path), extra_args, tuple(sorted((env or {}).items())))
        if key not in self.servers:
            import os

            server = launch(model_path, extra_args, log_path=self.log_dir / f"{name}.log",
                            env={**os.environ, **(env or {})})
            self.servers[key] = server
            server.wait_ready()
        return self.servers[key]

    def stop_all(self) -> list[str]:
        leftovers = []
        for server in self.servers.values():
            server.stop()
            alive = group_members(server.pid)
            if alive:
                leftovers.append(f"pid {server.pid}: members {alive} still alive")
        return leftovers


@pytest.fixture(scope="session")
def server_pool(tmp_path_factory):
    pool = ServerPool(tmp_path_factory.mktemp("servers"))
    yield pool
    leftovers = pool.stop_all()
    assert not leftovers, f"servers not stopped: {leftovers}"


@pytest.fixture(scope="session")
def pair() -> tuple[Path, Path]:
    return tiny_pair()


@pytest.fixture(scope="session")
def ar_server(server_pool, pair) -> ServerProcess:
    target, _ = pair
    return server_pool.get("ar", target, FP32 + METRICS, env=STRICT_MEMORY_ENV)


@pytest.fixture(scope="session")
def dflash_server(server_pool, pair) -> ServerProcess:
    target, drafter = pair
    return server_pool.get("dflash", target, FP32 + METRICS + dflash_args(drafter), env=STRICT_MEMORY_ENV)
