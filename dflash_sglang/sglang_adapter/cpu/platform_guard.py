"""Let SGLang's DFLASH argument handling accept `--device cpu`, with `torch_native` as draft attention.

`speculative_hook._handle_dflash` refuses every in-tree device but cuda/npu/xpu. For an out-of-tree
platform it asks the platform instead, so during that one call we show it a proxy of the real CPU
platform that answers as an out-of-tree platform supporting DFLASH. Everything else SGLang checks in
`_handle_dflash` (draft path, block size, pp_size, ...) still runs unchanged.

A second, silent guard: `DRAFT_ATTENTION_BACKEND_CHOICES` lacks `torch_native`, so the draft worker
would fall back to flashinfer, which cannot run here. SGLang exposes `add_draft_attention_backend_choices`
for platforms to extend that list.
"""

from __future__ import annotations

import importlib

from dflash_sglang.log import log_once

HANDLE_DFLASH = "sglang.srt.arg_groups.speculative_hook._handle_dflash"
CPU_DRAFT_BACKEND = "torch_native"


class CpuDflashPlatform:
    """The real platform, except that it accepts DFLASH and a CPU-capable draft attention backend."""

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name):
        return getattr(self._real, name)

    def is_out_of_tree(self) -> bool:
        return True

    def supports_speculative_algorithm(self, algorithm: str) -> bool:
        return algorithm == "DFLASH" or self._real.supports_speculative_algorithm(algorithm)

    def supports_speculative_draft_attention_backend(self, algorithm: str, backend: str) -> bool:
        # Only torch_native runs on CPU: a GPU backend from a model card (fa3, fa4, ...) falls back to it.
        return backend == CPU_DRAFT_BACKEND

    def get_default_speculative_draft_attention_backend(self, algorithm: str) -> str:
        return CPU_DRAFT_BACKEND


def around_handle_dflash(original, server_args, *args, **kwargs):
    """HookRegistry AROUND hook: run `_handle_dflash` with the proxy platform, only for `--device cpu`."""
    from sglang.srt.arg_groups.model_override_base import resolving_view

    if resolving_view(server_args).device != "cpu":  # the view `_handle_dflash` itself reads
        return original(server_args, *args, **kwargs)
    module = importlib.import_module(HANDLE_DFLASH.rsplit(".", 1)[0])
    real = module.current_platform
    module.current_platform = CpuDflashPlatform(real)
    log_once("cpu-dflash-guard", "CPU fallback: DFLASH argument checks accept --device cpu")
    try:
        return original(server_args, *args, **kwargs)
    finally:
        module.current_platform = real


def allow_torch_native_draft_backend() -> None:
    from sglang.srt.arg_groups.choices import (
        DRAFT_ATTENTION_BACKEND_CHOICES,
        add_draft_attention_backend_choices,
    )

    if CPU_DRAFT_BACKEND in DRAFT_ATTENTION_BACKEND_CHOICES:
        return
    add_draft_attention_backend_choices([CPU_DRAFT_BACKEND])
    log_once("cpu-draft-backend", "CPU fallback: '%s' added to SGLang's draft attention backends",
             CPU_DRAFT_BACKEND)


def install() -> None:
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    allow_torch_native_draft_backend()
    HookRegistry.register(HANDLE_DFLASH, around_handle_dflash, HookType.AROUND)
