"""TARGET_VERIFY for SGLang's `torch_native` attention backend, the only one that runs on this CPU.

Stock `torch_native.forward_extend` needs `extend_prefix_lens`/`extend_seq_lens`, which TARGET_VERIFY
batches leave None: there `seq_lens` is the committed prefix and every request carries the same
`q_len` new tokens (a verify block, or DFLASH's draft block). It also ignores `spec_info.custom_mask`,
so a tree (NGRAM) would be verified wrongly. This path handles both, per request:
  keys/values = the prefix from `req_to_token`, then the block's own slots `out_cache_loc`;
  mask        = all visible for ENCODER_ONLY layers (the drafter's non-causal block),
                else `spec_info.custom_mask` if set, else causal; then the layer's sliding window.
"""

from __future__ import annotations

import torch
from torch.nn.functional import scaled_dot_product_attention

from dflash_sglang.log import log_once

FORWARD_EXTEND = "sglang.srt.layers.attention.torch_native_backend.TorchNativeAttnBackend.forward_extend"


def is_qlen_layout(custom_mask: torch.Tensor, prefixes: list[int], q_len: int) -> bool:
    """QLEN layout [bs * q_len * q_len] holds the block part only (NGRAM on CPU); the full layout holds
    q_len * (prefix + q_len) per request and may be padded. With all prefixes 0 the two coincide."""
    if custom_mask.numel() == len(prefixes) * q_len * q_len and any(prefixes):
        return True
    assert custom_mask.numel() >= sum(q_len * (p + q_len) for p in prefixes), (custom_mask.shape, prefixes)
    return False


def block_mask(layer, custom_mask, qlen_layout: bool, r: int, prefixes: list[int], q_len: int, device):
    """[q_len, prefix + q_len] bool for request r, True = may attend; None = everything visible."""
    from sglang.srt.layers.radix_attention import AttentionType

    prefix, kv_len = prefixes[r], prefixes[r] + q_len
    non_causal = layer.attn_type == AttentionType.ENCODER_ONLY
    q_pos = torch.arange(prefix, kv_len, device=device)[:, None]  # [q_len, 1]
    k_pos = torch.arange(kv_len, device=device)[None, :]  # [1, kv_len]
    if non_causal:
        visible = None
    elif custom_mask is None:
        visible = k_pos <= q_pos
    elif qlen_layout:
        tree = custom_mask[r * q_len * q_len : (r + 1) * q_len * q_len].view(q_len, q_len).bool()
        visible = torch.cat([torch.ones(q_len, prefix, dtype=torch.bool, device=device), tree], 1)
    else:
        start = sum(q_len * (p + q_len) for p in prefixes[:r])
        visible = custom_mask[start : start + q_len * kv_len].view(q_len, kv_len).bool()
    window = layer.sliding_window_size  # SGLang's window_left: a query sees keys q_pos - window .. q_pos
    if window is not None and window > -1:
        in_window = q_pos - k_pos <= window  # [q_len, kv_len]
        if non_causal:  # symmetric, as z-lab's drafter masks a non-causal sliding layer
            in_window &= k_pos - q_pos <= window
        visible = in_window if visible is None else visible & in_window
    return visible


def request_views(backend, layer, forward_batch, q_len: int) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """Per request: its key/value slots [kv_len] and its mask (block_mask). Every layer of one forward reads
    the same slots, and layers of one kind the same mask, so they are built once per forward and kind: on
    this CPU that per-request indexing cost about as much as the attention itself, layer after layer."""
    from sglang.srt.layers.radix_attention import AttentionType

    kind = (layer.attn_type == AttentionType.ENCODER_ONLY, layer.sliding_window_size)
    cache = forward_batch.__dict__.setdefault("_dflash_request_views", {})
    if kind in cache:
        return cache[kind]
    prefixes = forward_batch.seq_lens.tolist()  # committed prefix; `seq_lens_cpu` may be an upper bound
    custom_mask = getattr(forward_batch.spec_info, "custom_mask", None)
    qlen_layout = custom_mask is not None and is_qlen_layout(custom_mask, prefixes, q_len)
    req_to_token = backend.req_to_token_pool.req_to_token
    block_loc = forward_batch.out_cache_loc  # [bs * q_len] the block's KV slots
    views = []
    for r, req in enumerate(forward_batch.req_pool_indices.tolist()):
        rows = slice(r * q_len, (r + 1) * q_len)
        kv_loc = torch.cat([req_to_token[req, : prefixes[r]].long(), block_loc[rows].long()])  # [kv_len]
        views.append((kv_loc, block_mask(layer, custom_mask, qlen_layout, r, prefixes, q_len, block_loc.device)))
    cache[kind] = views
    return views


def forward_target_verify(backend, q, k, v, layer, forward_batch, save_kv_cache=True):
    from sglang.srt.mem_cache.memory_pool import KVWriteLoc

    assert not layer.is_cross_attention, "TARGET_VERIFY with cross-attention is not supported"
    if save_kv_cache and k is not None and v is not None:
        loc = KVWriteLoc(forward_batch.out_cache_loc, backend.swa_out_cache_loc)
        backend.token_to_kv_pool.set_kv_buffer(layer, loc, k, v)
    q_ = q.view(-1, layer.tp_q_head_num, layer.qk_head_dim)  # [bs * q_len, heads, head_dim]
    out = q.new_empty(q_.shape[0], layer.tp_q_head_num, layer.v_head_dim)  # [bs * q_len, heads, v_dim]
    bs = forward_batch.req_pool_indices.shape[0]
    q_len = q_.shape[0] // bs
    assert q_len * bs == q_.shape[0], (q_.shape, bs)
    k_cache = backend.token_to_kv_pool.get_key_buffer(layer.layer_id)  # [slots, kv_heads, head_dim]
    v_cache = backend.token_to_kv_pool.get_value_buffer(layer.layer_id)
    for r, (kv_loc, mask) in enumerate(request_views(backend, layer, forward_batch, q_len)):
        rows = slice(r * q_len, (r + 1) * q_len)
        out[rows] = scaled_dot_product_attention(
            q_[rows].transpose(0, 1),  # [heads, q_len, head_dim]
            k_cache[kv_loc].transpose(0, 1).to(q.dtype),  # [kv_heads, kv_len, head_dim]
            v_cache[kv_loc].transpose(0, 1).to(q.dtype),
            attn_mask=mask,
            scale=layer.scaling,
            enable_gqa=layer.tp_q_head_num != layer.tp_k_head_num,
        ).transpose(0, 1)
    return out.view(-1, layer.tp_q_head_num * layer.v_head_dim)


def around_forward_extend(original, backend, q, k, v, layer, forward_batch, save_kv_cache=True, **kwargs):
    """HookRegistry AROUND hook: TARGET_VERIFY goes to our path, everything else to stock torch_native."""
    if not forward_batch.forward_mode.is_target_verify():
        return original(backend, q, k, v, layer, forward_batch, save_kv_cache=save_kv_cache, **kwargs)
    log_once("cpu-verify-attention", "CPU fallback: torch_native attention runs TARGET_VERIFY "
             "through dflash-sglang's per-request SDPA path")
    return forward_target_verify(backend, q, k, v, layer, forward_batch, save_kv_cache)


def install() -> None:
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    HookRegistry.register(FORWARD_EXTEND, around_forward_extend, HookType.AROUND)
