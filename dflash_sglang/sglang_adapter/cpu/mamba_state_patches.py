"""Route SGLang's Mamba-state track and verify-commit kernels to torch for CPU tensors.

All of `kernels/ops/mamba/mamba_state_scatter_triton.py` is Triton, and its wrappers accept only CUDA/XPU
tensors. SGLang reaches them on CPU:
- `track_mamba_states_all_layers` / `track_mamba_states_if_needed`: at each decode with extra_buffer, to
  snapshot a request's state into its radix-cache track slot;
- `fused_mamba_state_scatter_with_mask` / `fused_conv_window_scatter_with_mask`: in
  `scatter_mamba_states_after_mtp_verify`, the commit after a speculative verify (SGLang's builtin DFLASH
  and EAGLE call it through `update_mamba_state_after_mtp_verify`);
- `_conv_multi_eligible`: with a bf16 conv state it would pick a single-launch Triton variant; on CPU it
  answers False, so the per-pair scatter above is used.
`fused_commit_track_indices` is not patched: SGLang calls it only for CUDA tensors (`spec_utils`).
"""

from __future__ import annotations

from dflash_sglang.log import log_once
from dflash_sglang.sglang_adapter.cpu import mamba_state_ops

SCATTER = "sglang.kernels.ops.mamba.mamba_state_scatter_triton"


def _on_cpu(tensor) -> bool:
    return tensor.device.type == "cpu"


def around_track_if_needed(original, conv_states, ssm_states, cache_indices, mamba_track_mask,
                           mamba_track_indices, batch_size, check_freed_slots=False):
    if not _on_cpu(conv_states):
        return original(conv_states, ssm_states, cache_indices, mamba_track_mask, mamba_track_indices,
                        batch_size, check_freed_slots)
    log_once("cpu-mamba-track", "CPU fallback: Mamba state tracking (extra_buffer radix cache) in torch")
    mamba_state_ops.copy_tracked_rows((conv_states, ssm_states), cache_indices, mamba_track_mask,
                                      mamba_track_indices, batch_size, all_layers=False,
                                      skip_freed=check_freed_slots)


def around_track_all_layers(original, conv_pool, ssm_pool, cache_indices, mamba_track_mask, mamba_track_indices,
                            batch_size, check_freed_slots=False):
    if not _on_cpu(conv_pool):
        return original(conv_pool, ssm_pool, cache_indices, mamba_track_mask, mamba_track_indices, batch_size,
                        check_freed_slots)
    log_once("cpu-mamba-track", "CPU fallback: Mamba state tracking (extra_buffer radix cache) in torch")
    mamba_state_ops.copy_tracked_rows((conv_pool, ssm_pool), cache_indices, mamba_track_mask, mamba_track_indices,
                                      batch_size, all_layers=True, skip_freed=check_freed_slots)


def around_scatter(original, dst, src, dst_indices_raw, step_indices_raw, src_indices_raw=None):
    """Both masked scatters (SSM states, conv windows): the same move, `src` read through its strides."""
    if not _on_cpu(dst):
        return original(dst, src, dst_indices_raw, step_indices_raw, src_indices_raw)
    log_once("cpu-mamba-commit", "CPU fallback: Mamba state commit after verify (masked scatter) in torch")
    mamba_state_ops.scatter_steps(dst, src, dst_indices_raw, step_indices_raw, src_indices_raw)


def around_conv_multi_eligible(original, pairs) -> bool:
    if pairs and _on_cpu(pairs[0][0]):
        return False
    return original(pairs)


def install() -> None:
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    for name, hook in (
        ("track_mamba_states_if_needed", around_track_if_needed),
        ("track_mamba_states_all_layers", around_track_all_layers),
        ("fused_mamba_state_scatter_with_mask", around_scatter),
        ("fused_conv_window_scatter_with_mask", around_scatter),
        ("_conv_multi_eligible", around_conv_multi_eligible),
    ):
        HookRegistry.register(f"{SCATTER}.{name}", hook, HookType.AROUND)
