"""The sweep's numbers: per method and concurrency, the median over rounds of tok/s over AR's tok/s in the
same minutes, with the range, τ, auto's verify widths, and the issue's checks for `auto`."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

FIXED = ("chain", "tree16", "tree32", "tree64")  # our fixed verify budgets; `auto` is held against the best


@dataclass(frozen=True)
class SweepCell:
    """One round of one method at one concurrency, next to AR's run of the same round."""

    method: str
    concurrency: int
    round: int
    tok_s: float
    ar_tok_s: float
    tau: float | None
    widths: dict[int, int] = field(default_factory=dict)  # auto: verify width -> steps
    mismatches: int = 0  # requests whose greedy tokens differ from AR's

    @property
    def ratio(self) -> float:
        return self.tok_s / self.ar_tok_s

    @staticmethod
    def make_dummy(method: str = "chain", concurrency: int = 1, round_: int = 0, ratio: float = 1.5,
                   tau: float | None = 2.0, widths: dict[int, int] | None = None) -> "SweepCell":
        return SweepCell(method, concurrency, round_, 100.0 * ratio, 100.0, tau, widths or {})


@dataclass(frozen=True)
class SweepRow:
    method: str
    concurrency: int
    rounds: int
    speedup: float  # median over rounds of tok/s / AR tok/s
    speedup_min: float
    speedup_max: float
    tok_s: float  # median
    ar_tok_s: float  # median
    tau: float | None  # median
    budget: float | None  # verify tokens per request: fixed, or auto's mean width
    widths: dict[int, int]  # auto: verify width -> steps, all rounds
    mismatches: int


def budget_of(method: str, block_size: int, widths: dict[int, int]) -> float | None:
    if method == "chain":
        return float(block_size)
    if method.startswith("tree"):
        return float(method[len("tree"):])
    if widths:
        return sum(w * n for w, n in widths.items()) / sum(widths.values())
    return None


def _row(cells: list[SweepCell], block_size: int) -> SweepRow:
    ratios = [c.ratio for c in cells]
    taus = [c.tau for c in cells if c.tau is not None]
    widths: dict[int, int] = {}
    for c in cells:
        for w, n in c.widths.items():
            widths[w] = widths.get(w, 0) + n
    first = cells[0]
    return SweepRow(first.method, first.concurrency, len(cells), statistics.median(ratios), min(ratios), max(ratios),
                    statistics.median(c.tok_s for c in cells), statistics.median(c.ar_tok_s for c in cells),
                    statistics.median(taus) if taus else None, budget_of(first.method, block_size, widths),
                    dict(sorted(widths.items())), sum(c.mismatches for c in cells))


def summarize_cells(cells: list[SweepCell], block_size: int) -> list[SweepRow]:
    groups: dict[tuple[str, int], list[SweepCell]] = {}
    for c in cells:
        groups.setdefault((c.method, c.concurrency), []).append(c)
    return [_row(group, block_size) for group in groups.values()]


def auto_checks(rows: list[SweepRow]) -> dict[int, dict[str, bool | None]]:
    """Per concurrency, issue 12's targets for `auto` (None where the other side was not measured):
    >= AR, >= 0.95x the best fixed budget, >= the builtin, and >= 1.2x the builtin at c >= 8."""
    by = {(r.method, r.concurrency): r for r in rows}
    out = {}
    for c in sorted({r.concurrency for r in rows if r.method == "auto"}):
        auto = by[("auto", c)].speedup
        fixed = [by[(m, c)].speedup for m in FIXED if (m, c) in by]
        builtin = by[("builtin", c)].speedup if ("builtin", c) in by else None
        out[c] = {"ge_ar": auto >= 1.0,
                  "ge_0.95_best_fixed": auto >= 0.95 * max(fixed) if fixed else None,
                  "ge_builtin": auto >= builtin if builtin is not None else None,
                  "ge_1.2_builtin_at_c8+": (auto >= 1.2 * builtin) if builtin is not None and c >= 8 else None}
    return out


def _widths(widths: dict[int, int]) -> str:
    total = sum(widths.values())
    return " ".join(f"{w}:{100 * n / total:.0f}%" for w, n in widths.items()) if total else ""


def markdown_table(rows: list[SweepRow]) -> str:
    lines = ["| c | method | speedup vs AR (median, range) | tok/s | AR tok/s | τ | budget | auto widths | ≠AR |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: r.concurrency):
        tau = "–" if r.tau is None else f"{r.tau:.2f}"
        budget = "–" if r.budget is None else f"{r.budget:.1f}"
        lines.append(f"| {r.concurrency} | {r.method} | {r.speedup:.2f}× ({r.speedup_min:.2f}–{r.speedup_max:.2f}) | "
                     f"{r.tok_s:.1f} | {r.ar_tok_s:.1f} | {tau} | {budget} | {_widths(r.widths)} | {r.mismatches} |")
    return "\n".join(lines)
