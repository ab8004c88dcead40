"""`--speculative-algorithm DFLASH` creates our worker, unless DFLASH_SGLANG_IMPL=builtin.

SGLang reserves the name DFLASH for its builtin, so we keep the enum member (and with it every
DFLASH special case in the scheduler, KV budget and graph runners) and replace only the worker
class it creates.
"""

from __future__ import annotations

import os

from dflash_sglang.log import log_once

IMPL_ENV = "DFLASH_SGLANG_IMPL"
IMPLS = ("dflash_sglang", "builtin")
CREATE_WORKER = "sglang.srt.speculative.spec_info.SpeculativeAlgorithm.create_worker"


def selected_impl() -> str:
    impl = os.environ.get(IMPL_ENV, IMPLS[0]).strip() or IMPLS[0]
    if impl not in IMPLS:
        raise ValueError(f"{IMPL_ENV}: expected one of {', '.join(IMPLS)}, got {impl!r}")
    return impl


def create_worker(original, self, server_args):
    if not self.is_dflash():
        return original(self, server_args)
    if selected_impl() == "builtin":
        log_once("impl-builtin", "%s=builtin: DFLASH runs SGLang's builtin worker", IMPL_ENV)
        return original(self, server_args)
    from dflash_sglang.sglang_adapter.worker import DFlashWorker

    return DFlashWorker


def install() -> None:
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    HookRegistry.register(CREATE_WORKER, create_worker, HookType.AROUND)
