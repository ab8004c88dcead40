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


def test_a_start_up_interrupted_while_waiting_stops_its_server(tmp_path, monkeypatch):
    """`launch_ready`: SIGTERM (SystemExit under exit_on_sigterm) while waiting for /health stops the server
    just started, which the caller has no handle to yet (a killed alternating benchmark left one behind)."""
    from dflash_sglang import serving

    child = subprocess.Popen(["sleep", "60"], start_new_session=True)
    started = serving.ServerProcess(process=child, port=0, log_path=tmp_path / "server.log")
    monkeypatch.setattr(serving, "launch", lambda *args, **kwargs: started)

    def interrupted(self, timeout: float = 600.0) -> None:
        raise SystemExit(143)

    monkeypatch.setattr(serving.ServerProcess, "wait_ready", interrupted)
    with pytest.raises(SystemExit):
        serving.launch_ready("model", log_path=tmp_path / "server.log")
    assert child.poll() is not None and not serving.group_members(child.pid)
