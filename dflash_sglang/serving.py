"""Start and stop a real `python -m sglang.launch_server` as a child process group.

Used by `make demo`, the e2e tests and the benchmark. It launches SGLang as a subprocess, so this
module never imports sglang. Every server started here is stopped by its PID (process group).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from dflash_sglang import harness
from dflash_sglang.errors import UserError
from dflash_sglang.harness.tensor_parallel import tp_size_of
from dflash_sglang.log import get_logger

CPU_MEMORY_ARGS = ("--mem-fraction-static", "0.2", "--max-total-tokens", "8192")
# An idle scheduler otherwise spins a whole core, and CPU hosts have few. The benchmark starts its
# servers without it: one AR run with it showed ~1 s token gaps (its poll timeout) mid-generation.
IDLE_SLEEP_ARGS = ("--sleep-on-idle",)


PORT_TAKEN = "error while attempting to bind on address"  # uvicorn's errno-98 line in SGLang's log
PORT_RETRIES = 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_args(sleep_on_idle: bool = True) -> list[str]:
    """Flags SGLang needs on a host without a driver; [] on a GPU host."""
    if harness.has_nvidia_driver():
        return []
    return [*harness.CPU_SERVER_ARGS, *CPU_MEMORY_ARGS, *(IDLE_SLEEP_ARGS if sleep_on_idle else ())]


@dataclass
class ServerProcess:
    """A running SGLang server: its process, port and log file."""

    process: subprocess.Popen
    port: int
    log_path: Path
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] | None = None  # the child's whole environment, for a relaunch

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, timeout: float = 600.0) -> None:
        """Block until /health answers 200; raise with the log's tail if the server dies or times out. A port
        taken between `free_port` and the server's bind (another server starting alongside picks its own
        ports) makes SGLang log the bind error and hang in shutdown: the server is started again on a new port,
        up to PORT_RETRIES times."""
        deadline, retries = time.monotonic() + timeout, PORT_RETRIES
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.tail()}")
            if PORT_TAKEN in self.log_text():
                if retries == 0 or not self.argv:
                    raise RuntimeError(f"HTTP port taken before the server bound it, in all {PORT_RETRIES + 1} "
                                       f"attempts (the last: port {self.port}):\n{self.tail()}")
                retries -= 1
                self._relaunch()
                continue
            try:
                with urllib.request.urlopen(self.base_url + "/health", timeout=5) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(1.0)
        raise TimeoutError(f"server not ready after {timeout:.0f} s:\n{self.tail()}")

    def _relaunch(self) -> None:
        self.stop()
        port = free_port()
        self.argv[self.argv.index("--port") + 1] = str(port)
        get_logger().warning("port %d was taken before the server bound it; starting it again on port %d",
                             self.port, port)
        self.process, self.port = _spawn(self.argv, self.log_path, self.env), port

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def stop(self, grace: float = 30.0) -> None:
        """SIGTERM the whole process group (SGLang spawns schedulers), then SIGKILL what is left."""
        stop_process_group(self.process, grace)


def exit_on_sigterm() -> None:
    """For the long-running commands (benchmarks, soak): SIGTERM raises SystemExit, so their `finally`
    blocks stop every server they started. Python's default SIGTERM ends the process without them, and
    `pkill` of a benchmark left its servers running."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def stop_process_group(process: subprocess.Popen, grace: float = 30.0) -> None:
    pgid = process.pid  # started with start_new_session=True, so pgid == pid
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _group_alive(pgid):
            process.poll()
            time.sleep(0.2)
        if not _group_alive(pgid):
            break
    process.poll()


def live_processes() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, process group) of every live (non-zombie) process, read from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it ended while we read
            continue
        # The command name is in parentheses and may hold spaces: split after the last ')'.
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z":
            found[int(entry.name)] = (int(fields[1]), int(fields[2]))
    return found


def group_members(pgid: int) -> list[int]:
    """Live processes of a process group."""
    return [pid for pid, (_, pgrp) in live_processes().items() if pgrp == pgid]


def _group_alive(pgid: int) -> bool:
    return bool(group_members(pgid))


def launch(
    model_path: str | Path,
    extra_args: list[str] | tuple[str, ...] = (),
    *,
    log_path: Path,
    port: int | None = None,
    env: dict[str, str] | None = None,
    cpu: bool = True,
    sleep_on_idle: bool = True,
) -> ServerProcess:
    """Start SGLang (not waiting for readiness). `cpu` adds the harness env and CPU flags on a GPU-less host."""
    if not Path(model_path).exists():
        raise UserError(f"model path {model_path} does not exist")
    port = port or free_port()
    child_env = dict(os.environ if env is None else env)
    argv = [sys.executable, "-m", "sglang.launch_server", "--model-path", str(model_path),
            "--host", "127.0.0.1", "--port", str(port)]
    if cpu:
        child_env.update(harness.environment(base=child_env, tp_size=tp_size_of(extra_args)))
        argv += cpu_args(sleep_on_idle)
    argv += list(extra_args)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    return ServerProcess(process=_spawn(argv, log_path, child_env), port=port, log_path=log_path, argv=argv,
                         env=child_env)


def _spawn(argv: list[str], log_path: Path, env: dict[str, str] | None) -> subprocess.Popen:
    with open(log_path, "wb") as log:  # a relaunch starts the log afresh: the bind error is the old one's
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                stdin=subprocess.DEVNULL)


def launch_ready(model_path: str | Path, extra_args: list[str] | tuple[str, ...] = (), *, log_path: Path,
                 timeout: float = 600.0, **kwargs) -> ServerProcess:
    """`launch`, then wait for /health. A start-up that fails or is interrupted (SIGTERM under
    `exit_on_sigterm`, Ctrl-C) stops the server it started: the caller has no handle to stop yet."""
    server = launch(model_path, extra_args, log_path=log_path, **kwargs)
    try:
        server.wait_ready(timeout)
    except BaseException:
        server.stop()
        raise
    return server
