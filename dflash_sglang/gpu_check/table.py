"""The one table gpu-check prints: every cell × concurrency × method, with tok/s, τ, speedup over AR
and whether greedy output equals AR's. Cells that did not run say why in one row each."""

from __future__ import annotations

from dataclasses import dataclass

from dflash_sglang.benchmark.stats import RunStats
from dflash_sglang.gpu_check.plan import SHORT_DTYPE, Cell

COLUMNS = ("backend", "dtype", "graphs", "c", "method", "tok/s", "τ", "speedup", "greedy = AR")
METHOD_LABELS = {"ar": "AR", "dflash": "DFLASH (ours)", "builtin": "DFLASH (builtin)"}


@dataclass(frozen=True)
class Row:
    """One method at one concurrency in one cell, as measured and checked."""

    cell: Cell
    stats: RunStats
    lossless: str  # `lossless.verdict(...)`; "–" for AR itself


@dataclass(frozen=True)
class NotRun:
    cell: Cell
    reason: str  # the plan's skip reason, or the time budget


def _cell_columns(cell: Cell) -> list[str]:
    return [cell.backend, SHORT_DTYPE[cell.dtype], "on" if cell.graphs else "off"]


def _num(value: float | None, digits: int, suffix: str = "") -> str:
    return "–" if value is None else f"{value:.{digits}f}{suffix}"


def _row(row: Row) -> list[str]:
    s = row.stats
    head = _cell_columns(row.cell) + [str(s.concurrency), METHOD_LABELS.get(s.method, s.method)]
    if s.error is not None:
        return head + [f"failed: {s.error.splitlines()[0].replace('|', '/')}", "", "", ""]
    return head + [_num(s.output_tok_s, 1), _num(s.tau, 2), _num(s.speedup, 2, "×"), row.lossless]


def render(rows: list[Row], not_run: list[NotRun]) -> str:
    """A markdown table: rows in the order given (cell by cell), then one row per cell not run."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_row(r)) + " |" for r in rows]
    blank = [""] * (len(COLUMNS) - 5)
    lines += ["| " + " | ".join(_cell_columns(n.cell) + ["", f"not run: {n.reason}"] + blank) + " |" for n in not_run]
    return "\n".join(lines)
