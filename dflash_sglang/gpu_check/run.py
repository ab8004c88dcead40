"""`make gpu-check`: the host check, the plan run cell by cell within the time budget, the table, the JSON.

Each cell is one benchmark run (`dflash_sglang.benchmark.runner.run_all`) of AR, our DFLASH and the
builtin with the cell's flags, so servers, requests and statistics are the benchmark's own. Exit codes:
0 every cell that ran is lossless where exactness is required (fp32) and no server failed; 1 otherwise;
2 no CUDA device here, or a bad argument (one line).
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
import time
from pathlib import Path

from dflash_sglang.benchmark.args import BenchConfig
from dflash_sglang.benchmark.args import parse_config as parse_bench_config
from dflash_sglang.benchmark.records import RunRecord
from dflash_sglang.benchmark.report import environment, write_json
from dflash_sglang.benchmark.runner import run_all
from dflash_sglang.benchmark.stats import summarize, with_speedups
from dflash_sglang.errors import UserError
from dflash_sglang.gpu_check import lossless
from dflash_sglang.gpu_check.args import GpuCheckConfig, parse_config
from dflash_sglang.gpu_check.plan import CONCURRENCIES, METHODS, Cell, Device, build_plan
from dflash_sglang.gpu_check.table import NotRun, Row, render

DATASET = "humaneval"
NO_CUDA = "gpu-check: no CUDA device on this host (no NVIDIA driver or torch sees no GPU); run it on a GPU host"


def cuda_device() -> Device | None:
    from dflash_sglang import harness

    if not harness.has_nvidia_driver():  # before importing torch: the answer on a CPU host is immediate
        return None
    import torch

    if not torch.cuda.is_available():
        return None
    return Device(torch.cuda.get_device_name(0), tuple(torch.cuda.get_device_capability(0)))


def bench_config(config: GpuCheckConfig, cell: Cell, log_dir: Path) -> BenchConfig:
    """The benchmark's own configuration for one cell, through its own parser (defaults and checks)."""
    return parse_bench_config([
        "--compare", ",".join(METHODS), "--concurrency", ",".join(map(str, CONCURRENCIES)),
        "--num-prompts", str(config.num_prompts), "--max-new-tokens", str(config.max_new_tokens),
        "--dtype", cell.dtype, "--output", str(config.output), "--log-dir", str(log_dir), "--timeout-s", "300",
        f"--server-args={shlex.join(cell.server_args())}",  # one `=` argument: its value starts with --
    ])


def run_cell(config: GpuCheckConfig, cell: Cell, log_dir: Path, prompts: list[str]) -> list[RunRecord]:
    """One server per method, one after the other; a method that fails is a RunRecord with its reason."""
    runs, _ = run_all(bench_config(config, cell, log_dir), {DATASET: prompts})
    return runs


def rows_of(cell: Cell, runs: list[RunRecord]) -> list[Row]:
    """The cell's runs as table rows: statistics with speedups over this cell's AR, and the greedy check."""
    stats = with_speedups([summarize(r) for r in runs])
    reference = {r.concurrency: r for r in runs if r.method == "ar" and r.ok}
    rows = []
    for run, s in zip(runs, stats):
        ar = reference.get(run.concurrency)
        compared = lossless.compare(ar, run) if run.method != "ar" and run.ok and ar is not None else None
        rows.append(Row(cell, s, lossless.verdict(compared, cell.exact)))
    return sorted(rows, key=lambda row: row.stats.concurrency)  # stable: methods keep the plan's order


def run_plan(config: GpuCheckConfig, plan: list[Cell], log_dir: Path, prompts: list[str], run=run_cell,
             clock=time.monotonic) -> tuple[list[Row], list[NotRun], dict[str, list[RunRecord]]]:
    """Cells in plan order until the next one would end past the budget (predicted by the slowest so far)."""
    rows, not_run, runs_by_cell = [], [], {}
    start, slowest = clock(), 0.0
    for cell in plan:
        if cell.skip is not None:
            not_run.append(NotRun(cell, cell.skip))
            continue
        if clock() - start + slowest > config.budget_s:
            not_run.append(NotRun(cell, f"time budget ({config.budget_s / 60:.1f} min; --budget-min)"))
            continue
        began = clock()
        cell_dir = log_dir / cell.label.replace(" ", "-")
        runs = run(config, cell, cell_dir, prompts)
        slowest = max(slowest, clock() - began)
        runs_by_cell[cell.label] = runs
        rows += rows_of(cell, runs)
        print(f"gpu-check: {cell.label} done in {clock() - began:.0f} s", flush=True)
    return rows, not_run, runs_by_cell


def passed(rows: list[Row]) -> bool:
    return all(r.stats.error is None and not r.lossless.startswith("NO") for r in rows)


def report(config: GpuCheckConfig, device: Device, rows: list[Row], not_run: list[NotRun],
           runs_by_cell: dict[str, list[RunRecord]], log_dir: Path) -> dict:
    return {
        "device": dataclasses.asdict(device), "environment": environment(),
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(config).items()},
        "server_logs": str(log_dir),
        "results": [{"cell": dataclasses.asdict(r.cell), "greedy_equals_ar": r.lossless,
                     **dataclasses.asdict(r.stats)} for r in rows],
        "not_run": [{"cell": dataclasses.asdict(n.cell), "reason": n.reason} for n in not_run],
        "runs": {label: [dataclasses.asdict(r) for r in runs] for label, runs in runs_by_cell.items()},
    }


def main(argv: list[str] | None = None) -> int:
    try:
        config = parse_config(argv)
    except UserError as err:
        print(f"gpu-check: error: {err}", file=sys.stderr)
        return 2
    device = cuda_device()
    if device is None:
        print(NO_CUDA, file=sys.stderr)
        return 2
    from dflash_sglang.datasets import load_prompts

    plan = build_plan(config, device)
    log_dir = config.log_dir or config.output.parent / "logs"
    print(f"gpu-check: {device.name} (SM {device.capability[0]}.{device.capability[1]}), "
          f"{sum(c.skip is None for c in plan)} cells to run, budget {config.budget_s / 60:.1f} min", flush=True)
    rows, not_run, runs = run_plan(config, plan, log_dir, load_prompts(DATASET, config.num_prompts), run=run_cell)
    write_json(config.output, report(config, device, rows, not_run, runs, log_dir))
    print(render(rows, not_run))
    print(f"\nreport: {config.output}\nserver logs: {log_dir}")
    return 0 if passed(rows) else 1
