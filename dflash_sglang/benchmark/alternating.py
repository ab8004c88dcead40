"""Sampled-request benchmark in alternating rounds: each method paired with AR, both servers up.

    python -m dflash_sglang.benchmark.alternating --methods dflash,dflash-point-mass,builtin \\
        --temperatures 0.7,1.0 --concurrency 1,8 --rounds 2 --output docs/benchmarks/run.json

On a shared machine the load drifts over minutes, so a method's tok/s is only comparable with AR's
measured in the same minutes. For each method, AR's server and the method's are up together (this
machine holds two servers at a time: one AR server stays up, the methods' servers take turns); every
round runs each temperature x concurrency cell on both, in alternating order. Speedup is the method's
tok/s over its own AR's, over all rounds; `round_speedups` in the JSON has each round's ratio with their
median and range. τ does not depend on load. `dflash-point-mass` is our worker
with DFLASH_SGLANG_SAMPLING_RULE=point-mass; `dflash-tree-16` verifies a tree of 16 tokens per request
(`--speculative-dflash-tree-budget 16`: branches drawn from the drafter's q on sampled requests), the
multi-candidate rule whose τ the chain's is compared with; `dflash-auto` is our worker with a per-step
verify width (`--speculative-dflash-tree-budget auto`), which may fall back to plain decoding.

Another pair (e.g. the hybrid one: `eval "$(dflash-sglang tiny-pair --kind hybrid)"`) is given by
`--model`/`--draft-model` and its flags by `--server-args`; `--temperatures 0` is greedy decoding, and
`--baseline builtin --methods dflash` pairs our worker with SGLang's own in the same minutes.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import tempfile
from pathlib import Path

from dflash_sglang.benchmark.args import BenchConfig, OneLineParser, parse_config
from dflash_sglang.benchmark.cli import run_main
from dflash_sglang.benchmark.load import run_load, sampling_params, warm_up
from dflash_sglang.benchmark.methods import recipe
from dflash_sglang.benchmark.records import RunRecord
from dflash_sglang.benchmark.report import environment, write_json
from dflash_sglang.benchmark.stats import RunStats, summarize, with_speedups
from dflash_sglang.datasets import load_prompts
from dflash_sglang.errors import UserError
from dflash_sglang.serving import ServerProcess, launch, launch_ready
from dflash_sglang.spec.tree_budget import TREE_BUDGET_FLAG

POINT_MASS = "dflash-point-mass"
TREE = "dflash-tree-16"
AUTO = "dflash-auto"
METHODS = ("dflash", POINT_MASS, TREE, AUTO, "builtin")
TREE_BUDGETS = {TREE: "16", AUTO: "auto"}
LABELS = {"ar": "AR", "dflash": "DFLASH (ours, rejection)", POINT_MASS: "DFLASH (ours, point-mass rule)",
          TREE: f"DFLASH (ours, rejection, {TREE_BUDGET_FLAG} 16: branches)",
          AUTO: f"DFLASH (ours, rejection, {TREE_BUDGET_FLAG} auto)",
          "builtin": "DFLASH (SGLang builtin, CPU: our torch sampling verify, point-mass rule)"}


def server_plan(config, method: str) -> tuple[tuple[str, ...], dict[str, str]]:
    """`method`'s server flags and the environment it adds: our variants are `dflash` plus a rule or a budget."""
    plan = recipe(config, "dflash" if method in (POINT_MASS, *TREE_BUDGETS) else method)
    env = {**plan.env, **({"DFLASH_SGLANG_SAMPLING_RULE": "point-mass"} if method == POINT_MASS else {})}
    budget = (TREE_BUDGET_FLAG, TREE_BUDGETS[method]) if method in TREE_BUDGETS else ()
    return (*plan.args, *budget), env


def _launch(config, method: str, log_dir: Path, ready: bool = False) -> ServerProcess:
    """`method`'s server; with `ready`, waited for (and stopped if that fails or is interrupted)."""
    args, env = server_plan(config, method)
    # Idle servers sleep: the other server of the pair must not spin while one is measured.
    start = launch_ready if ready else launch
    return start(config.model, args, log_path=log_dir / f"{method}.log", env={**os.environ, **env},
                 sleep_on_idle=True)


def _start(config, method: str, log_dir: Path) -> ServerProcess:
    return _launch(config, method, log_dir, ready=True)


def _phase(config, base: tuple[str, ServerProcess], method: str, prompts: list[str], temperatures, rounds: int,
           log_dir: Path, server: ServerProcess | None = None) -> list[RunRecord]:
    """`method`'s server up next to the baseline's; every round, every cell on both in alternating order."""
    baseline = base[0]
    server = server or _start(config, method, log_dir)
    try:
        servers = {baseline: base[1], method: server}
        warm_up(server.base_url, prompts, config.warmup_requests, config.max_new_tokens)
        runs = []
        cells = [(t, c) for t in temperatures for c in config.concurrencies]
        for r in range(rounds):
            for i, (t, c) in enumerate(cells):
                order = (baseline, method) if (r + i) % 2 == 0 else (method, baseline)  # each cell: both orders
                for name in order:
                    wall, requests = run_load(servers[name].base_url, prompts, c,
                                              sampling_params(config.max_new_tokens, t, True), config.timeout_s,
                                              desc=f"round {r + 1} {name} T={t} c={c}")
                    runs.append(RunRecord(f"T={t:g}", name, c, wall, tuple(requests),
                                          block_size=None if name == "ar" else config.block_size))
        return runs
    finally:
        server.stop()


def _merge(runs: list[RunRecord]) -> list[RunRecord]:
    """One record per temperature x concurrency x method: all rounds' requests, summed wall time."""
    merged: dict[tuple, RunRecord] = {}
    for run in runs:
        key = (run.dataset, run.concurrency, run.method)
        if key in merged:
            old = merged[key]
            run = dataclasses.replace(old, wall_s=old.wall_s + run.wall_s, requests=old.requests + run.requests)
        merged[key] = run
    return list(merged.values())


def round_speedups(runs: list[RunRecord], method: str, baseline: str) -> list[dict]:
    """Per temperature x concurrency: the method's tok/s over the baseline's in each round (both servers
    measured in the same minutes), with their median and range: the spread the pooled speedup hides."""
    tok_s: dict[tuple, list[float]] = {}
    for run in runs:  # in round order: every round appends one run per cell and server
        tok_s.setdefault((run.dataset, run.concurrency, run.method), []).append(summarize(run).output_tok_s)
    cells = []
    for (dataset, c, name), ours in tok_s.items():
        if name != method:
            continue
        ratios = [o / b for o, b in zip(ours, tok_s[(dataset, c, baseline)])]
        cells.append({"dataset": dataset, "concurrency": c, "speedups": ratios,
                      "median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)})
    return cells


def markdown_table(phases: dict[str, list[RunStats]], baseline: str = "ar") -> str:
    name = "AR" if baseline == "ar" else baseline  # the full label is in the rows; headers stay short
    lines = [f"| T | c | method | tok/s | {name} tok/s (same minutes) | speedup vs {name} | τ |",
             "|---|---|---|---|---|---|---|"]
    rows = []
    for method, stats in phases.items():
        ar = {(s.dataset, s.concurrency): s.output_tok_s for s in stats if s.method == baseline}
        rows += [(s.dataset, s.concurrency, METHODS.index(method), s, ar[(s.dataset, s.concurrency)])
                 for s in stats if s.method == method]
    for temp, c, _, s, ar_tok_s in sorted(rows, key=lambda row: row[:3]):
        lines.append(f"| {temp[2:]} | {c} | {LABELS[s.method]} | {s.output_tok_s:.1f} | {ar_tok_s:.1f} | "
                     f"{s.speedup:.2f}× | {s.tau:.2f} |")
    return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class AlternatingConfig:
    bench: BenchConfig  # models, prompts per cell, concurrencies, output, server flags
    methods: tuple[str, ...]
    baseline: str
    temperatures: tuple[float, ...]
    rounds: int


def parse_alternating(argv: list[str] | None = None) -> AlternatingConfig:
    p = OneLineParser(prog="python -m dflash_sglang.benchmark.alternating")
    p.add_argument("--methods", default=",".join(METHODS), help=f"from {','.join(METHODS)}")
    p.add_argument("--baseline", default="ar", help="the server every method is paired with (default ar)")
    p.add_argument("--temperatures", default="0.7,1.0", help="0 for greedy decoding")
    p.add_argument("--concurrency", default="1,8")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--num-prompts", type=int, default=16)
    p.add_argument("--max-new-tokens", type=int, default=96)
    p.add_argument("--model", help="target model directory (default: the bundled tiny pair)")
    p.add_argument("--draft-model", help="DFlash drafter directory (default: the bundled tiny pair's)")
    p.add_argument("--dtype", help="server --dtype (default: float32 for the tiny pair, else SGLang's)")
    p.add_argument("--output", type=Path, default=Path("dflash-sampling-benchmark.json"))
    p.add_argument("--server-args", default="", help="extra flags for every server, as one string")
    args = p.parse_args(argv)
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    bad = [m for m in methods + (args.baseline,) if m not in METHODS + ("ar",) or m == args.baseline and m in methods]
    if bad or not methods:
        raise UserError(f"--methods / --baseline: expected distinct names from ar,{','.join(METHODS)}, got {bad}")
    try:
        temperatures = tuple(float(t) for t in args.temperatures.split(","))
    except ValueError:
        raise UserError(f"--temperatures: expected numbers like `0.7,1.0`, got {args.temperatures!r}") from None
    if min(temperatures) < 0 or args.rounds < 1:
        raise UserError(f"--temperatures / --rounds: expected temperatures >= 0 and rounds >= 1, "
                        f"got {args.temperatures!r} / {args.rounds}")
    optional = [(flag, value) for flag, value in (("--model", args.model), ("--draft-model", args.draft_model),
                                                 ("--dtype", args.dtype)) if value]
    bench = parse_config(["--compare", "ar,dflash,builtin", "--num-prompts", str(args.num_prompts),
                          "--max-new-tokens", str(args.max_new_tokens), "--concurrency", args.concurrency,
                          "--ignore-eos", "--output", str(args.output), "--server-args", args.server_args,
                          *(part for pair in optional for part in pair)])
    return AlternatingConfig(bench, methods, args.baseline, temperatures, args.rounds)


def _report_meta(alt: AlternatingConfig, log_dir: Path) -> dict:
    config = alt.bench
    return {"config": {"methods": list(alt.methods), "baseline": alt.baseline, "temperatures": list(alt.temperatures),
                       "concurrencies": list(config.concurrencies), "rounds": alt.rounds,
                       "num_prompts": config.num_prompts, "max_new_tokens": config.max_new_tokens,
                       "block_size": config.block_size, "model": str(config.model),
                       "draft_model": str(config.draft_model), "dtype": config.dtype, "ignore_eos": True,
                       "dataset": "humaneval"},
            "environment": environment(), "server_logs": str(log_dir)}


def run_alternating(alt: AlternatingConfig) -> int:
    config = alt.bench
    prompts = load_prompts("humaneval", config.num_prompts)
    log_dir = Path(tempfile.mkdtemp(prefix="dflash-sampling-bench-"))
    meta = _report_meta(alt, log_dir)
    phases: dict[str, list[RunStats]] = {}
    rounds: dict[str, list[dict]] = {}
    started: list[ServerProcess] = []  # stopped below, however the run ends
    try:
        base = _launch(config, alt.baseline, log_dir)  # one baseline server for every phase
        started.append(base)
        first = _launch(config, alt.methods[0], log_dir)  # the first pair starts together
        started.append(first)
        for server in (base, first):
            server.wait_ready()
        warm_up(base.base_url, prompts, config.warmup_requests, config.max_new_tokens)
        for i, method in enumerate(alt.methods):
            runs = _phase(config, (alt.baseline, base), method, prompts, alt.temperatures, alt.rounds, log_dir,
                          server=first if i == 0 else None)
            rounds[method] = round_speedups(runs, method, alt.baseline)
            phases[method] = with_speedups([summarize(r) for r in _merge(runs)], baseline=alt.baseline)
            # Written after every phase: a run cut short keeps what it measured.
            write_json(config.output, {**meta, "phases": {m: [dataclasses.asdict(s) for s in st]
                                                          for m, st in phases.items()},
                                       "round_speedups": rounds})
    finally:
        for server in started:
            server.stop()
    print(markdown_table(phases, alt.baseline))
    print(f"\nreport: {config.output}\nserver logs: {log_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(lambda: run_alternating(parse_alternating(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
