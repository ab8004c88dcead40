"""Wire the torch Gated DeltaNet bodies (`gdn_conv`, `gdn_ops`, `hybrid_layer_ops`) into SGLang on CPU.

On CPU, SGLang's GDN backend (`layers/attention/linear/gdn_backend.py`, `kernels/gdn_triton.py`) and the
`qwen3_next` / `qwen3_5` models call `sgl_kernel` CPU ops that only SGLang's separate CPU kernel build has
(it is not on PyPI), and a few Triton kernels that cannot launch without a GPU driver. Here:
- ops: each missing `torch.ops.sgl_kernel.*_cpu` op gets a torch body (only where it has no CPU kernel).
  Some are read at import time (`gdn_backend`, `gdn_triton`, `qwen3_5`), so they are registered at once;
- hooks (HookRegistry, applied when SGLang's plugins are loaded):
  - TARGET_VERIFY passes per-step keywords (`intermediate_conv_window`, `disable_state_update`,
    `intermediate_states_buffer`, ...) that no CPU kernel takes; those calls go to our torch bodies, every
    other call to the op;
  - when our op stands in for `chunk_gated_delta_rule_cpu`, the wrapper also returns the per-chunk states
    `h` that extra_buffer's prefix tracking reads (SGLang's CPU wrapper returns None there);
  - `FusedRMSNormGated.forward` and the MoE block's `fused_gate_sigmoid_mul(_add)` are Triton off AMX.
"""

from __future__ import annotations

from dflash_sglang.log import log_once
from dflash_sglang.sglang_adapter.cpu import gdn_conv, gdn_ops, hybrid_layer_ops, ops

MAMBA_WRAPPERS = "sgl_kernel.mamba"
GDN_TRITON = "sglang.srt.layers.attention.linear.kernels.gdn_triton"
NORM_GATED_FORWARD = "sglang.kernels.ops.attention.fla.fused_norm_gate.FusedRMSNormGated.forward"
ELEMENTWISE = "sglang.kernels.ops.elementwise.elementwise"
VERIFY_CONV_KEYWORDS = ("intermediate_conv_window", "intermediate_state_indices",
                        "retrieve_next_token", "retrieve_next_sibling", "retrieve_parent_token")
VERIFY_SSM_KEYWORDS = ("is_kda", "disable_state_update", "intermediate_states_buffer",
                       "intermediate_state_indices", "cache_steps", "retrieve_parent_token")

_registered: set[str] = set()  # the ops our torch bodies stand in for, in this process


def _conv_fwd(x, weight, bias, conv_states, query_start_loc, cache_indices, has_initial_state, silu,
              pad_slot_id, is_vnni):
    assert pad_slot_id == gdn_conv.PAD_SLOT_ID, pad_slot_id
    return gdn_conv.causal_conv1d_prefill(x, weight, bias, conv_states, query_start_loc, cache_indices,
                                          has_initial_state, silu)


def _conv_update(x, conv_state, weight, bias, silu, cache_seqlens, conv_state_indices, pad_slot_id, is_vnni):
    assert cache_seqlens is None, "circular conv buffers are not used by SGLang's GDN backend"
    return gdn_conv.causal_conv1d_update(x, conv_state, weight, bias, silu, conv_state_indices)


def _chunk(q, k, v, g, beta, initial_state, output_final_state, cu_seqlens, head_first, use_qk_l2norm,
           initial_state_indices):
    assert not head_first, "SGLang passes [1, tokens, heads, dim]"
    out, final, _ = gdn_ops.chunk_gated_delta_rule(q, k, v, g, beta, initial_state, cu_seqlens,
                                                   initial_state_indices, use_qk_l2norm)
    return out, final


def _sigmoid_gating_update(A_log, dt_bias, q, k, v, a, b, initial_state_source, initial_state_indices,
                           cu_seqlens, use_qk_l2norm_in_kernel, softplus_beta=1.0, softplus_threshold=20.0):
    return gdn_ops.fused_sigmoid_gating_delta_rule_update(
        A_log, dt_bias, q, k, v, a, b, initial_state_source, initial_state_indices, cu_seqlens,
        use_qk_l2norm_in_kernel, softplus_beta, softplus_threshold)


def _import_only(name: str):
    def unsupported(*args, **kwargs):
        raise NotImplementedError(
            f"sgl_kernel.{name} has no CPU kernel here (it needs SGLang's CPU kernel build): dflash-sglang "
            "registers it only so that SGLang's qwen3_5 module imports; Qwen3.5 attention layers cannot run.")
    return unsupported


# (name, schema, body). Schemas follow the callers: the wrappers in `sgl_kernel/mamba.py` (positional),
# gdn_triton's decode call (keywords) and qwen3_5's module-level lookups.
GDN_OPS = (
    ("causal_conv1d_fwd_cpu",
     "(Tensor x, Tensor weight, Tensor? bias, Tensor(a!) conv_states, Tensor query_start_loc, "
     "Tensor cache_indices, Tensor? has_initial_state, bool silu_activation, int pad_slot_id, bool is_vnni) "
     "-> Tensor", _conv_fwd),
    ("causal_conv1d_update_cpu",
     "(Tensor x, Tensor(a!) conv_state, Tensor weight, Tensor? bias, bool silu_activation, "
     "Tensor? cache_seqlens, Tensor conv_state_indices, int pad_slot_id, bool is_vnni) -> Tensor", _conv_update),
    ("chunk_gated_delta_rule_cpu",
     "(Tensor q, Tensor k, Tensor v, Tensor g, Tensor beta, Tensor(a!) initial_state, bool output_final_state, "
     "Tensor cu_seqlens, bool head_first, bool use_qk_l2norm_in_kernel, Tensor initial_state_indices) "
     "-> (Tensor, Tensor)", _chunk),
    ("fused_gdn_gating_cpu",
     "(Tensor A_log, Tensor a, Tensor b, Tensor dt_bias) -> (Tensor, Tensor)", gdn_ops.gdn_gating),
    ("fused_sigmoid_gating_delta_rule_update_cpu",
     "(Tensor A_log, Tensor dt_bias, Tensor q, Tensor k, Tensor v, Tensor a, Tensor b, "
     "Tensor(a!) initial_state_source, Tensor initial_state_indices, Tensor cu_seqlens, "
     "bool use_qk_l2norm_in_kernel, float softplus_beta=1.0, float softplus_threshold=20.0) -> Tensor",
     _sigmoid_gating_update),
    ("fused_sigmoid_mul_cpu", "(Tensor(a!) x, Tensor gate) -> ()", hybrid_layer_ops.sigmoid_mul_),
)
# qwen3_5 reads these at import time (schemas from its calls); their fused layouts are not reimplemented here.
QWEN3_5_IMPORT_ONLY_OPS = tuple((name, schema, _import_only(name)) for name, schema in (
    ("fused_qk_gemma_rmsnorm_cpu",
     "(Tensor q, Tensor k, Tensor q_weight, Tensor k_weight, float eps, int head_dim) -> (Tensor, Tensor)"),
    ("fused_qk_gemma_rmsnorm_with_gate_cpu",
     "(Tensor q_gate, Tensor k, Tensor q_weight, Tensor k_weight, float eps, int head_dim, int num_heads) "
     "-> (Tensor, Tensor, Tensor)"),
    ("fused_qkvzba_split_reshape_cat_contiguous_cpu",
     "(Tensor qkvz, Tensor ba, int num_k_heads, int num_v_heads, int head_k_dim, int head_v_dim) "
     "-> (Tensor, Tensor, Tensor, Tensor)"),
))


def register_ops() -> list[str]:
    registered = ops.register_missing(GDN_OPS, what="Gated DeltaNet torch implementations")
    registered += ops.register_missing(QWEN3_5_IMPORT_ONLY_OPS, what="import-only stubs")
    _registered.update(registered)
    return registered


def _wants_verify(kwargs: dict, names: tuple[str, ...]) -> bool:
    # `is not`: a tensor argument must not be compared with `==` (elementwise, ambiguous as a bool)
    return any(kwargs.get(name) is not None and kwargs.get(name) is not False for name in names)


def _refuse_tree(kwargs: dict) -> None:
    if kwargs.get("retrieve_parent_token") is not None or kwargs.get("retrieve_next_token") is not None:
        raise NotImplementedError("tree verify (topk > 1) of Gated DeltaNet layers is not implemented on CPU")
    if kwargs.get("is_kda"):
        raise NotImplementedError("KDA linear attention is not implemented on CPU")


def around_conv_update(original, x, conv_states, weight, bias, activation, conv_state_indices, **kwargs):
    """`sgl_kernel.mamba.causal_conv1d_update_cpu`, plus the TARGET_VERIFY keywords it lacks."""
    if not _wants_verify(kwargs, VERIFY_CONV_KEYWORDS):
        return original(x, conv_states, weight, bias, activation, conv_state_indices)
    _refuse_tree(kwargs)
    log_once("cpu-gdn-verify-conv", "CPU fallback: Gated DeltaNet verify conv (per-step windows) in torch")
    return gdn_conv.causal_conv1d_update(x, conv_states, weight, bias, activation, conv_state_indices,
                                         kwargs.get("intermediate_conv_window"),
                                         kwargs.get("intermediate_state_indices"))


def around_chunk(original, q, k, v, g, beta, initial_state, cu_seqlens, head_first, use_qk_l2norm_in_kernel,
                 initial_state_indices):
    """`sgl_kernel.mamba.chunk_gated_delta_rule_cpu`; ours also returns the per-chunk states `h`."""
    if "chunk_gated_delta_rule_cpu" not in _registered:
        return original(q, k, v, g, beta, initial_state, cu_seqlens, head_first, use_qk_l2norm_in_kernel,
                        initial_state_indices)
    assert not head_first, "SGLang passes [1, tokens, heads, dim]"
    return gdn_ops.chunk_gated_delta_rule(q, k, v, g, beta, initial_state, cu_seqlens, initial_state_indices,
                                          use_qk_l2norm_in_kernel)


def around_sigmoid_gating_update(original, *args, **kwargs):
    """gdn_triton's `fused_sigmoid_gating_delta_rule_update` (the CPU op), plus the verify keywords."""
    if not _wants_verify(kwargs, VERIFY_SSM_KEYWORDS):
        return original(*args, **kwargs)
    _refuse_tree(kwargs)
    log_once("cpu-gdn-verify-ssm", "CPU fallback: Gated DeltaNet verify recurrence (per-step states) in torch")
    for name in ("is_kda", "cache_steps", "retrieve_parent_token", "stable_rows"):
        kwargs.pop(name, None)
    return gdn_ops.fused_sigmoid_gating_delta_rule_update(*args, **kwargs)


def around_norm_gated_forward(original, norm, x, g, residual=None, prenorm=False, residual_in_fp32=False):
    """`FusedRMSNormGated.forward` runs a Triton kernel unless the CPU has AMX."""
    from sglang.kernels.ops.attention.fla import fused_norm_gate

    if x.device.type != "cpu" or fused_norm_gate._use_cpu:  # _use_cpu: AMX, SGLang's own CPU kernel
        return original(norm, x, g, residual, prenorm, residual_in_fp32)
    if residual is not None or prenorm:
        raise NotImplementedError("FusedRMSNormGated with a residual is not implemented on CPU")
    log_once("cpu-norm-gated", "CPU fallback: gated RMSNorm (FusedRMSNormGated) in torch")
    activation = "silu" if norm.activation == "swish" else norm.activation
    return hybrid_layer_ops.rms_norm_gated(x, g, norm.weight, norm.eps, activation)


def around_gate_sigmoid_mul_add(original, hidden_states, gate_weight, shared_output, final_hidden_states):
    if hidden_states.device.type != "cpu":
        return original(hidden_states, gate_weight, shared_output, final_hidden_states)
    log_once("cpu-moe-shared-gate", "CPU fallback: MoE shared-expert sigmoid gate in torch")
    gated = hybrid_layer_ops.shared_expert_gate(hidden_states, gate_weight, shared_output)
    final_hidden_states += gated.to(final_hidden_states.dtype)


def around_gate_sigmoid_mul(original, hidden_states, gate_weight, shared_output):
    if hidden_states.device.type != "cpu":
        return original(hidden_states, gate_weight, shared_output)
    log_once("cpu-moe-shared-gate", "CPU fallback: MoE shared-expert sigmoid gate in torch")
    return hybrid_layer_ops.shared_expert_gate(hidden_states, gate_weight, shared_output).to(shared_output.dtype)


def install(triton_can_launch: bool) -> None:
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    register_ops()
    HookRegistry.register(f"{MAMBA_WRAPPERS}.causal_conv1d_update_cpu", around_conv_update, HookType.AROUND)
    HookRegistry.register(f"{MAMBA_WRAPPERS}.chunk_gated_delta_rule_cpu", around_chunk, HookType.AROUND)
    HookRegistry.register(f"{GDN_TRITON}.fused_sigmoid_gating_delta_rule_update", around_sigmoid_gating_update,
                          HookType.AROUND)
    if triton_can_launch:
        return
    HookRegistry.register(NORM_GATED_FORWARD, around_norm_gated_forward, HookType.AROUND)
    HookRegistry.register(f"{ELEMENTWISE}.fused_gate_sigmoid_mul_add", around_gate_sigmoid_mul_add, HookType.AROUND)
    HookRegistry.register(f"{ELEMENTWISE}.fused_gate_sigmoid_mul", around_gate_sigmoid_mul, HookType.AROUND)
