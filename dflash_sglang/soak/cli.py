"""`python -m dflash_sglang.soak [--minutes 30]`: run the soak, write the JSON report and its PNG, print the
summary; exit 1 if the soak failed (report.failures), 2 for a usage error."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dflash_sglang.errors import UserError
from dflash_sglang.serving import exit_on_sigterm
from dflash_sglang.soak.plot import write_plot
from dflash_sglang.soak.report import rss_window
from dflash_sglang.soak.run import SoakConfig, run_soak


def parse_config(argv: list[str] | None = None) -> SoakConfig:
    parser = argparse.ArgumentParser(prog="python -m dflash_sglang.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=30.0, help="minutes of traffic (default 30)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--greedy-pool", type=int, default=48, help="distinct greedy requests AR answers beforehand")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=Path("build/soak/report.json"), help="the PNG goes next to it")
    args = parser.parse_args(argv)
    try:
        return SoakConfig(minutes=args.minutes, concurrency=args.concurrency, greedy_pool=args.greedy_pool,
                          seed=args.seed, output=args.output, log_dir=args.output.parent / "logs")
    except ValueError as err:
        raise UserError(str(err)) from None


def write_outputs(config: SoakConfig, report: dict) -> Path:
    """The JSON report and the PNG next to it; returns the PNG's path."""
    config.output.parent.mkdir(parents=True, exist_ok=True)
    config.output.write_text(json.dumps(report, indent=1) + "\n")
    png = config.output.with_suffix(".png")
    write_plot(png, report, rss_window(config.minutes)[0])
    return png


def summary(report: dict) -> str:
    rows = report["latency_per_minute"]
    return "\n".join([
        f"requests: {report['requests']['total']} {report['requests']['by_kind']}",
        f"expected errors: {report['errors']['expected']}",
        f"unexpected errors: {report['errors']['unexpected']}",
        f"greedy: {report['greedy']['mismatches']} mismatches of {report['greedy']['checked']} checked against AR",
        f"idle: token usage {report['idle']['token_usage']:g}, healthy {report['idle']['healthy']}, "
        f"leak reports {len(report['idle']['leak_lines'])}",
        f"anonymous RSS: {report['rss']['start_mb']} MB -> {report['rss']['end_mb']} MB ({report['rss']['growth']:+.2%}, "
        f"{report['rss']['window']})",
        "latency p50/p99 per minute (s): " + ", ".join(f"{r['p50_s']:.2f}/{r['p99_s']:.2f}" for r in rows),
        "PASS" if not report["failures"] else "FAIL:\n  " + "\n  ".join(report["failures"]),
    ])


def main(argv: list[str] | None = None) -> int:
    exit_on_sigterm()
    try:
        config = parse_config(argv)
        report = run_soak(config)
        png = write_outputs(config, report)
    except UserError as err:
        print(f"dflash-sglang: error: {err}", file=sys.stderr)
        return 2
    except (RuntimeError, TimeoutError) as err:  # a server did not start, or AR could not answer the pool
        print(f"dflash-sglang: soak could not run: {err}", file=sys.stderr)
        return 1
    print(summary(report))
    print(f"report: {config.output}\nplot: {png}")
    return 0 if not report["failures"] else 1
