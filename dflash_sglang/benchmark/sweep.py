"""`make bench`: every method against AR over concurrency, greedy, in alternating rounds.

    python -m dflash_sglang.benchmark.sweep --methods ngram,builtin,chain,tree16,tree32,tree64,auto \\
        --concurrency 1,4,8,16,32 --rounds 3 --output docs/benchmarks/sweep.json

On a shared machine the load drifts over minutes, so a method's tok/s is only comparable with AR's
measured in the same minutes. AR's server stays up for the whole sweep and each method's server comes
up next to it in turn (this machine holds two servers at a time; the idle one sleeps). Every round runs
each concurrency on both, in alternating order, and records the method's tok/s over AR's: the report
gives the median of those ratios over the rounds, with their range. Greedy output is compared with
AR's of the same round (every method here is lossless). The JSON and the plots (speedup against
concurrency, one line per method; τ against the verify budget) are written after every method.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import os
import tempfile
from pathlib import Path

from dflash_sglang.benchmark.args import parse_config
from dflash_sglang.benchmark.load import run_load, sampling_params, warm_up
from dflash_sglang.benchmark.methods import recipe
from dflash_sglang.benchmark.records import RequestRecord, RunRecord
from dflash_sglang.benchmark.report import environment, write_json
from dflash_sglang.benchmark.stats import summarize
from dflash_sglang.benchmark.sweep_plot import write_sweep_plot
from dflash_sglang.benchmark.sweep_report import SweepCell, auto_checks, markdown_table, summarize_cells
from dflash_sglang.datasets import load_prompts
from dflash_sglang.serving import ServerProcess, exit_on_sigterm, launch_ready
from dflash_sglang.spec.tree_budget import TREE_BUDGET_FLAG

# sweep name -> (server recipe in methods.py, extra server flags)
METHODS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ngram": ("ngram", ()),
    "builtin": ("builtin", ()),
    "chain": ("dflash", ()),
    "tree16": ("dflash", (TREE_BUDGET_FLAG, "16")),
    "tree32": ("dflash", (TREE_BUDGET_FLAG, "32")),
    "tree64": ("dflash", (TREE_BUDGET_FLAG, "64")),
    "auto": ("dflash", (TREE_BUDGET_FLAG, "auto")),
}
DEFAULT_METHODS = ",".join(METHODS)


def _start(config, method: str, log_dir: Path) -> ServerProcess:
    base, extra = METHODS.get(method, (method, ()))
    plan = recipe(config, base)
    # Idle servers sleep: AR's must not spin while the method's is measured, and the other way round.
    return launch_ready(config.model, plan.args + extra, log_path=log_dir / f"{method}.log",
                        env={**os.environ, **plan.env}, sleep_on_idle=True)


def _mismatches(ours: list[RequestRecord], ar: list[RequestRecord]) -> int:
    return sum(a.output_ids != b.output_ids for a, b in zip(ours, ar))


def _cell(config, method: str, concurrency: int, round_: int, wall: dict[str, float],
          requests: dict[str, list[RequestRecord]]) -> SweepCell:
    ours = requests[method]
    tok_s = {name: sum(r.completion_tokens for r in reqs) / wall[name] for name, reqs in requests.items()}
    block = None if method == "ar" else config.block_size
    stats = summarize(RunRecord("humaneval", method, concurrency, wall[method], tuple(ours), block_size=block))
    widths = collections.Counter(w for r in ours for w in r.verify_widths)
    return SweepCell(method=method, concurrency=concurrency, round=round_, tok_s=tok_s[method], ar_tok_s=tok_s["ar"],
                     tau=stats.tau, widths={int(w): n for w, n in sorted(widths.items())},
                     mismatches=_mismatches(ours, requests["ar"]))


def _phase(config, ar: ServerProcess, method: str, prompts: list[str], rounds: int, log_dir: Path,
           cells: list[SweepCell]) -> None:
    """Appends each cell to `cells` as it is measured, so that a sweep cut short keeps them."""
    server = _start(config, method, log_dir)
    try:
        servers = {"ar": ar, method: server}
        warm_up(server.base_url, prompts, config.warmup_requests, config.max_new_tokens)
        sampling = sampling_params(config.max_new_tokens, 0.0, True)
        for r in range(rounds):
            for i, c in enumerate(config.concurrencies):
                cell_prompts = (prompts * (1 + c // len(prompts)))[:max(config.num_prompts, c)]
                order = ("ar", method) if (r + i) % 2 == 0 else (method, "ar")  # each cell: both orders
                wall, requests = {}, {}
                for name in order:
                    wall[name], requests[name] = run_load(servers[name].base_url, cell_prompts, c, sampling,
                                                          config.timeout_s, desc=f"round {r + 1} {name} c={c}")
                cells.append(_cell(config, method, c, r, wall, requests))
    finally:
        server.stop()


def _write(config, meta: dict, cells: list[SweepCell]) -> None:
    if not cells:
        return
    rows = summarize_cells(cells, config.block_size)
    write_json(config.output, {**meta, "rows": [dataclasses.asdict(r) for r in rows],
                               "auto_checks": auto_checks(rows), "cells": [dataclasses.asdict(c) for c in cells]})
    write_sweep_plot(config.output.with_suffix(".png"), rows, config.block_size)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m dflash_sglang.benchmark.sweep")
    p.add_argument("--methods", default=DEFAULT_METHODS, help=f"from {DEFAULT_METHODS}")
    p.add_argument("--concurrency", default="1,4,8,16,32")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--num-prompts", type=int, default=16, help="per cell; at least the concurrency")
    p.add_argument("--max-new-tokens", type=int, default=96)
    p.add_argument("--output", type=Path, default=Path("docs/benchmarks/sweep.json"))
    p.add_argument("--server-args", default="", help="extra flags for every server, as one string")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    exit_on_sigterm()
    args = _arguments(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods or args.rounds < 1:
        raise SystemExit(f"--methods/--rounds: expected names from {DEFAULT_METHODS} and rounds >= 1, "
                         f"got {methods} and {args.rounds}")
    config = parse_config(["--compare", "ar,dflash,builtin", "--num-prompts", str(args.num_prompts),
                           "--max-new-tokens", str(args.max_new_tokens), "--concurrency", args.concurrency,
                           "--ignore-eos", "--output", str(args.output), "--server-args", args.server_args])
    prompts = load_prompts("humaneval", max(config.num_prompts, *config.concurrencies))
    log_dir = Path(tempfile.mkdtemp(prefix="dflash-sweep-"))
    meta = {"config": {"methods": methods, "concurrencies": list(config.concurrencies), "rounds": args.rounds,
                       "num_prompts": config.num_prompts, "max_new_tokens": config.max_new_tokens,
                       "block_size": config.block_size, "model": str(config.model),
                       "draft_model": str(config.draft_model), "temperature": 0.0, "ignore_eos": True,
                       "dataset": "humaneval"},
            "environment": environment(), "server_logs": str(log_dir)}
    cells: list[SweepCell] = []
    ar = _start(config, "ar", log_dir)
    try:
        warm_up(ar.base_url, prompts, config.warmup_requests, config.max_new_tokens)
        for method in methods:
            try:
                _phase(config, ar, method, prompts, args.rounds, log_dir, cells)
            finally:  # after every method, and when one fails: a sweep cut short keeps what it measured
                _write(config, meta, cells)
    finally:
        ar.stop()
    print(markdown_table(summarize_cells(cells, config.block_size)))
    print(f"\nreport: {config.output}\nplot: {config.output.with_suffix('.png')}\nserver logs: {log_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
