"""The sweep's PNG: speedup over AR against concurrency (one line per method, the rounds' range as error
bars), and τ against the verify budget (the chain and the trees as a line, `auto` at its mean width)."""

from __future__ import annotations

from pathlib import Path

from dflash_sglang.benchmark.sweep_report import SweepRow
from dflash_sglang.errors import UserError


def _speedups(ax, rows: list[SweepRow]) -> None:
    for method in dict.fromkeys(r.method for r in rows):
        line = sorted((r for r in rows if r.method == method), key=lambda r: r.concurrency)
        xs = [r.concurrency for r in line]
        ys = [r.speedup for r in line]
        err = [[r.speedup - r.speedup_min for r in line], [r.speedup_max - r.speedup for r in line]]
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=method)
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")  # AR
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted({r.concurrency for r in rows}), [str(c) for c in sorted({r.concurrency for r in rows})])
    ax.set_xlabel("concurrency")
    ax.set_ylabel("tok/s over AR's (same minutes)")
    ax.set_title("speedup vs concurrency (median, range over rounds)")
    ax.legend(fontsize=7)


def _tau_by_budget(ax, rows: list[SweepRow], block_size: int) -> None:
    lowest = min(r.concurrency for r in rows)  # τ hardly depends on load under greedy decoding
    at = [r for r in rows if r.concurrency == lowest and r.tau is not None and r.budget is not None]
    fixed = sorted((r for r in at if r.method == "chain" or r.method.startswith("tree")), key=lambda r: r.budget)
    if fixed:
        ax.plot([r.budget for r in fixed], [r.tau for r in fixed], marker="o", label="chain and trees")
        for r in fixed:
            ax.annotate(r.method, (r.budget, r.tau), fontsize=7, textcoords="offset points", xytext=(3, 3))
    for r in at:
        if r.method == "auto":
            ax.scatter([r.budget], [r.tau], marker="*", s=120, color="C3", label="auto (mean width)", zorder=3)
    ax.set_xscale("log", base=2)
    ax.set_xlabel(f"verify tokens per request (block {block_size})")
    ax.set_ylabel("τ (tokens per step)")
    ax.set_title(f"τ vs verify budget, c={lowest}")
    if ax.get_legend_handles_labels()[1]:
        ax.legend(fontsize=7)


def write_sweep_plot(path: Path, rows: list[SweepRow], block_size: int) -> None:
    try:
        import matplotlib
    except ImportError:
        raise UserError("the sweep's plot needs matplotlib (pip install 'dflash-sglang[test]')") from None

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    _speedups(left, rows)
    _tau_by_budget(right, rows, block_size)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
