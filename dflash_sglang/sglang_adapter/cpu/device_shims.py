"""Two torch calls that reach the CUDA runtime on SGLang's CPU engine, made harmless there.

- `torch.get_device_module()` without a device returns `torch.cuda` whatever the engine; SGLang's
  `qwen3_next` builds its gated norms with `device=torch.get_device_module().current_device()`, which then
  initialises CUDA: "Found no NVIDIA driver". On the CPU engine the current device module is `torch.cpu`.
- `Tensor.pin_memory()` needs the CUDA driver too; the scheduler pins the extra_buffer track mask
  (`ScheduleBatch.prepare_for_decode`). Pinning only speeds up host-to-GPU copies, so without a GPU the
  tensor itself is exact.
`install()` (only on the CPU engine without CUDA) hooks each one only if it fails here.
"""

from __future__ import annotations

import torch

from dflash_sglang.log import log_once

GET_DEVICE_MODULE = "torch.get_device_module"
PIN_MEMORY = "torch.Tensor.pin_memory"


def pin_memory_fails() -> bool:
    try:
        torch._C.TensorBase.pin_memory(torch.zeros(1))
    except RuntimeError:
        return True
    return False


def around_get_device_module(original, device=None):
    if device is not None:
        return original(device)
    log_once("cpu-device-module", "CPU fallback: torch.get_device_module() is torch.cpu on the CPU engine")
    return torch.cpu


def around_pin_memory(original, tensor: torch.Tensor, *args, **kwargs):
    if tensor.device.type != "cpu":
        return original(tensor, *args, **kwargs)
    log_once("cpu-pin-memory", "CPU fallback: Tensor.pin_memory() returns the tensor itself (no GPU to copy to)")
    return tensor


def install() -> None:
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    HookRegistry.register(GET_DEVICE_MODULE, around_get_device_module, HookType.AROUND)
    if pin_memory_fails():
        HookRegistry.register(PIN_MEMORY, around_pin_memory, HookType.AROUND)
