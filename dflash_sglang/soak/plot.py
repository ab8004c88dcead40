"""The soak's PNG: the server's RSS over time (the growth window shaded) and p50/p99 latency per minute."""

from __future__ import annotations

from pathlib import Path

from dflash_sglang.errors import UserError


def write_plot(path: Path, report: dict, window_start_s: float) -> None:
    """window_start_s: where the RSS growth window starts, in seconds of traffic."""
    try:
        import matplotlib
    except ImportError:
        raise UserError("the soak's plot needs matplotlib (pip install 'dflash-sglang[test]')") from None

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    fig, (ax_rss, ax_lat) = plt.subplots(1, 2, figsize=(13, 4.2))
    samples = report["rss"]["samples"]
    start, end = report["timeline_s"]["traffic_start"], report["timeline_s"]["traffic_end"]
    minutes = [(t - start) / 60 for t, _, _ in samples]
    ax_rss.plot(minutes, [mb for _, mb, _ in samples], color="C1", label="RSS")
    ax_rss.plot(minutes, [mb for _, _, mb in samples], color="C0", label="anonymous RSS (the growth criterion)")
    ax_rss.axvspan(window_start_s / 60, (end - start) / 60, color="C0", alpha=0.08,
                   label=f"growth window: {report['rss']['growth']:+.1%}")
    ax_rss.axvline((end - start) / 60, color="grey", linestyle=":", label="traffic ends (idle after)")
    ax_rss.set_xlabel("minutes of traffic")
    ax_rss.set_ylabel("MB")
    ax_rss.set_title("server memory (launcher + scheduler + detokenizer)")
    ax_rss.legend(fontsize=8)
    rows = report["latency_per_minute"]
    ax_lat.plot([r["minute"] + 0.5 for r in rows], [r["p50_s"] for r in rows], marker="o", label="p50")
    ax_lat.plot([r["minute"] + 0.5 for r in rows], [r["p99_s"] for r in rows], marker="o", label="p99")
    ax_lat.set_xlabel("minute of traffic (by request start)")
    ax_lat.set_ylabel("end-to-end latency (s)")
    ax_lat.set_title("latency of completed requests")
    ax_lat.legend(fontsize=8)
    greedy, errors = report["greedy"], report["errors"]
    fig.suptitle(f"soak, c={report['settings']['concurrency']}, {report['settings']['minutes']:g} min: "
                 f"{report['requests']['total']} requests, {sum(errors['unexpected'].values())} unexpected errors, "
                 f"{greedy['mismatches']}/{greedy['checked']} greedy mismatches, "
                 f"idle token usage {report['idle']['token_usage']:g}", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
