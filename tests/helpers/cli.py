"""Run the `dflash-sglang` console script as a user would, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CLI = Path(sys.executable).parent / "dflash-sglang"


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120,
            unset: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in {**os.environ, **(env or {})}.items() if k not in unset}
    return subprocess.run([str(CLI), *args], capture_output=True, text=True, env=full_env, timeout=timeout)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """Non-zero exit, exactly one line on stderr naming the problem, and no traceback."""
    assert result.returncode != 0, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("dflash-sglang: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
