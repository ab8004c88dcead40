"""Torch bodies for the KV-slot bookkeeping ops `torch.ops.sgl_kernel.*_cpu` that only SGLang's separate
CPU kernel build provides (it is not on PyPI). Their contracts are those of the Triton kernels they stand
in for (`assign_req_to_token_pool`, `assign_extend_cache_locs`, `fill_accept_out_cache_loc`,
`copy_all_layer_kv_cache_tiled`); `ops.py` registers them.

Plain torch only: no sglang import, so the unit tier can test them directly.
"""

from __future__ import annotations

import ctypes

import torch

REJECTED = -1  # accept_index entry of a draft slot that was not accepted


def _ragged_slots(
    req_pool_indices: torch.Tensor,  # [bs]
    start_offset: torch.Tensor,  # [bs]
    end_offset: torch.Tensor,  # [bs]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, col) of every `req_to_token` entry in `[start, end)` of each request, request after request.

    The flat order is the one the kernels use for `out_cache_loc`: request r's slots start at
    sum(end - start) over the requests before it.
    """
    lens = (end_offset - start_offset).long()  # [bs]
    total = int(lens.sum())
    rows = torch.repeat_interleave(req_pool_indices.long(), lens)  # [total]
    first_flat = torch.cumsum(lens, 0) - lens  # [bs] where each request starts in the flat order
    cols = torch.arange(total, device=lens.device) + torch.repeat_interleave(
        start_offset.long() - first_flat, lens
    )  # [total]
    return rows, cols


def assign_req_to_token_pool(
    req_pool_indices: torch.Tensor,  # [bs]
    req_to_token: torch.Tensor,  # [max_reqs, pool_len] int32, written
    start_offset: torch.Tensor,  # [bs]
    end_offset: torch.Tensor,  # [bs]
    out_cache_loc: torch.Tensor,  # [>= sum(end - start)] int64
    pool_len: int,
) -> None:
    """req_to_token[r, start:end] = the next (end - start) slots of out_cache_loc, for each request r."""
    assert req_to_token.shape[1] == pool_len, (req_to_token.shape, pool_len)
    rows, cols = _ragged_slots(req_pool_indices, start_offset, end_offset)
    assert rows.numel() <= out_cache_loc.numel(), (rows.numel(), out_cache_loc.shape)
    req_to_token[rows, cols] = out_cache_loc[: rows.numel()].to(req_to_token.dtype)


def assign_extend_cache_locs(
    req_pool_indices: torch.Tensor,  # [bs]
    req_to_token: torch.Tensor,  # [max_reqs, pool_len] int32
    start_offset: torch.Tensor,  # [bs]
    end_offset: torch.Tensor,  # [bs]
    out_cache_loc: torch.Tensor,  # [>= sum(end - start)] int64, written
    pool_len: int,
) -> None:
    """The inverse gather: out_cache_loc's next (end - start) entries = req_to_token[r, start:end]."""
    assert req_to_token.shape[1] == pool_len, (req_to_token.shape, pool_len)
    rows, cols = _ragged_slots(req_pool_indices, start_offset, end_offset)
    # Callers may size out_cache_loc for the worst case and leave its tail untouched.
    assert rows.numel() <= out_cache_loc.numel(), (rows.numel(), out_cache_loc.shape)
    out_cache_loc[: rows.numel()] = req_to_token[rows, cols].to(out_cache_loc.dtype)


def fill_accept_out_cache_loc(
    accept_index: torch.Tensor,  # [bs, num_spec] or flat; REJECTED where a draft was not accepted
    out_cache_loc: torch.Tensor,  # [bs * num_draft] int64
    accept_out_cache_loc: torch.Tensor,  # [>= num_accepted] int64, written
) -> None:
    """Pack the KV slots of the accepted tokens, in accept_index order, skipping rejected entries."""
    flat = accept_index.reshape(-1).long()  # [bs * num_spec]
    accepted = flat[flat != REJECTED]  # [num_accepted]
    accept_out_cache_loc[: accepted.numel()] = out_cache_loc[accepted]


def _byte_rows(address: int, row_bytes: int, num_rows: int) -> torch.Tensor:
    """A [num_rows, row_bytes] uint8 view of memory the pool owns; only the rows we touch are mapped."""
    raw = (ctypes.c_uint8 * (row_bytes * num_rows)).from_address(address)
    return torch.frombuffer(raw, dtype=torch.uint8).view(num_rows, row_bytes)


def copy_all_layer_kv_cache(
    data_ptrs: torch.Tensor,  # [2 * layers] uint64 base address of each K and V buffer
    strides: torch.Tensor,  # [2 * layers] int64 bytes per slot row of each buffer
    tgt_loc: torch.Tensor,  # [num_locs]
    src_loc: torch.Tensor,  # [num_locs]
) -> None:
    """buf[tgt_loc[i]] = buf[src_loc[i]] for every buffer. The pool hands us raw addresses, not tensors."""
    assert data_ptrs.numel() == strides.numel(), (data_ptrs.shape, strides.shape)
    assert tgt_loc.numel() == src_loc.numel(), (tgt_loc.shape, src_loc.shape)
    if tgt_loc.numel() == 0:
        return
    tgt, src = tgt_loc.long(), src_loc.long()
    num_rows = int(torch.maximum(tgt.max(), src.max())) + 1
    for address, row_bytes in zip(data_ptrs.view(torch.int64).tolist(), strides.tolist()):
        rows = _byte_rows(address, row_bytes, num_rows)  # [num_rows, row_bytes]
        # Advanced indexing gathers every source row before any target row is written,
        # so overlapping src/tgt are safe, as in the tiled Triton kernel.
        rows[tgt] = rows[src]
