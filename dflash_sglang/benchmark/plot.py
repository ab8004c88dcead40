"""The benchmark's PNG: per dataset, output tok/s by concurrency (speedup over AR on each bar), the
acceptance-length histogram, and acceptance rate per block position."""

from __future__ import annotations

from pathlib import Path

from dflash_sglang.benchmark.stats import RunStats
from dflash_sglang.errors import UserError


def _throughput(ax, rows: list[RunStats], colors: dict[str, str], concurrencies: list[int]) -> None:
    methods = list(colors)
    width = 0.8 / len(methods)
    for m, method in enumerate(methods):
        for c, concurrency in enumerate(concurrencies):
            s = next((r for r in rows if r.method == method and r.concurrency == concurrency), None)
            if s is None or s.output_tok_s is None:
                continue
            bar = ax.bar(c + m * width, s.output_tok_s, width, color=colors[method], label=method if c == 0 else None)
            if s.speedup is not None:
                ax.bar_label(bar, [f"{s.speedup:.2f}×"], fontsize=7)
    ax.set_xticks([c + 0.4 - width / 2 for c in range(len(concurrencies))], [f"c={c}" for c in concurrencies])
    ax.set_ylabel("output tok/s")
    ax.set_title("throughput (label: speedup vs AR)")
    if ax.get_legend_handles_labels()[1]:
        ax.legend(fontsize=7)


def _acceptance(ax_hist, ax_pos, rows: list[RunStats], colors: dict[str, str]) -> None:
    """Speculative methods at their lowest concurrency (τ hardly moves with load under greedy decoding)."""
    shown = {}
    for s in sorted(rows, key=lambda r: r.concurrency):
        if s.tau_histogram and s.method not in shown:
            shown[s.method] = s
    for m, (method, s) in enumerate(shown.items()):
        width = 0.8 / len(shown)
        lengths = range(1, len(s.tau_histogram) + 1)
        ax_hist.bar([x + (m - (len(shown) - 1) / 2) * width for x in lengths], s.tau_histogram, width,
                    color=colors[method], label=f"{method} c={s.concurrency} τ={s.tau:.2f}")
        if s.position_acceptance:
            ax_pos.plot(range(1, len(s.position_acceptance) + 1), s.position_acceptance, marker="o",
                        color=colors[method], label=method)
    ax_hist.set_xlabel("acceptance length (tokens per verify step)")
    ax_hist.set_ylabel("fraction of steps")
    ax_hist.set_title("acceptance length histogram")
    ax_pos.set_xlabel("block position")
    ax_pos.set_ylabel("acceptance rate")
    ax_pos.set_ylim(0, 1.05)
    ax_pos.set_title("acceptance per block position")
    if shown:
        longest = max(len(s.tau_histogram) for s in shown.values())
        ax_hist.set_xticks(range(1, longest + 1))
        ax_pos.set_xticks(range(1, longest))
        ax_hist.legend(fontsize=7)
        ax_pos.legend(fontsize=7)


def write_plot(path: Path, stats: list[RunStats], title: str) -> None:
    try:
        import matplotlib
    except ImportError:
        raise UserError("the benchmark's plot needs matplotlib (pip install 'dflash-sglang[test]')") from None

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(s.dataset for s in stats))
    colors = {method: f"C{i}" for i, method in enumerate(dict.fromkeys(s.method for s in stats))}
    concurrencies = sorted({s.concurrency for s in stats})
    fig, axes = plt.subplots(len(datasets), 3, figsize=(15, 4.2 * len(datasets)), squeeze=False)
    for row, dataset in zip(axes, datasets):
        rows = [s for s in stats if s.dataset == dataset]
        _throughput(row[0], rows, colors, concurrencies)
        _acceptance(row[1], row[2], rows, colors)
        row[0].set_title(f"{Path(dataset).name}: " + row[0].get_title())
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
