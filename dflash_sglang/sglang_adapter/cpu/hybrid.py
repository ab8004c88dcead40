"""Hybrid (Mamba / Gated DeltaNet) targets on CPU: everything SGLang 0.5.23 lacks to serve `Qwen3NextForCausalLM`
here, with `--mamba-radix-cache-strategy` extra_buffer or no_buffer, AR or speculative.

- `gdn_patches`: the GDN kernels (conv, recurrence, gates, gated norm, MoE shared gate) and their verify variants;
- `mamba_state_patches`: the extra_buffer track copies and the verify-commit scatter;
- `hybrid_args`: extra_buffer accepted, no_buffer gets the overlap scheduler off, float32 conv state;
- `device_shims`: `torch.get_device_module()` and `Tensor.pin_memory()` on the CPU engine.
Measured stand-in by stand-in in ../shared/notes/hybrid-on-cpu-probe.md (outside the repo).
"""

from __future__ import annotations


def install() -> None:
    from dflash_sglang.sglang_adapter.cpu import (
        device_shims,
        gdn_patches,
        hybrid_args,
        mamba_state_patches,
        qk_norm_rope,
    )

    triton_ok = qk_norm_rope.triton_can_launch()
    gdn_patches.install(triton_can_launch=triton_ok)
    if not triton_ok:
        mamba_state_patches.install()
    hybrid_args.install()
    device_shims.install()
