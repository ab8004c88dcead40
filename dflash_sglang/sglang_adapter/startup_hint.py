"""A start-up failure of our worker names the way back: `DFLASH_SGLANG_IMPL=builtin`.

Our worker has never run on most devices (see `dflash_sglang/proven.py`). When one of its start-up
stages fails there, the error goes on exactly as it was (type, message, traceback), with one note
added and one log line: which stage failed, on which device, and that SGLang's builtin DFLASH worker
serves the same launch command with the environment variable set.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from dflash_sglang.log import get_logger
from dflash_sglang.sglang_adapter.takeover import IMPL_ENV

WAY_BACK = f"{IMPL_ENV}=builtin"


def hint(stage: str, device: str | None, err: BaseException) -> str:
    where = f" on {device}" if device else ""
    return (f"dflash-sglang: our DFLASH worker failed at start-up ({stage}{where}): {type(err).__name__}: {err}. "
            f"Set {WAY_BACK} to serve DFLASH with SGLang's builtin worker instead.")


def startup_stage(stage: str) -> Callable:
    """Decorate a worker start-up method: any exception is re-raised with the hint added."""

    def decorate(method: Callable) -> Callable:
        @functools.wraps(method)
        def run(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except Exception as err:  # re-raised below: annotated, never swallowed
                message = hint(stage, _device(self, args, kwargs), err)
                err.add_note(message)
                get_logger().error(message)
                raise

        return run

    return decorate


def _device(worker, args: tuple, kwargs: dict) -> str | None:
    """The worker's device; during construction, its target worker's (set before ours)."""
    if getattr(worker, "device", None) is not None:
        return str(worker.device)
    target = kwargs.get("target_worker", args[-1] if args else None)
    device = getattr(target, "device", None)
    return None if device is None else str(device)
