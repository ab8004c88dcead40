"""The CPU harness: what a host without an NVIDIA driver needs for stock SGLang to run.

Two things, measured on SGLang 0.5.23 (see README "Running on CPU"):
- a stub `libcuda.so.1` on `LD_LIBRARY_PATH`, so the CUDA wheels import (`stub.py`);
- `SGLANG_USE_CPU_ENGINE=1`, so SGLang's CPU paths are chosen;
- `OMP_NUM_THREADS` per scheduler, one core kept free for SGLang's other processes (`threads.py`).
On a host with a real driver the harness is never applied: `environment()` returns nothing.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from dflash_sglang.compat import require_supported_sglang
from dflash_sglang.errors import UserError
from dflash_sglang.harness.driver import has_nvidia_driver
from dflash_sglang.harness.stub import build_stub
from dflash_sglang.harness.tensor_parallel import tp_environment
from dflash_sglang.harness.threads import threads_environment

HARNESS_DIR_ENV = "DFLASH_SGLANG_HARNESS_DIR"
# Server flags SGLang needs on this CPU; used by the demo, the tests and `serve`.
CPU_SERVER_ARGS = (
    "--device", "cpu",
    "--attention-backend", "torch_native",
    "--disable-cuda-graph",
)


def default_dir() -> Path:
    """Per Python environment, because the stub's symbols come from that environment's wheels."""
    configured = os.environ.get(HARNESS_DIR_ENV)
    if configured:
        return Path(configured)
    return Path(sys.prefix) / "share" / "dflash-sglang" / "harness"


def build(directory: Path | None = None) -> Path | None:
    """Build the stub for this environment; None on a host with a real driver."""
    if has_nvidia_driver():
        return None
    require_supported_sglang()
    if directory is None:
        directory = default_dir()
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"cannot create harness directory {directory}: {err.strerror}") from None
    return build_stub(Path(directory)).parent


def environment(directory: Path | None = None, base: dict[str, str] | None = None,
                tp_size: int = 1) -> dict[str, str]:
    """The variables to add to `base` (default: os.environ) for SGLang to run here with `tp_size` ranks
    (tensor_parallel.py); {} on a GPU host."""
    lib_dir = build(directory)
    if lib_dir is None:
        return {}
    base = os.environ if base is None else base
    old = base.get("LD_LIBRARY_PATH", "")
    parts = [str(lib_dir)] + [p for p in old.split(":") if p and p != str(lib_dir)]
    return {"SGLANG_USE_CPU_ENGINE": "1", "LD_LIBRARY_PATH": ":".join(parts), **tp_environment(tp_size, base),
            **threads_environment(tp_size, base)}


def export_lines(directory: Path | None = None, tp_size: int = 1) -> list[str]:
    """Shell `export` lines; empty on a GPU host. LD_LIBRARY_PATH keeps the caller's value at eval time."""
    lib_dir = build(directory)
    if lib_dir is None:
        return []
    quoted = shlex.quote(str(lib_dir))
    return [
        "export SGLANG_USE_CPU_ENGINE=1",
        f'export LD_LIBRARY_PATH={quoted}"${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}"',
        *(f"export {name}={shlex.quote(value)}"
          for name, value in {**tp_environment(tp_size), **threads_environment(tp_size)}.items()),
    ]
