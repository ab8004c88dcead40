"""`dflash-sglang serve` without --dry-run becomes SGLang's launcher: same process, its output, its exit code.

A flag SGLang does not know makes the launcher exit 2 after parsing, which costs one SGLang import instead
of a whole server start-up; a legacy spelling in the same command shows our plugin ran in that launcher.
"""

from __future__ import annotations

from helpers.cli import run_cli


def test_serve_execs_the_launcher_and_exits_with_its_code():
    result = run_cli("serve", "--preset", "tiny", "--", "--mamba-scheduler-strategy", "auto", "--no-such-flag",
                     timeout=600)
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.startswith("dflash-sglang: exec "), result.stderr[:500]
    assert "-m sglang.launch_server --model-path" in result.stderr.splitlines()[0]
    assert "sglang serve: error: unrecognized arguments: --no-such-flag" in result.stderr
    assert "SGLang 0.5.23 calls it --mamba-radix-cache-strategy: translated" in result.stderr
