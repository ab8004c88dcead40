"""`dflash-sglang doctor`: is this host ready to serve DFLASH through our plugin?

One line per check on stdout. The first real problem ends the run with one specific line
(`dflash-sglang: error: <check>: <problem>`) and a non-zero exit. Cheap checks come first, SGLang's
imports (tens of seconds) last. On a host without an NVIDIA driver the checks run under the CPU
harness, exactly as the server would: without it already in the environment, doctor re-executes itself
with it (the stub driver must be on LD_LIBRARY_PATH when the process starts).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from dflash_sglang import harness
from dflash_sglang.compat import SUPPORTED_SGLANG_VERSIONS, require_supported_sglang
from dflash_sglang.errors import UserError

ENTRY_POINT_GROUP, ENTRY_POINT_NAME = "sglang.srt.plugins", "dflash_sglang"
CUDA_ERROR_NO_DEVICE = 100


def check_sglang_version() -> str:
    return f"SGLang {require_supported_sglang()} (supported: {', '.join(SUPPORTED_SGLANG_VERSIONS)})"


def check_device() -> str:
    if harness.has_nvidia_driver():
        return "NVIDIA driver present: GPU host, the CPU harness is not used"
    env = harness.environment()
    missing = {k: v for k, v in env.items() if os.environ.get(k) != v}
    if missing:
        raise UserError(f"expected {missing} in the environment, got {[os.environ.get(k) for k in missing]}; "
                        'run eval "$(dflash-sglang env)"')
    stub_dir = Path(env["LD_LIBRARY_PATH"].split(":")[0])
    status = ctypes.CDLL("libcuda.so.1").cuDriverGetVersion(ctypes.byref(ctypes.c_int()))
    loaded = _loaded_library("libcuda.so.1")
    if status != CUDA_ERROR_NO_DEVICE or loaded is None or Path(loaded).parent != stub_dir.resolve():
        raise UserError(f"expected the stub libcuda.so.1 from {stub_dir} answering "
                        f"{CUDA_ERROR_NO_DEVICE}, got {loaded} answering {status}")
    import torch

    if torch.cuda.is_available():
        raise UserError("expected no CUDA device without an NVIDIA driver, got torch.cuda.is_available() True")
    return f"CPU host (no NVIDIA driver): stub {loaded} loads, SGLANG_USE_CPU_ENGINE=1"


def _loaded_library(soname: str) -> str | None:
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if line.rstrip().endswith(soname)}
    return min(paths) if paths else None


def check_entry_point() -> str:
    from dflash_sglang.sglang_adapter import plugin

    ours = [ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == ENTRY_POINT_NAME]
    if len(ours) != 1:
        raise UserError(f"expected one {ENTRY_POINT_NAME!r} entry point in {ENTRY_POINT_GROUP!r}, got {len(ours)}; "
                        "reinstall dflash-sglang")
    if ours[0].load() is not plugin.register:
        raise UserError(f"expected {ours[0].value} to be dflash_sglang's register(), got another object")
    return f"{ENTRY_POINT_GROUP}: {ENTRY_POINT_NAME} = {ours[0].value}"


def check_drafter(draft_path: Path, model_path: Path) -> str:
    import torch

    from dflash_sglang.config import DFlashConfig
    from dflash_sglang.drafter.model import Drafter
    from dflash_sglang.drafter.weights import load_state, read_checkpoint

    try:
        config = DFlashConfig.from_dirs(draft_path, model_path)
        with torch.device("meta"):  # shapes only: no memory, no initialisation
            drafter = Drafter(config)
        stored = read_checkpoint(draft_path)
        load_state(drafter, stored, source=repr(str(draft_path)))
    except ValueError as err:
        raise UserError(f"{draft_path} does not fit target {model_path}: {err}") from None
    return (f"{draft_path} fits {model_path}: {config.architecture}, hidden {config.hidden_size}, "
            f"target layers {list(config.target_layer_ids)}, block {config.block_size}, {len(stored)} tensors")


def check_sglang_api() -> str:
    from dflash_sglang.sglang_adapter import cpu, hooked_api

    cpu.install()  # as in a server: on CPU, some SGLang modules import only once our torch ops exist
    found = hooked_api.problems()
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise UserError(found[0] + more)
    return f"{len(hooked_api.HOOKED_API)} attributes we hook or call exist with the parameters we use"


def check_plugin_hooks() -> str:
    from dflash_sglang.sglang_adapter import hooked_api

    ours, unapplied = hooked_api.our_hooks()
    if not ours:
        raise UserError("expected SGLang's load_plugins() to register our hooks, got none (is dflash_sglang "
                        f"excluded by SGLANG_PLUGINS={os.environ.get('SGLANG_PLUGINS', '')!r}?)")
    if unapplied:
        raise UserError(f"expected every hook applied, got {len(unapplied)} not applied: {unapplied}")
    return f"load_plugins() applied our hooks to {len(ours)} SGLang targets"


def check_proven() -> str:
    """Not a pass/fail check: what the tests have shown on this host's kind of device, and what not."""
    from dflash_sglang.proven import summary

    return summary("cuda" if harness.has_nvidia_driver() else "cpu")


def checks(args: argparse.Namespace) -> list[tuple[str, Callable[[], str] | None]]:
    """(name, check) in run order; None marks a check skipped for want of arguments."""
    drafter = None
    if args.draft_path is not None or args.model_path is not None:
        if args.draft_path is None or args.model_path is None:
            raise UserError("doctor: --draft-path and --model-path go together (a drafter is checked against its target)")
        drafter = lambda: check_drafter(args.draft_path, args.model_path)  # noqa: E731
    return [("sglang version", check_sglang_version), ("device", check_device), ("entry point", check_entry_point),
            ("drafter", drafter), ("sglang api", check_sglang_api), ("plugin hooks", check_plugin_hooks),
            ("proven", check_proven)]


def _reexec_under_harness(args: argparse.Namespace) -> None:
    """Restart under the CPU harness when it applies and is not active yet; else return."""
    try:
        env = harness.environment()
    except UserError:
        return  # the version or device check below names the problem
    if all(os.environ.get(k) == v for k, v in env.items()):
        return
    argv = ["doctor"]
    for flag, value in (("--draft-path", args.draft_path), ("--model-path", args.model_path)):
        argv += [flag, str(value)] if value is not None else []
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, "-m", "dflash_sglang.cli", *argv], {**os.environ, **env})


def run(args: argparse.Namespace) -> None:
    _reexec_under_harness(args)
    for name, check in checks(args):
        if check is None:
            print(f"skip {name}: pass --draft-path and --model-path to check a drafter against its target")
            continue
        try:
            detail = check()
        except UserError as err:
            raise UserError(f"{name}: {err}") from None
        print(f"ok   {name}: {detail}", flush=True)
