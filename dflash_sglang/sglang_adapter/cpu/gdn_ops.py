"""Torch bodies for the Gated DeltaNet recurrence and its gates, over SGLang's SSM-state pool.

Gated delta rule, per value head, token by token (Yang et al., "Gated Delta Networks", eq. 10):
    S <- S * exp(g_t);   S <- S + beta_t * (v_t - S k_t) k_t^T;   o_t = S q_t
with q, k L2-normalised, q scaled by K^-0.5, and the H key heads repeated (interleaved) to the HV value heads.
This is the exact token recurrence of transformers' `torch_recurrent_gated_delta_rule`, in float32.

SGLang keeps S in the pool `ssm_states[slots, HV, V, K]`: value dimension first, i.e. the transpose of
transformers' [K, V] (SGLang's kernels index `v * K + k`). Reading it the other way round is silent (K == V in
Qwen3-Next) and wrong; tests/unit/test_cpu_gdn_ops.py guards it.

Ragged batches are padded to the longest request with g = 0 and beta = 0, which leaves S unchanged exactly
(S * exp(0) = S, and the update adds 0), so one loop over positions serves the whole batch.

Plain torch only: no sglang import, so the unit tier tests these against transformers' torch reference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PAD_SLOT_ID = -1  # SGLang's slot index of a padding request
FLA_CHUNK_SIZE = 64  # the chunk grid of SGLang's prefill kernel: its per-chunk states `h` are on it


def gdn_gating(
    A_log: torch.Tensor,  # [HV]
    a: torch.Tensor,  # [num_tokens, HV]
    b: torch.Tensor,  # [num_tokens, HV]
    dt_bias: torch.Tensor,  # [HV]
    softplus_beta: float = 1.0,
    softplus_threshold: float = 20.0,
) -> tuple[torch.Tensor, torch.Tensor]:  # g, beta: [1, num_tokens, HV] float32
    """Log-decay g = -exp(A_log) * softplus(a + dt_bias) and write strength beta = sigmoid(b)."""
    g = -A_log.float().exp() * F.softplus(a.float() + dt_bias.float(), softplus_beta, softplus_threshold)
    return g.unsqueeze(0), b.float().sigmoid().unsqueeze(0)


def l2norm(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    return x * torch.rsqrt((x * x).sum(dim=-1, keepdim=True) + eps)


def prepare_qk(q: torch.Tensor, k: torch.Tensor, num_v_heads: int, use_l2norm: bool):
    """[..., H, K] -> float32 [..., HV, K]: normalised, q scaled, heads repeated to the value heads."""
    q, k = q.float(), k.float()
    if use_l2norm:
        q, k = l2norm(q), l2norm(k)
    q = q * q.shape[-1] ** -0.5
    repeat = num_v_heads // q.shape[-2]
    assert repeat * q.shape[-2] == num_v_heads, (q.shape, num_v_heads)
    if repeat > 1:
        q, k = q.repeat_interleave(repeat, dim=-2), k.repeat_interleave(repeat, dim=-2)
    return q, k


def delta_rule_scan(
    q: torch.Tensor,  # [bs, L, HV, K] prepared (prepare_qk)
    k: torch.Tensor,  # [bs, L, HV, K] prepared
    v: torch.Tensor,  # [bs, L, HV, V]
    g: torch.Tensor,  # [bs, L, HV]
    beta: torch.Tensor,  # [bs, L, HV]
    state: torch.Tensor,  # [bs, HV, V, K] float32, the state before the first position
    keep_every: int = 0,  # also return the state after every position (1), or before every n-th (n > 1)
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """(out [bs, L, HV, V], final state [bs, HV, V, K], kept states) of the gated delta rule."""
    out = v.new_empty(v.shape, dtype=torch.float32)
    kept = []
    for t in range(q.shape[1]):
        if keep_every > 1 and t % keep_every == 0:
            kept.append(state)
        k_t = k[:, t]  # [bs, HV, K]
        state = state * g[:, t].float().exp()[..., None, None]
        remembered = torch.einsum("bhvk,bhk->bhv", state, k_t)  # [bs, HV, V]
        delta = (v[:, t].float() - remembered) * beta[:, t].float()[..., None]  # [bs, HV, V]
        state = state + delta[..., :, None] * k_t[..., None, :]
        out[:, t] = torch.einsum("bhvk,bhk->bhv", state, q[:, t])
        if keep_every == 1:
            kept.append(state)
    return out, state, kept


def _pad_ragged(x: torch.Tensor, starts: list[int], width: int) -> torch.Tensor:
    """[num_tokens, ...] request after request -> [bs, width, ...], zero-padded."""
    padded = x.new_zeros(len(starts) - 1, width, *x.shape[1:])
    for r in range(len(starts) - 1):
        padded[r, : starts[r + 1] - starts[r]] = x[starts[r] : starts[r + 1]]
    return padded


def _gather_states(pool: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
    """float32 [bs, HV, V, K] pool rows; zeros for padding requests."""
    real = (slots != PAD_SLOT_ID)[:, None, None, None]
    return pool[slots.clamp(min=0)].float() * real


def chunk_gated_delta_rule(
    q: torch.Tensor,  # [1, num_tokens, H, K]
    k: torch.Tensor,  # [1, num_tokens, H, K]
    v: torch.Tensor,  # [1, num_tokens, HV, V]
    g: torch.Tensor,  # [1, num_tokens, HV] log-decay
    beta: torch.Tensor,  # [1, num_tokens, HV]
    ssm_states: torch.Tensor,  # [slots, HV, V, K] read as each request's start, written with its end
    cu_seqlens: torch.Tensor,  # [bs + 1]
    state_indices: torch.Tensor,  # [bs]
    use_qk_l2norm_in_kernel: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Prefill (extend): out [1, num_tokens, HV, V], final states [bs, HV, V, K], and `h`
    [1, sum of each request's chunk count, HV, V, K], the state before each FLA_CHUNK_SIZE chunk of each
    request, request after request: SGLang's extra_buffer radix cache snapshots states from it."""
    starts = cu_seqlens.tolist()
    lens = [e - s for s, e in zip(starts, starts[1:])]
    width = max(lens, default=0)
    qp, kp = prepare_qk(q[0], k[0], v.shape[2], use_qk_l2norm_in_kernel)
    padded = [_pad_ragged(x, starts, width) for x in (qp, kp, v[0].float(), g[0].float(), beta[0].float())]
    slots = state_indices[: len(lens)].long()
    out, final, kept = delta_rule_scan(*padded, _gather_states(ssm_states, slots), keep_every=FLA_CHUNK_SIZE)
    real = slots != PAD_SLOT_ID
    ssm_states[slots[real]] = final[real].to(ssm_states.dtype)
    chunks = [kept[c][r] for r, n in enumerate(lens) for c in range((n + FLA_CHUNK_SIZE - 1) // FLA_CHUNK_SIZE)]
    h = torch.stack(chunks)[None] if chunks else final.new_zeros(1, 0, *final.shape[1:])
    flat = torch.cat([out[r, :n] for r, n in enumerate(lens)])  # [num_tokens, HV, V]
    return flat[None].to(v.dtype), final, h


def fused_sigmoid_gating_delta_rule_update(
    A_log: torch.Tensor,  # [HV]
    dt_bias: torch.Tensor,  # [HV]
    q: torch.Tensor,  # [1, bs * steps, H, K]
    k: torch.Tensor,  # [1, bs * steps, H, K]
    v: torch.Tensor,  # [1, bs * steps, HV, V]
    a: torch.Tensor,  # [bs * steps, HV]
    b: torch.Tensor,  # [bs * steps, HV]
    initial_state_source: torch.Tensor,  # [slots, HV, V, K]
    initial_state_indices: torch.Tensor,  # [bs]
    cu_seqlens: torch.Tensor | None = None,  # [bs + 1], equal steps per request
    use_qk_l2norm_in_kernel: bool = True,
    softplus_beta: float = 1.0,
    softplus_threshold: float = 20.0,
    disable_state_update: bool = False,  # TARGET_VERIFY: the pool keeps the state before the block
    intermediate_states_buffer: torch.Tensor | None = None,  # [rows, >= steps, HV, V, K] state after each step
    intermediate_state_indices: torch.Tensor | None = None,  # [bs] row of each request in it
) -> torch.Tensor:  # [1, bs * steps, HV, V]
    """Decode (steps = 1) and chain verify (steps = block): gates fused in, `steps` tokens per request."""
    bs = initial_state_indices.shape[0] if cu_seqlens is None else cu_seqlens.shape[0] - 1
    num_tokens, num_v_heads = v.shape[1], v.shape[2]
    steps = num_tokens // max(bs, 1)
    assert steps * bs == num_tokens, (num_tokens, bs)
    g, beta = gdn_gating(A_log, a.reshape(num_tokens, -1), b.reshape(num_tokens, -1), dt_bias,
                         softplus_beta, softplus_threshold)
    qp, kp = prepare_qk(q[0], k[0], num_v_heads, use_qk_l2norm_in_kernel)

    def per_request(x):  # [num_tokens, ...] -> [bs, steps, ...]
        return x.reshape(bs, steps, *x.shape[1:])

    slots = initial_state_indices[:bs].long()
    keep = 1 if intermediate_states_buffer is not None else 0
    out, final, kept = delta_rule_scan(per_request(qp), per_request(kp), per_request(v[0].float()),
                                       per_request(g[0]), per_request(beta[0]),
                                       _gather_states(initial_state_source, slots), keep_every=keep)
    real = slots != PAD_SLOT_ID
    if not disable_state_update:
        initial_state_source[slots[real]] = final[real].to(initial_state_source.dtype)
    if keep:
        assert intermediate_state_indices is not None, "per-step states need their rows"
        rows = intermediate_state_indices[:bs].long()[real]
        states = torch.stack(kept, dim=1)[real]  # [real bs, steps, HV, V, K]
        intermediate_states_buffer[rows, :steps] = states.to(intermediate_states_buffer.dtype)
    return out.reshape(1, num_tokens, num_v_heads, -1).to(v.dtype)
