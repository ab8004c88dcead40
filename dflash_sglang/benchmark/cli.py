"""`python -m dflash_sglang.benchmark`: run, write the JSON and the PNG, print a markdown table.

    python -m dflash_sglang.benchmark --compare ar,ngram,dflash --concurrency 1,8 --output bench/run.json
    python -m dflash_sglang.benchmark --base-url http://127.0.0.1:30000 --num-prompts 16

Errors in the user's input are one line and exit 2. A method that cannot run is recorded in the report
(with the server log's tail) and the other methods still run; the exit code is 1 only if nothing ran.
"""

from __future__ import annotations

import sys
import urllib.error
from collections.abc import Callable
from pathlib import Path

from dflash_sglang.benchmark.args import BenchConfig, parse_config
from dflash_sglang.benchmark.plot import write_plot
from dflash_sglang.benchmark.report import markdown_table, report_dict, write_json
from dflash_sglang.benchmark.runner import run_all
from dflash_sglang.benchmark.stats import summarize, with_speedups
from dflash_sglang.datasets import load_prompts
from dflash_sglang.errors import UserError
from dflash_sglang.serving import exit_on_sigterm


def _title(config: BenchConfig) -> str:
    model = f"{config.model.parent.name}/{config.model.name}" if config.model else config.base_url
    return (f"{model}: {config.max_new_tokens} new tokens, temperature {config.temperature:g}, "
            f"block {config.block_size}")


def benchmark(config: BenchConfig) -> int:
    prompts = {d: load_prompts(d, config.num_prompts) for d in config.datasets}
    try:
        runs, log_dir = run_all(config, prompts)
    except urllib.error.URLError as err:  # only --base-url's /server_info gets here
        raise UserError(f"--base-url {config.base_url}: expected a running SGLang server, got {err.reason}") from None
    stats = with_speedups([summarize(r) for r in runs])
    write_json(config.output, report_dict(config, stats, runs, log_dir))
    plot_path = config.output.with_suffix(".png")
    write_plot(plot_path, stats, _title(config))
    print(markdown_table(stats))
    print(f"\nreport: {config.output}\nplot: {plot_path}" + (f"\nserver logs: {log_dir}" if log_dir else ""))
    for s in stats:
        if s.error:
            print(f"\n{s.method} c={s.concurrency} {Path(s.dataset).name} could not run:\n{s.error}", file=sys.stderr)
    return 0 if any(s.error is None for s in stats) else 1


def run_main(run: Callable[[], int]) -> int:
    """A benchmark's entry point: SIGTERM stops its servers; a UserError is one line and exit 2."""
    exit_on_sigterm()
    try:
        return run()
    except UserError as err:
        print(f"dflash-sglang: error: {err}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    return run_main(lambda: benchmark(parse_config(argv)))
