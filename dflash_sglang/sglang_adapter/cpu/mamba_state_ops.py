"""Torch bodies for SGLang's Mamba-state bookkeeping kernels (`kernels/ops/mamba/mamba_state_scatter_triton.py`).

Two moves between pool rows, both Triton on GPUs:
- track (extra_buffer radix cache): copy each tracked request's conv and SSM rows, `cache_indices[i]` ->
  `mamba_track_indices[i]`, so that the radix tree can later restore the state of a prefix;
- commit after a verify: put the state of a chosen step, `src[:, src_row[i], step[i]]` (the per-step states
  TARGET_VERIFY saved), into `dst[:, dst_index[i]]`, for every request whose step is >= 0. SGLang calls it
  with the last accepted step (the request's own pool row) and with the track-interval step (its track row).

Plain torch only: no sglang import.
"""

from __future__ import annotations

import torch


def copy_tracked_rows(
    pools: tuple[torch.Tensor, ...],  # each [pool_size, ...] or, with `all_layers`, [layers, pool_size, ...]
    cache_indices: torch.Tensor,  # [>= bs] source row of each request
    track_mask: torch.Tensor,  # [>= bs] bool
    track_indices: torch.Tensor,  # [>= bs] destination row of each request
    batch_size: int,
    all_layers: bool,
    skip_freed: bool = False,  # the unified pool marks freed slots -1
) -> None:
    tracked = track_mask[:batch_size].bool()  # [bs]
    src = cache_indices[:batch_size].long()[tracked]
    dst = track_indices[:batch_size].long()[tracked]
    if skip_freed:
        live = (src >= 0) & (dst >= 0)
        src, dst = src[live], dst[live]
    if src.numel() == 0:
        return
    for pool in pools:
        if all_layers:
            pool[:, dst] = pool[:, src]
        else:
            pool[dst] = pool[src]


def scatter_steps(
    dst: torch.Tensor,  # [layers, cache_size, *state]
    src: torch.Tensor,  # [layers, rows, steps, *state] (may be a strided view)
    dst_indices: torch.Tensor,  # [n]
    step_indices: torch.Tensor,  # [n] the step to take; < 0: leave this request alone
    src_indices: torch.Tensor | None = None,  # [n] row of each request in src; default 0..n-1
) -> None:
    """dst[:, dst_indices[i]] = src[:, src_indices[i], step_indices[i]] where the step is valid."""
    assert dst.shape[0] == src.shape[0] and dst.shape[2:] == src.shape[3:], (dst.shape, src.shape)
    steps = step_indices.long()
    assert dst_indices.shape == steps.shape, (dst_indices.shape, steps.shape)
    rows = torch.arange(steps.shape[0], device=steps.device) if src_indices is None else src_indices.long()
    targets = dst_indices.long()
    valid = ((steps >= 0) & (steps < src.shape[2]) & (targets >= 0) & (targets < dst.shape[1])
             & (rows >= 0) & (rows < src.shape[1]))
    if not bool(valid.any()):
        return
    dst[:, targets[valid]] = src[:, rows[valid], steps[valid]].to(dst.dtype)
