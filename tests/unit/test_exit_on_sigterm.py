"""`exit_on_sigterm`: a SIGTERM to a benchmark or soak runs its `finally` blocks, which stop its servers.
Without it (the guard case) Python ends at once and the `finally` block never runs."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

SCRIPT = """
import sys, time
from dflash_sglang.serving import exit_on_sigterm
if sys.argv[2] == "on":
    exit_on_sigterm()
try:
    print("ready", flush=True)
    time.sleep(60)
finally:
    open(sys.argv[1], "w").write("servers stopped")
"""


@pytest.mark.parametrize("handler, cleaned_up", [("on", True), ("off", False)])
def test_sigterm_runs_the_finally_blocks(tmp_path, handler, cleaned_up):
    marker = tmp_path / "marker"
    child = subprocess.Popen([sys.executable, "-c", SCRIPT, str(marker), handler], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        child.send_signal(signal.SIGTERM)
        code = child.wait(timeout=30)
    finally:
        child.kill()
    time.sleep(0.1)
    assert marker.exists() == cleaned_up
    assert code == (128 + signal.SIGTERM if cleaned_up else -signal.SIGTERM)
