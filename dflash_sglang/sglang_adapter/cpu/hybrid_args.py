"""Server-argument decisions for hybrid (Mamba / Gated DeltaNet) targets on CPU.

- `--mamba-radix-cache-strategy extra_buffer` (and `auto`, which picks it when overlap is on) asserts
  platform support for state snapshots (`mamba_hook._platform_supports_mamba_cache_extra_buffer`: cuda, musa,
  npu, hip, xpu). The snapshots are row copies, which `mamba_state_patches` does in torch here: accepted.
- `no_buffer` asserts that the overlap scheduler is off (`validate_mamba_no_buffer`), and fires before
  anything else would turn it off: on CPU we declare `--disable-overlap-schedule` for it, as SGLang's own
  `auto` resolution does when it picks no_buffer.
- The conv state defaults to bfloat16 (`SGLANG_MAMBA_CONV_DTYPE`). On this CPU that is both slower than
  float32 (no AMX) and inexact: a float32 target's greedy tokens then differ from transformers' (measured:
  7/8 prompts identical). Unless the variable is set, the conv state is float32 on CPU.
"""

from __future__ import annotations

import dataclasses
import os

from dflash_sglang.log import log_once

PLATFORM_EXTRA_BUFFER = "sglang.srt.arg_groups.mamba_hook._platform_supports_mamba_cache_extra_buffer"
HANDLE_MAMBA_RADIX_CACHE = "sglang.srt.arg_groups.model_hook.handle_mamba_radix_cache"
MAMBA_STATE_DTYPE = "sglang.srt.configs.mamba_utils.mamba2_state_dtype"
CONV_DTYPE_ENV = "SGLANG_MAMBA_CONV_DTYPE"


def around_platform_extra_buffer(original) -> bool:
    if original():
        return True
    log_once("cpu-extra-buffer", "CPU fallback: Mamba extra_buffer accepted (its state snapshots run in torch)")
    return True


def around_handle_mamba_radix_cache(original, server_args, hf_config, *args, **kwargs):
    from sglang.srt.arg_groups.model_override_base import resolving_view
    from sglang.srt.arg_groups.overrides import declare_resolution

    view = resolving_view(server_args)
    if view.device == "cpu" and view.mamba_radix_cache_strategy == "no_buffer" and not view.disable_overlap_schedule:
        declare_resolution(server_args, "dflash_sglang_cpu_no_buffer", disable_overlap_schedule=True)
        log_once("cpu-no-buffer-overlap", "CPU: --mamba-radix-cache-strategy no_buffer needs the overlap scheduler "
                 "off; passing --disable-overlap-schedule")
    return original(server_args, hf_config, *args, **kwargs)


def after_mamba_state_dtype(result, *args, **kwargs):
    """float32 conv state unless SGLANG_MAMBA_CONV_DTYPE says otherwise."""
    import torch

    if os.environ.get(CONV_DTYPE_ENV) or result.conv == torch.float32:
        return result
    log_once("cpu-conv-dtype", "CPU: Mamba conv state in float32 (%s unset; SGLang's default bfloat16 is "
             "slower here and rounds the state)", CONV_DTYPE_ENV)
    return dataclasses.replace(result, conv=torch.float32)


def install() -> None:
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    HookRegistry.register(PLATFORM_EXTRA_BUFFER, around_platform_extra_buffer, HookType.AROUND)
    HookRegistry.register(HANDLE_MAMBA_RADIX_CACHE, around_handle_mamba_radix_cache, HookType.AROUND)
    HookRegistry.register(MAMBA_STATE_DTYPE, after_mamba_state_dtype, HookType.AFTER)
