"""The soak's schedule: AR answers the greedy pool and stops; DFLASH starts (strict idle memory check), takes the
traffic, idles, is checked and stops. One server at a time; every server this module starts is stopped by PID.

`run_soak` also takes running servers (the e2e test passes the suite's), so the caller decides who starts what.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from dflash_sglang.bundled import tiny_pair
from dflash_sglang.datasets import humaneval_prompts
from dflash_sglang.serving import ServerProcess, launch
from dflash_sglang.soak.drive import Traffic
from dflash_sglang.soak.monitor import RssSampler, healthy, idle_usage, leak_lines
from dflash_sglang.soak.references import ar_references
from dflash_sglang.soak.report import IdleState, build_report
from dflash_sglang.soak.traffic import build_prompts, greedy_pool

FP32_METRICS = ("--dtype", "float32", "--enable-metrics")  # exact comparisons; num_used_tokens at idle
# AR without the overlap scheduler counts penalties over every output token (README, Request features)
AR_ARGS = (*FP32_METRICS, "--disable-overlap-schedule")
STRICT_MEMORY_ENV = {"SGLANG_ENABLE_STRICT_MEM_CHECK_DURING_IDLE": "1"}
BLOCK_SIZE = 8


def dflash_args(drafter: Path, block_size: int = BLOCK_SIZE) -> tuple[str, ...]:
    return (*FP32_METRICS, "--speculative-algorithm", "DFLASH", "--speculative-draft-model-path", str(drafter),
            "--speculative-num-draft-tokens", str(block_size))


@dataclass(frozen=True)
class SoakConfig:
    minutes: float = 30.0
    concurrency: int = 16
    greedy_pool: int = 48  # distinct greedy requests AR answers beforehand
    seed: int = 0
    output: Path = Path("build/soak/report.json")
    log_dir: Path = Path("build/soak/logs")
    target: Path = field(default_factory=lambda: tiny_pair()[0])
    drafter: Path = field(default_factory=lambda: tiny_pair()[1])

    def __post_init__(self) -> None:
        if self.minutes <= 0 or self.concurrency < 1 or self.greedy_pool < 1:
            raise ValueError(f"soak: expected minutes > 0, concurrency >= 1, greedy pool >= 1, got {self.minutes}, "
                             f"{self.concurrency}, {self.greedy_pool}")


def _say(message: str) -> None:
    print(f"soak: {message}", file=sys.stderr, flush=True)


def _tokenizer_counter(target: Path):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(target / "tokenizer.json"))
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)


def _started(name: str, model: Path, args: tuple[str, ...], env: dict, log_dir: Path) -> ServerProcess:
    _say(f"starting the {name} server (log {log_dir / f'{name}.log'})")
    server = launch(model, args, log_path=log_dir / f"{name}.log", env={**os.environ, **env})
    try:
        server.wait_ready()
    except (RuntimeError, TimeoutError):
        server.stop()
        raise
    return server


def _references(config: SoakConfig, pool, ar: ServerProcess | None):
    if ar is not None:
        return ar_references(ar.base_url, pool, config.concurrency)
    server = _started("ar", config.target, AR_ARGS, {}, config.log_dir)
    try:
        _say(f"AR answers the {len(pool)} greedy requests of the pool")
        return ar_references(server.base_url, pool, config.concurrency)
    finally:
        server.stop()


def _soak(config: SoakConfig, dflash: ServerProcess, pool, prompts, references, context_len: int) -> dict:
    t0 = time.monotonic()
    sampler = RssSampler(dflash.pid, t0).start()
    traffic_start = time.monotonic() - t0
    _say(f"{config.minutes:g} min of c={config.concurrency} traffic on {dflash.base_url}")
    outcomes = Traffic(dflash.base_url, pool, prompts, context_len, config.seed + 1).run(
        config.minutes * 60, config.concurrency, t0)
    traffic_end = time.monotonic() - t0
    usage = idle_usage(dflash.base_url)
    idle = IdleState(usage, healthy(dflash.base_url), tuple(leak_lines(dflash.log_text())))
    rss = sampler.stop()
    settings = {"concurrency": config.concurrency, "greedy_pool": len(pool), "seed": config.seed,
                "block_size": BLOCK_SIZE, "target": str(config.target), "drafter": str(config.drafter),
                "server_argv": dflash.argv[3:], "strict_idle_mem_check": True}
    report = build_report(outcomes, references, rss, (traffic_start, traffic_end), idle, config.minutes, settings)
    report["timeline_s"] = {"traffic_start": round(traffic_start, 1), "traffic_end": round(traffic_end, 1)}
    return report


def run_soak(config: SoakConfig, ar: ServerProcess | None = None, dflash: ServerProcess | None = None) -> dict:
    """The report (report.py); `ar`/`dflash`: running servers to use instead of starting them."""
    context_len = int(json.loads((config.target / "config.json").read_text())["max_position_embeddings"])
    rng = random.Random(config.seed)
    prompts = build_prompts(humaneval_prompts(), _tokenizer_counter(config.target), context_len, rng)
    pool = greedy_pool(prompts, config.greedy_pool, context_len, rng)
    references = _references(config, pool, ar)
    if dflash is not None:
        return _soak(config, dflash, pool, prompts, references, context_len)
    server = _started("dflash", config.target, dflash_args(config.drafter), STRICT_MEMORY_ENV, config.log_dir)
    try:
        return _soak(config, server, pool, prompts, references, context_len)
    finally:
        server.stop()
