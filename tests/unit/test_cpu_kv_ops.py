"""The torch fallbacks for SGLang's KV-slot ops, each against a plain per-request loop or a hand case.

Imports only torch and the op bodies (no sglang), so it runs in the unit tier.
"""

from __future__ import annotations

import pytest
import torch

from dflash_sglang.sglang_adapter.cpu import kv_ops

POOL_LEN = 32
UNTOUCHED = -7  # sentinel: entries an op must not write


def ragged_case(offset_dtype: torch.dtype, seed: int = 0):
    """5 requests in a shuffled pool of 8 rows; request 2 has nothing to write (start == end)."""
    g = torch.Generator().manual_seed(seed)
    req_pool_indices = torch.tensor([6, 0, 3, 7, 2])  # [bs] not in pool order
    start = torch.tensor([0, 5, 9, 30, 1], dtype=offset_dtype)  # [bs]
    end = torch.tensor([4, 13, 9, 32, 2], dtype=offset_dtype)  # [bs] 30..32 touches the row's end
    total = int((end - start).sum())
    out_cache_loc = torch.randperm(1000, generator=g)[:total]  # [total] int64, distinct slots
    return req_pool_indices, start, end, out_cache_loc


@pytest.mark.parametrize("offset_dtype", [torch.int32, torch.int64], ids=["off-int32", "off-int64"])
def test_assign_req_to_token_pool_matches_loop(offset_dtype):
    req_pool_indices, start, end, out_cache_loc = ragged_case(offset_dtype)
    got = torch.full((8, POOL_LEN), UNTOUCHED, dtype=torch.int32)
    want = got.clone()
    kv_ops.assign_req_to_token_pool(req_pool_indices, got, start, end, out_cache_loc, POOL_LEN)
    flat = 0
    for r, s, e in zip(req_pool_indices.tolist(), start.tolist(), end.tolist()):
        for pos in range(s, e):
            want[r, pos] = int(out_cache_loc[flat])
            flat += 1
    assert torch.equal(got, want)


@pytest.mark.parametrize("offset_dtype", [torch.int32, torch.int64], ids=["off-int32", "off-int64"])
def test_assign_extend_cache_locs_matches_loop_and_keeps_tail(offset_dtype):
    req_pool_indices, start, end, _ = ragged_case(offset_dtype)
    req_to_token = torch.randperm(8 * POOL_LEN, generator=torch.Generator().manual_seed(1))
    req_to_token = req_to_token.view(8, POOL_LEN).to(torch.int32)  # [rows, pool_len]
    total = int((end - start).sum())
    got = torch.full((total + 3,), UNTOUCHED, dtype=torch.int64)  # sized for more than needed
    kv_ops.assign_extend_cache_locs(req_pool_indices, req_to_token, start, end, got, POOL_LEN)
    want = [int(req_to_token[r, pos]) for r, s, e in zip(req_pool_indices.tolist(), start.tolist(),
                                                          end.tolist()) for pos in range(s, e)]
    assert got.tolist() == want + [UNTOUCHED] * 3


def test_assign_extend_inverts_assign_req_to_token_pool():
    req_pool_indices, start, end, out_cache_loc = ragged_case(torch.int64, seed=3)
    req_to_token = torch.zeros(8, POOL_LEN, dtype=torch.int32)
    kv_ops.assign_req_to_token_pool(req_pool_indices, req_to_token, start, end, out_cache_loc, POOL_LEN)
    back = torch.empty_like(out_cache_loc)
    kv_ops.assign_extend_cache_locs(req_pool_indices, req_to_token, start, end, back, POOL_LEN)
    assert torch.equal(back, out_cache_loc)


def test_fill_accept_out_cache_loc_packs_accepted_slots_in_order():
    accept_index = torch.tensor([[0, 1, -1], [3, -1, -1], [6, 7, 8]], dtype=torch.int32)  # [bs, num_spec]
    out_cache_loc = torch.arange(100, 109)  # [bs * num_draft] slot of each draft position
    got = torch.full((9,), UNTOUCHED, dtype=torch.int64)
    kv_ops.fill_accept_out_cache_loc(accept_index, out_cache_loc, got)
    assert got.tolist() == [100, 101, 103, 106, 107, 108] + [UNTOUCHED] * 3


def pool_buffers(num_slots: int, layers: int, dtype: torch.dtype):
    """K and V buffers like SGLang's MHA pool: one [slots, heads, head_dim] tensor each, per layer."""
    g = torch.Generator().manual_seed(7)
    bufs = [torch.randn(num_slots, 2, 5, generator=g).to(dtype) for _ in range(2 * layers)]
    data_ptrs = torch.tensor([b.data_ptr() for b in bufs], dtype=torch.uint64)  # [2 * layers]
    strides = torch.tensor([b[0].numel() * b.element_size() for b in bufs], dtype=torch.int64)
    return bufs, data_ptrs, strides


@pytest.mark.parametrize("tgt, src", [
    pytest.param([5, 6, 7], [1, 2, 3], id="disjoint"),
    pytest.param([1, 2, 3], [2, 3, 4], id="overlap-shift-left"),  # a row is read after being a target
    pytest.param([3, 4, 5], [2, 3, 4], id="overlap-shift-right"),
    pytest.param([0, 9], [9, 0], id="swap-first-last"),
    pytest.param([4], [4], id="self"),
])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32], ids=["bf16", "fp32"])
def test_copy_all_layer_kv_cache_gathers_before_scatter(tgt, src, dtype):
    bufs, data_ptrs, strides = pool_buffers(num_slots=10, layers=2, dtype=dtype)
    want = []
    for b in bufs:
        before = b.clone()
        after = b.clone()
        for t, s in zip(tgt, src):
            after[t] = before[s]
        want.append(after)
    kv_ops.copy_all_layer_kv_cache(data_ptrs, strides, torch.tensor(tgt), torch.tensor(src))
    for got, expected in zip(bufs, want):
        assert torch.equal(got, expected)


def test_copy_all_layer_kv_cache_with_no_locations_is_a_no_op():
    bufs, data_ptrs, strides = pool_buffers(num_slots=4, layers=1, dtype=torch.float32)
    before = [b.clone() for b in bufs]
    empty = torch.zeros(0, dtype=torch.int64)
    kv_ops.copy_all_layer_kv_cache(data_ptrs, strides, empty, empty)
    assert all(torch.equal(a, b) for a, b in zip(bufs, before))
