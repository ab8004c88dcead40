"""The hybrid-target CPU hooks' bodies, called with stand-ins (no sglang import). Their wiring into a real
SGLang is shown by tests/e2e/test_hybrid_ar.py (each one logs once when it takes effect)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dflash_sglang.sglang_adapter.cpu import device_shims, hybrid_args, mamba_state_patches


@dataclass(frozen=True, kw_only=True)
class StateDType:  # stands in for sglang's Mamba2StateDType
    conv: torch.dtype
    temporal: torch.dtype


def test_conv_state_is_float32_unless_the_variable_says_otherwise(monkeypatch):
    bf16 = StateDType(conv=torch.bfloat16, temporal=torch.float32)
    monkeypatch.delenv(hybrid_args.CONV_DTYPE_ENV, raising=False)
    assert hybrid_args.after_mamba_state_dtype(bf16).conv == torch.float32
    monkeypatch.setenv(hybrid_args.CONV_DTYPE_ENV, "bfloat16")
    assert hybrid_args.after_mamba_state_dtype(bf16) is bf16


def test_extra_buffer_is_accepted_whatever_the_platform_says():
    assert hybrid_args.around_platform_extra_buffer(lambda: False) is True


def test_get_device_module_without_a_device_is_torch_cpu():
    assert device_shims.around_get_device_module(lambda device=None: "cuda") is torch.cpu
    assert device_shims.around_get_device_module(lambda device=None: device, "meta") == "meta"


def test_pin_memory_fails_here_and_the_hook_returns_the_tensor():
    assert device_shims.pin_memory_fails() == (not torch.cuda.is_available())
    tensor = torch.zeros(3)
    assert device_shims.around_pin_memory(lambda t: None, tensor) is tensor


def test_conv_multi_scatter_is_never_chosen_for_cpu_tensors():
    pairs = [(torch.zeros(1, 2, 3, 3, dtype=torch.bfloat16), torch.zeros(1, 2, 4, 3, 3, dtype=torch.bfloat16))]
    assert mamba_state_patches.around_conv_multi_eligible(lambda p: True, pairs) is False
