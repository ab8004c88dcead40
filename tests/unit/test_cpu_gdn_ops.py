"""The torch Gated DeltaNet bodies against transformers' own torch code for Qwen3-Next
(`torch_recurrent_gated_delta_rule`, `torch_chunk_gated_delta_rule`), request by request.

Our bodies work on SGLang's pool: states [slots, HV, V, K] (transformers: [bs, HV, K, V]), ragged batches,
slot indices. No sglang import: unit tier.
"""

from __future__ import annotations

import pytest
import torch
from transformers.models.qwen3_next import modeling_qwen3_next as hf

from dflash_sglang.sglang_adapter.cpu import gdn_ops

H, HV, K, V = 2, 4, 8, 8  # two value heads per key head, as the tiny hybrid target; K == V as in Qwen3-Next
SLOTS = 6
ATOL = 2e-5


def inputs(num_tokens: int, seed: int):
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=gen)

    q, k = rand(1, num_tokens, H, K), rand(1, num_tokens, H, K)
    v = rand(1, num_tokens, HV, V)
    a, b = rand(num_tokens, HV), rand(num_tokens, HV)
    A_log, dt_bias = rand(HV) * 0.5, rand(HV) * 0.5
    return q, k, v, a, b, A_log, dt_bias


def random_pool(seed: int) -> torch.Tensor:
    return torch.randn(SLOTS, HV, V, K, generator=torch.Generator().manual_seed(seed))  # not symmetric in V, K


def reference(q, k, v, g, beta, state_kv, chunked=False):
    """transformers on one request: q/k heads repeated as its model does; state [HV, K, V] -> out, final."""
    rep = HV // H
    args = (q.repeat_interleave(rep, 2), k.repeat_interleave(rep, 2), v, g, beta)
    fn = hf.torch_chunk_gated_delta_rule if chunked else hf.torch_recurrent_gated_delta_rule
    out, final = fn(*args, initial_state=state_kv[None], output_final_state=True, use_qk_l2norm_in_kernel=True)
    return out, final[0]


def as_kv(pool_row: torch.Tensor) -> torch.Tensor:
    return pool_row.transpose(-1, -2)  # SGLang's [HV, V, K] -> transformers' [HV, K, V]


@pytest.mark.parametrize("chunked_reference", [False, True], ids=["vs-recurrent", "vs-chunk"])
def test_ragged_prefill_matches_transformers(chunked_reference):
    lens = [1, 17, 70, 64]  # 1 token; odd; past one 64-token chunk; exactly one chunk
    slots = [3, 0, 5, 1]  # not in batch order
    starts = [0]
    for n in lens:
        starts.append(starts[-1] + n)
    q, k, v, a, b, A_log, dt_bias = inputs(starts[-1], seed=1)
    g, beta = gdn_ops.gdn_gating(A_log, a, b, dt_bias)
    pool = random_pool(seed=2)
    before = pool.clone()
    out, final, h = gdn_ops.chunk_gated_delta_rule(q, k, v, g, beta, pool, torch.tensor(starts),
                                                   torch.tensor(slots))
    chunk = 0
    for r, slot in enumerate(slots):
        s, e = starts[r], starts[r + 1]
        want_out, want_final = reference(q[:, s:e], k[:, s:e], v[:, s:e], g[:, s:e], beta[:, s:e],
                                         as_kv(before[slot]), chunked_reference)
        torch.testing.assert_close(out[:, s:e], want_out, atol=ATOL, rtol=1e-4)
        torch.testing.assert_close(as_kv(pool[slot]), want_final, atol=ATOL, rtol=1e-4)
        torch.testing.assert_close(final[r], pool[slot])
        for c in range(0, e - s, gdn_ops.FLA_CHUNK_SIZE):  # h: the state before each 64-token chunk
            _, at_c = reference(q[:, s:s + c], k[:, s:s + c], v[:, s:s + c], g[:, s:s + c], beta[:, s:s + c],
                                as_kv(before[slot]))
            torch.testing.assert_close(as_kv(h[0, chunk]), at_c, atol=ATOL, rtol=1e-4)
            chunk += 1
    assert h.shape[1] == chunk
    untouched = [i for i in range(SLOTS) if i not in slots]
    assert torch.equal(pool[untouched], before[untouched])


def test_chunked_prefill_continues_the_saved_state():
    q, k, v, a, b, A_log, dt_bias = inputs(50, seed=3)
    g, beta = gdn_ops.gdn_gating(A_log, a, b, dt_bias)
    pool = torch.zeros(SLOTS, HV, V, K)
    outs = []
    for s, e in ((0, 20), (20, 21), (21, 50)):  # a prompt prefilled in three pieces
        out, _, _ = gdn_ops.chunk_gated_delta_rule(q[:, s:e], k[:, s:e], v[:, s:e], g[:, s:e], beta[:, s:e], pool,
                                                   torch.tensor([0, e - s]), torch.tensor([2]))
        outs.append(out)
    want_out, want_final = reference(q, k, v, g, beta, torch.zeros(HV, K, V))
    torch.testing.assert_close(torch.cat(outs, 1), want_out, atol=ATOL, rtol=1e-4)
    torch.testing.assert_close(as_kv(pool[2]), want_final, atol=ATOL, rtol=1e-4)


def test_pool_layout_guard_sees_a_transposed_state():
    # K == V, so reading the pool as [K, V] raises nothing: only the values can tell. This checks that the
    # comparison above would catch it: the same start state, transposed, gives another output.
    q, k, v, a, b, A_log, dt_bias = inputs(5, seed=4)
    g, beta = gdn_ops.gdn_gating(A_log, a, b, dt_bias)
    pool = random_pool(seed=5)
    start = pool[0].clone()
    out, _, _ = gdn_ops.chunk_gated_delta_rule(q, k, v, g, beta, pool, torch.tensor([0, 5]), torch.tensor([0]))
    right, _ = reference(q, k, v, g, beta, as_kv(start))
    wrong, _ = reference(q, k, v, g, beta, start)  # the pool row taken as transformers' [K, V]
    torch.testing.assert_close(out, right, atol=ATOL, rtol=1e-4)
    assert (out - wrong).abs().max() > 1e-2


def test_gating_matches_transformers_formula():
    _, _, _, a, b, A_log, dt_bias = inputs(9, seed=6)
    a[0, 0] = 30.0  # softplus past its threshold: linear
    g, beta = gdn_ops.gdn_gating(A_log, a, b, dt_bias)
    # Qwen3NextGatedDeltaNet.forward: beta = b.sigmoid(); g = -A_log.float().exp() * softplus(a.float() + dt_bias)
    want_g = -A_log.float().exp() * torch.nn.functional.softplus(a.float() + dt_bias)
    torch.testing.assert_close(g[0], want_g)
    torch.testing.assert_close(beta[0], b.sigmoid())
    assert g.shape == beta.shape == (1, 9, HV) and g.dtype == torch.float32


def test_decode_steps_follow_the_recurrence():
    steps, bs = 6, 2
    q, k, v, a, b, A_log, dt_bias = inputs(steps * bs, seed=7)
    pool = random_pool(seed=8)
    before = pool.clone()
    slots = torch.tensor([4, 1])
    outs = []
    for t in range(steps):  # token t of request r is row r * steps + t
        rows = torch.tensor([t, steps + t])
        outs.append(gdn_ops.fused_sigmoid_gating_delta_rule_update(
            A_log, dt_bias, q[:, rows], k[:, rows], v[:, rows], a[rows], b[rows], pool, slots,
            torch.arange(bs + 1)))
    g, beta = gdn_ops.gdn_gating(A_log, a, b, dt_bias)
    for r, slot in enumerate(slots.tolist()):
        span = slice(r * steps, (r + 1) * steps)
        want_out, want_final = reference(q[:, span], k[:, span], v[:, span], g[:, span], beta[:, span],
                                         as_kv(before[slot]))
        got = torch.cat([o[:, r:r + 1] for o in outs], 1)
        torch.testing.assert_close(got, want_out, atol=ATOL, rtol=1e-4)
        torch.testing.assert_close(as_kv(pool[slot]), want_final, atol=ATOL, rtol=1e-4)


def test_verify_keeps_the_pool_and_saves_every_step():
    block, bs = 4, 3
    q, k, v, a, b, A_log, dt_bias = inputs(block * bs, seed=9)
    pool = random_pool(seed=10)
    before = pool.clone()
    slots = torch.tensor([2, -1, 5])  # request 1 is padding: no state read or written
    buffer_rows = torch.tensor([1, 0, 2])
    buffer = torch.full((4, block, HV, V, K), 7.0)
    out = gdn_ops.fused_sigmoid_gating_delta_rule_update(
        A_log, dt_bias, q, k, v, a, b, pool, slots, torch.arange(0, bs * block + 1, block),
        disable_state_update=True, intermediate_states_buffer=buffer, intermediate_state_indices=buffer_rows)
    assert torch.equal(pool, before)
    assert torch.equal(buffer[0], torch.full_like(buffer[0], 7.0))  # the padding request's row
    g, beta = gdn_ops.gdn_gating(A_log, a, b, dt_bias)
    for r in (0, 2):
        slot, row = int(slots[r]), int(buffer_rows[r])
        span = slice(r * block, (r + 1) * block)
        want_out, _ = reference(q[:, span], k[:, span], v[:, span], g[:, span], beta[:, span], as_kv(before[slot]))
        torch.testing.assert_close(out[:, span], want_out, atol=ATOL, rtol=1e-4)
        for t in range(block):  # the state after step t = after the first t + 1 tokens
            first = slice(r * block, r * block + t + 1)
            _, want_state = reference(q[:, first], k[:, first], v[:, first], g[:, first], beta[:, first],
                                      as_kv(before[slot]))
            torch.testing.assert_close(as_kv(buffer[row, t]), want_state, atol=ATOL, rtol=1e-4)
