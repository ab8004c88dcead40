"""The CPU enablement's hook bodies, called directly with stand-ins (no sglang import), and `install()`'s
gate. Their wiring into a real SGLang is checked in tests/e2e/test_cpu_enablement.py."""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

import torch

from dflash_sglang.sglang_adapter.cpu import input_embeds_dtype, platform_guard, qk_norm_rope, streams


def test_record_stream_on_a_cpu_tensor_fails_in_this_torch():
    # The reason `streams` exists; if torch ever accepts it, the hook is no longer installed.
    assert streams.record_stream_fails_on_cpu()


def test_record_stream_hook_skips_cpu_tensors_only():
    calls = []

    def original(tensor, stream):
        calls.append(tensor.device.type)

    assert streams.around_record_stream(original, torch.zeros(2), "stream") is None
    streams.around_record_stream(original, torch.zeros(2, device="meta"), "stream")
    assert calls == ["meta"]


def test_dflash_attention_init_hook_turns_the_triton_path_off():
    attention = SimpleNamespace(use_table_qk_norm_rope=True)
    assert qk_norm_rope.after_dflash_attention_init("result", attention) == "result"
    assert attention.use_table_qk_norm_rope is False


def test_triton_cannot_launch_on_this_host():
    # Without a GPU driver Triton has no active driver: the reason `qk_norm_rope` is installed.
    assert qk_norm_rope.triton_can_launch() == torch.cuda.is_available()


def test_proxy_platform_accepts_dflash_and_delegates_the_rest():
    real = SimpleNamespace(device_name="cpu", supports_speculative_algorithm=lambda algo: algo == "NGRAM")
    proxy = platform_guard.CpuDflashPlatform(real)
    assert proxy.is_out_of_tree()
    assert proxy.supports_speculative_algorithm("DFLASH")
    assert proxy.supports_speculative_algorithm("NGRAM")
    assert not proxy.supports_speculative_algorithm("EAGLE")
    assert proxy.get_default_speculative_draft_attention_backend("DFLASH") == "torch_native"
    assert proxy.device_name == "cpu"


def batch(input_embeds, replace_embeds=None):
    return SimpleNamespace(input_embeds=input_embeds, replace_embeds=replace_embeds)


def test_input_embeds_reach_a_float32_model_uncast():
    embeds = torch.randn(3, 4) * 1e-3 + 1  # [num_tokens, hidden] values bf16 would round
    runner = SimpleNamespace(dtype=torch.float32)
    kwargs = input_embeds_dtype.after_extend_forward_kwargs({"input_embeds": embeds.bfloat16()}, runner,
                                                           batch(embeds))
    assert kwargs["input_embeds"].dtype == torch.float32
    assert torch.equal(kwargs["input_embeds"], embeds)  # the original values, not the bf16 rounding


def test_input_embeds_untouched_for_bf16_models_and_replaced_embeds():
    embeds = torch.randn(3, 4)
    cast = embeds.bfloat16()
    bf16_runner = SimpleNamespace(dtype=torch.bfloat16)
    kwargs = input_embeds_dtype.after_extend_forward_kwargs({"input_embeds": cast}, bf16_runner,
                                                           batch(embeds))
    assert kwargs["input_embeds"] is cast
    fp32_runner = SimpleNamespace(dtype=torch.float32)
    kwargs = input_embeds_dtype.after_extend_forward_kwargs({"input_embeds": cast}, fp32_runner,
                                                           batch(embeds, replace_embeds=torch.ones(1, 4)))
    assert kwargs["input_embeds"] is cast


def test_install_is_a_no_op_off_cpu():
    code = ("from dflash_sglang.sglang_adapter import cpu; cpu.install(); import sys; "
            "assert not cpu._installed and 'sglang' not in sys.modules, 'patched off CPU'")
    env = {**os.environ, "SGLANG_USE_CPU_ENGINE": "0"}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
