"""Make CUDA-stream bookkeeping calls harmless on CPU tensors.

DFLASH keeps SGLang's overlap scheduler on CPU, and its worker calls
`batch.seq_lens.record_stream(torch.get_device_module(device).current_stream())`. On CPU that raises
(`unknown parameter type`: `torch.cpu.current_stream()` is a Python stub, not a `torch.Stream`; and
`aten::record_stream` has no CPU kernel at all). `record_stream` only tells the CUDA caching allocator
that another stream uses the memory; CPU memory has no such allocator, so a no-op is exact there.
"""

from __future__ import annotations

import torch

from dflash_sglang.log import log_once

RECORD_STREAM = "torch.Tensor.record_stream"


def record_stream_fails_on_cpu() -> bool:
    """True when this torch cannot record a CPU tensor on the CPU 'current stream' (the patch's reason)."""
    # The C method, not `torch.Tensor.record_stream`: once our hook is installed that one is the no-op.
    try:
        torch._C.TensorBase.record_stream(torch.zeros(1), torch.get_device_module("cpu").current_stream())
    except (RuntimeError, NotImplementedError, TypeError):
        return True
    return False


def around_record_stream(original, tensor: torch.Tensor, stream, *args, **kwargs):
    """HookRegistry AROUND hook: skip CPU tensors, pass everything else through."""
    if tensor.device.type == "cpu":
        log_once("cpu-record-stream", "CPU fallback: Tensor.record_stream is a no-op for CPU tensors")
        return None
    return original(tensor, stream, *args, **kwargs)


def install() -> None:
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    if record_stream_fails_on_cpu():
        HookRegistry.register(RECORD_STREAM, around_record_stream, HookType.AROUND)
