"""The `sglang.srt.plugins` entry point. SGLang calls `register()` in the launcher and in every
scheduler (and detokenizer) process, before it resolves server arguments.

SGLang's `load_plugins()` logs and swallows exceptions raised here, so `register()` must say in
the log what it did: one line when active, one line when it refuses to patch.
"""

from __future__ import annotations

import logging

from dflash_sglang import __version__
from dflash_sglang.compat import installed_sglang_version, unsupported_reason
from dflash_sglang.log import get_logger

ACTIVE_LINE = "dflash-sglang %s active: plugin loaded on SGLang %s"
REFUSED_LINE = "dflash-sglang %s inactive, patching nothing: %s"

_registered = False


def register() -> None:
    global _registered
    if _registered:  # SGLang may call load_plugins() more than once in a process
        return
    _registered = True
    logger = get_logger()
    sglang_version = installed_sglang_version()
    reason = unsupported_reason(sglang_version)
    if reason is not None:
        logger.log(logging.WARNING, REFUSED_LINE, __version__, reason)
        return
    install_hooks()
    logger.info(ACTIVE_LINE, __version__, sglang_version)


def install_hooks() -> None:
    """Register every HookRegistry hook. Each one only acts on what it is for (DFLASH, CPU)."""
    from dflash_sglang.sglang_adapter import (
        cpu, legacy_args, penalty_order, request_checks, startup, step_stats, takeover, tree_args,
    )

    legacy_args.install()
    tree_args.install()
    takeover.install()
    startup.install()
    request_checks.install()
    step_stats.install()
    penalty_order.install()
    cpu.install()
