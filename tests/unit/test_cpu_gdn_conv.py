"""The torch conv, gated norm and Mamba-state moves for hybrid targets, against transformers' Qwen3-Next torch code
(`causal_conv1d_fn`, `causal_conv1d_update`, `Qwen3NextRMSNormGated`) or, for the pool moves, a loop.

No sglang import: unit tier.
"""

from __future__ import annotations

import torch
from transformers.models.qwen3_next import modeling_qwen3_next as hf

from dflash_sglang.sglang_adapter.cpu import gdn_conv, hybrid_layer_ops, mamba_state_ops

DIM, W, SLOTS = 12, 4, 5
ATOL = 1e-5


def rand(*shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def hf_update(x, window, weight, bias):
    """transformers' decode conv on one request: x [dim, L], window [dim, W-1] -> out, new window."""
    state = window[None].clone()
    out = hf.causal_conv1d_update(x[None], state, weight, bias, activation="silu")
    return out[0], state[0]


def test_ragged_prefill_matches_transformers():
    weight, bias = rand(DIM, W, seed=0), rand(DIM, seed=1)
    lens, slots, continues = [2, 9, 1], [4, 0, 2], [False, True, True]
    starts = [0, 2, 11, 12]
    x = rand(12, DIM, seed=2).t()  # [dim, tokens], a transposed view as SGLang passes it
    pool = rand(SLOTS, DIM, W - 1, seed=3)
    before = pool.clone()
    out = gdn_conv.causal_conv1d_prefill(x, weight, bias, pool, torch.tensor(starts), torch.tensor(slots),
                                         torch.tensor(continues), "silu")
    for r, slot in enumerate(slots):
        s, e = starts[r], starts[r + 1]
        if continues[r]:  # a chunked prefill or a radix hit continues the saved window
            want, want_window = hf_update(x[:, s:e], before[slot], weight, bias)
        else:
            want = hf.causal_conv1d_fn(x[None, :, s:e], weight, bias, activation="silu")[0]
            _, want_window = hf_update(x[:, s:e], torch.zeros(DIM, W - 1), weight, bias)
        torch.testing.assert_close(out[:, s:e], want, atol=ATOL, rtol=1e-5)
        torch.testing.assert_close(pool[slot], want_window)  # 2 tokens < W-1: part of the old window stays
    assert torch.equal(pool[[1, 3]], before[[1, 3]])


def test_decode_update_matches_transformers_and_skips_padding():
    weight, bias = rand(DIM, W, seed=4), None
    pool = rand(SLOTS, DIM, W - 1, seed=5)
    before = pool.clone()
    x = rand(3, DIM, seed=6)  # [bs, dim]: one token each
    out = gdn_conv.causal_conv1d_update(x, pool, weight, bias, "silu", torch.tensor([1, -1, 3]))
    assert out.shape == x.shape
    for r, slot in ((0, 1), (2, 3)):
        want, want_window = hf_update(x[r][:, None], before[slot], weight, bias)
        torch.testing.assert_close(out[r], want[:, 0], atol=ATOL, rtol=1e-5)
        torch.testing.assert_close(pool[slot], want_window)
    assert torch.equal(pool[[0, 2, 4]], before[[0, 2, 4]])


def test_verify_update_shifts_the_pool_and_saves_each_window():
    weight, bias = rand(DIM, W, seed=7), rand(DIM, seed=8)
    block = 5
    pool = rand(SLOTS, DIM, W - 1, seed=9)
    before = pool.clone()
    x = rand(2, DIM, block, seed=10)  # [bs, dim, block]
    windows = torch.zeros(3, block, DIM, W - 1)
    out = gdn_conv.causal_conv1d_update(x, pool, weight, bias, "silu", torch.tensor([2, 0]),
                                        intermediate_conv_window=windows,
                                        intermediate_state_indices=torch.tensor([1, 2]))
    for r, (slot, row) in enumerate(((2, 1), (0, 2))):
        want, want_window = hf_update(x[r], before[slot], weight, bias)
        torch.testing.assert_close(out[r], want, atol=ATOL, rtol=1e-5)
        torch.testing.assert_close(pool[slot], want_window)  # shifted by the whole block, as SGLang's kernels
        for t in range(block):
            _, after_t = hf_update(x[r, :, : t + 1], before[slot], weight, bias)
            torch.testing.assert_close(windows[row, t], after_t)
    assert torch.equal(windows[0], torch.zeros_like(windows[0]))


def test_verify_output_keeps_the_layout_sglang_views_it_through():
    # gdn_backend passes mixed_qkv.view(bs, block, dim).transpose(1, 2) and views the result back the same way;
    # a contiguous [bs, dim, block] output breaks that view as soon as bs > 1.
    bs, block = 3, 4
    mixed = rand(bs * block, DIM, seed=19)  # [tokens, dim]
    x = mixed.view(bs, block, DIM).transpose(1, 2)  # [bs, dim, block]
    out = gdn_conv.causal_conv1d_update(x, rand(SLOTS, DIM, W - 1, seed=20), rand(DIM, W, seed=21), None, "silu",
                                        torch.tensor([0, 1, 2]), torch.zeros(3, block, DIM, W - 1),
                                        torch.tensor([0, 1, 2]))
    assert out.transpose(1, 2).view(bs * block, -1).shape == (bs * block, DIM)


def test_gated_norm_matches_transformers():
    norm = hf.Qwen3NextRMSNormGated(16, eps=1e-6)
    with torch.no_grad():
        norm.weight.copy_(rand(16, seed=11))
    x, gate = rand(7, 16, seed=12), rand(7, 16, seed=13)
    torch.testing.assert_close(hybrid_layer_ops.rms_norm_gated(x, gate, norm.weight, 1e-6, "silu"), norm(x, gate))


def test_shared_expert_gate_matches_transformers_formula():
    x, shared = rand(5, 8, seed=14), rand(5, 8, seed=15)
    gate = torch.nn.Linear(8, 1, bias=False)
    want = torch.sigmoid(gate(x)) * shared  # Qwen3NextSparseMoeBlock
    got = hybrid_layer_ops.shared_expert_gate(x, gate.weight.squeeze(), shared)
    torch.testing.assert_close(got, want.detach())


def test_scatter_steps_takes_each_requests_step():
    src = rand(2, 3, 4, 6, seed=16)  # [layers, rows, steps, state]
    dst = torch.zeros(2, 5, 6)
    mamba_state_ops.scatter_steps(dst, src, torch.tensor([4, 0, 2]), torch.tensor([3, -1, 0]),
                                  torch.tensor([2, 0, 1]))
    assert torch.equal(dst[:, 4], src[:, 2, 3])
    assert torch.equal(dst[:, 2], src[:, 1, 0])
    assert torch.equal(dst[:, [0, 1, 3]], torch.zeros(2, 3, 6))  # step -1: request left alone


def test_copy_tracked_rows_only_where_tracked():
    conv, ssm = rand(3, 6, 2, seed=17), rand(3, 6, 4, seed=18)  # [layers, pool, ...]
    want_conv, want_ssm = conv.clone(), ssm.clone()
    mamba_state_ops.copy_tracked_rows((conv, ssm), torch.tensor([1, 2, 3]), torch.tensor([True, False, True]),
                                      torch.tensor([4, 5, 0]), batch_size=3, all_layers=True)
    for src, dst in ((1, 4), (3, 0)):
        want_conv[:, dst], want_ssm[:, dst] = want_conv[:, src], want_ssm[:, src]
    assert torch.equal(conv, want_conv) and torch.equal(ssm, want_ssm)
