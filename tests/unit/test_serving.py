"""The server launcher stops a whole process group by PID (SGLang spawns schedulers as children)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from dflash_sglang.errors import UserError
from dflash_sglang.serving import group_members, launch, stop_process_group

TREE = "import subprocess, time; subprocess.Popen(['sleep', '300']); time.sleep(300)"


def test_stop_kills_the_leader_and_its_children():
    process = subprocess.Popen([sys.executable, "-c", TREE], start_new_session=True)
    deadline = time.monotonic() + 30
    while len(group_members(process.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(group_members(process.pid)) == 2  # leader + child sleeping
    stop_process_group(process, grace=5)
    assert group_members(process.pid) == []
    assert process.returncode is not None


def test_launch_refuses_a_missing_model_path(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        launch(tmp_path / "missing", log_path=tmp_path / "log")


# A stand-in for SGLang's launcher: the first start logs uvicorn's bind error and hangs (as SGLang does when
# its HTTP port was taken); later starts answer /health on the port they were given.
FLAKY_SERVER = """
import http.server, pathlib, sys, time
port, marker = int(sys.argv[sys.argv.index("--port") + 1]), pathlib.Path(sys.argv[1])
if not marker.exists():
    marker.write_text("taken")
    print(f"ERROR:    [Errno 98] error while attempting to bind on address ('127.0.0.1', {port}): "
          "address already in use", flush=True)
    time.sleep(300)
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers()
http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
"""


@pytest.mark.parametrize("retry", [True, False])
def test_a_port_taken_before_the_bind_starts_the_server_again_on_a_new_port(tmp_path, monkeypatch, retry):
    import dflash_sglang.serving as serving

    monkeypatch.setattr(serving, "PORT_RETRIES", 2 if retry else 0)
    port = serving.free_port()
    argv = [sys.executable, "-c", FLAKY_SERVER, str(tmp_path / "marker"), "--port", str(port)]
    server = serving.ServerProcess(process=serving._spawn(argv, tmp_path / "log", None), port=port,
                                   log_path=tmp_path / "log", argv=argv)
    try:
        if not retry:  # the fix switched off: a clear error, not a 10-minute wait
            with pytest.raises(RuntimeError, match=f"in all 1 attempts \\(the last: port {port}\\)"):
                server.wait_ready(timeout=60)
            return
        first = server.pid
        server.wait_ready(timeout=60)
        assert server.port != port and server.pid != first and group_members(first) == []
        assert argv[-1] == str(server.port)
    finally:
        server.stop()
