"""The benchmark's written results: the JSON report and a markdown table for the README."""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import json
import os
import platform
from pathlib import Path

from dflash_sglang import __version__
from dflash_sglang.benchmark.args import BenchConfig
from dflash_sglang.benchmark.records import RunRecord, request_to_dict
from dflash_sglang.benchmark.stats import RunStats

COLUMNS = ("dataset", "c", "method", "tok/s", "τ", "speedup", "efficiency", "TTFT p50 ms", "ITL p50 ms",
           "chunk p50 ms")


def _jsonable(value):
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def environment() -> dict:
    try:
        sglang_version = importlib.metadata.version("sglang")
    except importlib.metadata.PackageNotFoundError:
        sglang_version = None
    return {"dflash_sglang": __version__, "sglang": sglang_version, "cpu_count": os.cpu_count(),
            "machine": platform.machine(), "python": platform.python_version(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def _run_dict(run: RunRecord) -> dict:
    return {"dataset": run.dataset, "method": run.method, "concurrency": run.concurrency, "wall_s": run.wall_s,
            "block_size": run.block_size, "error": run.error,
            "requests": [request_to_dict(r) for r in run.requests]}


def report_dict(config: BenchConfig, stats: list[RunStats], runs: list[RunRecord], log_dir: Path | None,
                env: dict | None = None) -> dict:
    return {
        "config": {k: _jsonable(v) for k, v in dataclasses.asdict(config).items()},
        "environment": environment() if env is None else env,
        "server_logs": str(log_dir) if log_dir else None,
        "results": [dataclasses.asdict(s) for s in stats],
        "runs": [_run_dict(r) for r in runs],
    }


def write_json(path: Path, report: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=_jsonable) + "\n")


def _num(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _p50(summary: dict | None) -> str:
    return _num(summary["p50"] if summary else None, 1)


def _row(s: RunStats) -> list[str]:
    head = [s.dataset if s.dataset == "humaneval" else Path(s.dataset).name, str(s.concurrency), s.method]
    if s.error is not None:
        reason = s.error.splitlines()[0].replace("|", "/")
        return head + [f"failed: {reason}"] + [""] * (len(COLUMNS) - 4)
    speedup = _num(s.speedup, 2) + ("×" if s.speedup is not None else "")
    return head + [_num(s.output_tok_s, 1), _num(s.tau, 2), speedup,
                   _num(s.efficiency, 2), _p50(s.ttft_ms), _p50(s.itl_ms), _p50(s.chunk_ms)]


def markdown_table(stats: list[RunStats]) -> str:
    """One row per dataset × concurrency × method, in that order; failures say why in the tok/s column."""
    order = sorted(stats, key=lambda s: (s.dataset, s.concurrency))  # stable: methods keep run order
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_row(s)) + " |" for s in order]
    return "\n".join(lines)
