"""The benchmark's schedule: one server at a time, every dataset × concurrency on it, then stop it.

A method that cannot run (the server does not start, a request fails) gets a RunRecord whose `error`
holds the reason and the server log's tail, never numbers; the next method still runs.
"""

from __future__ import annotations

import json
import os
import tempfile
import urllib.request
from pathlib import Path

from dflash_sglang.benchmark.args import BenchConfig
from dflash_sglang.benchmark.load import REQUEST_ERRORS, run_load, sampling_params, warm_up
from dflash_sglang.benchmark.methods import recipe
from dflash_sglang.benchmark.records import RunRecord
from dflash_sglang.errors import UserError
from dflash_sglang.serving import ServerProcess, launch

LOG_TAIL_LINES = 25


def _runs(config: BenchConfig, method: str, base_url: str, prompts: dict[str, list[str]],
          block_size: int | None, server: ServerProcess | None) -> list[RunRecord]:
    """Every dataset × concurrency on one ready server; the first failure ends this method."""
    sampling = sampling_params(config.max_new_tokens, config.temperature, config.ignore_eos)
    cells = [(d, c) for d in config.datasets for c in config.concurrencies]
    runs: list[RunRecord] = []
    try:
        warm_up(base_url, next(iter(prompts.values())), config.warmup_requests, config.max_new_tokens)
        for dataset, concurrency in cells:
            wall, requests = run_load(base_url, prompts[dataset], concurrency, sampling, config.timeout_s,
                                      desc=f"{method} {_short(dataset)} c={concurrency}")
            runs.append(RunRecord(dataset, method, concurrency, wall, tuple(requests), block_size=block_size))
    except REQUEST_ERRORS as err:
        reason = _reason(f"request failed: {err}", server)
        runs += [RunRecord(d, method, c, error=reason, block_size=block_size) for d, c in cells[len(runs):]]
    return runs


def _reason(headline: str, server: ServerProcess | None) -> str:
    """`headline: <the log's last error line>`, then the log's tail."""
    tail = server.tail(LOG_TAIL_LINES) if server is not None else ""
    errors = [line.strip() for line in tail.splitlines() if "error" in line.lower()]
    if errors:
        headline = f"{headline}: {errors[-1]}"
    return f"{headline}\n--- server log tail ---\n{tail}" if tail else headline


def _short(dataset: str) -> str:
    return Path(dataset).stem if dataset != "humaneval" else dataset


def run_method(config: BenchConfig, method: str, prompts: dict[str, list[str]], log_dir: Path) -> list[RunRecord]:
    """Start `method`'s server, run every cell, stop it (always, by its process group)."""
    plan = recipe(config, method)
    block_size = None if method == "ar" else config.block_size
    server = None
    try:
        # No --sleep-on-idle: a measured server is never idle, and the idle sleeper was seen stalling AR.
        server = launch(config.model, plan.args, log_path=log_dir / f"{method}.log", env={**os.environ, **plan.env},
                        sleep_on_idle=False)
        server.wait_ready()
    except (RuntimeError, TimeoutError, UserError) as err:
        reason = _reason(f"server did not start ({str(err).splitlines()[0].rstrip(':')})", server)
        if server is not None:
            server.stop()
        return [RunRecord(d, method, c, error=reason, block_size=block_size)
                for d in config.datasets for c in config.concurrencies]
    try:
        return _runs(config, method, server.base_url, prompts, block_size, server)
    finally:
        server.stop()


def server_method(base_url: str) -> tuple[str, int | None]:
    """(method name, verify width) of a running server, from its `/server_info`."""
    with urllib.request.urlopen(base_url + "/server_info", timeout=30) as resp:
        info = json.loads(resp.read())
    algorithm = info.get("speculative_algorithm")
    if not algorithm:
        return "ar", None
    return str(algorithm).lower(), info.get("speculative_num_draft_tokens")


def run_all(config: BenchConfig, prompts: dict[str, list[str]]) -> tuple[list[RunRecord], Path | None]:
    """(every run, the directory holding server logs or None for --base-url)."""
    if config.base_url is not None:
        method, block_size = server_method(config.base_url)
        return _runs(config, config.label or method, config.base_url, prompts, block_size, None), None
    log_dir = config.log_dir or Path(tempfile.mkdtemp(prefix="dflash-bench-"))
    runs: list[RunRecord] = []
    for method in config.methods:
        runs += run_method(config, method, prompts, log_dir)
    return runs, log_dir
