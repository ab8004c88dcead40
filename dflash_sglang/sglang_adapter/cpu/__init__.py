"""CPU enablement: what stock SGLang 0.5.23 lacks to run DFLASH and NGRAM on a GPU-less host.

Each piece is one module, applied only on CPU and only where the real thing is missing, and logs
once when it takes effect:
- `ops`: torch fallbacks for the `torch.ops.sgl_kernel.*_cpu` ops (bodies in `kv_ops`, `tree_ops`);
- `platform_guard`: DFLASH argument handling accepts `--device cpu`, draft attention `torch_native`;
- `streams`: `Tensor.record_stream` is a no-op for CPU tensors;
- `qk_norm_rope`: the builtin drafter takes its eager qk-norm + rope path instead of a Triton kernel;
- `verify_attention`: TARGET_VERIFY (verify blocks, drafter blocks, tree masks) for `torch_native`;
- `hybrid`: Gated DeltaNet kernels, Mamba-state track/commit and flags for hybrid targets (Qwen3-Next);
- `input_embeds_dtype`: `input_embeds` reach a non-bf16 model (the builtin drafter) in its own dtype;
- `builtin_sampling_verify`: the builtin DFLASH worker's sampling verify in torch (else it verifies
  sampled requests by greedy argmax).

Nothing here imports sglang at module level: `install()` does, lazily.
"""

from __future__ import annotations

import os

_installed = False


def on_cpu() -> bool:
    """SGLang's own switch for its CPU engine, and no CUDA device to use instead."""
    if os.environ.get("SGLANG_USE_CPU_ENGINE", "0") != "1":
        return False
    import torch

    return not torch.cuda.is_available()


def install() -> None:
    """Apply every CPU fallback (idempotent; a no-op off CPU). Hooks are registered with SGLang's
    HookRegistry, which applies them when `load_plugins()` finishes; ops are registered at once."""
    global _installed
    if _installed or not on_cpu():
        return
    _installed = True
    from dflash_sglang.sglang_adapter.cpu import (
        builtin_sampling_verify,
        input_embeds_dtype,
        ops,
        platform_guard,
        qk_norm_rope,
        streams,
        verify_attention,
    )

    ops.register_missing(ops.SPEC_OPS)
    platform_guard.install()
    streams.install()
    qk_norm_rope.install()
    verify_attention.install()
    input_embeds_dtype.install()
    builtin_sampling_verify.install()
    from dflash_sglang.sglang_adapter.cpu import hybrid

    hybrid.install()
