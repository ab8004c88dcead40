"""Torch bodies for the short causal convolution of Gated DeltaNet layers, over SGLang's conv-state pool.

A GDN layer convolves its mixed q/k/v channels with a depthwise causal kernel of width W (4 in Qwen3-Next),
then SiLU. A request's conv state is the window of its last W-1 inputs, one row of the pool
`conv_states[slots, dim, W-1]`. These are the semantics of SGLang's `causal_conv1d_fn` / `causal_conv1d_update`
kernels (Triton on GPUs, `sgl_kernel.causal_conv1d_*_cpu` in SGLang's CPU build, which is not on PyPI):
- prefill: each request convolves `[its window | its new tokens]`, the window being its pool row when it
  continues a saved state (chunked prefill, radix hit) and zeros otherwise; the row then holds its last W-1 inputs;
- update (decode, verify): the same for a fixed number of new tokens per request. In TARGET_VERIFY the pool
  row is still shifted by the whole block, and the window after each step t is also stored at
  `intermediate_conv_window[row, t]`, so that the commit after acceptance can pick the window of the last
  accepted step.

Rows whose slot index is PAD_SLOT_ID are padding: their output is computed but no state is written.
Plain torch only: no sglang import, so the unit tier tests these against transformers' own torch conv.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PAD_SLOT_ID = -1  # SGLang's slot index of a padding request


def _activate(out: torch.Tensor, activation: str | None | bool) -> torch.Tensor:
    if activation in (True, "silu", "swish"):
        return F.silu(out)
    assert activation in (None, False), f"unsupported conv activation {activation!r}"
    return out


def _convolve(seq: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, new: int) -> torch.Tensor:
    """Depthwise causal conv of `seq` [B, dim, W-1+new] in float32; the outputs of its last `new` positions."""
    dim, width = weight.shape
    assert seq.shape[1] == dim and seq.shape[2] == width - 1 + new, (seq.shape, weight.shape, new)
    bias32 = None if bias is None else bias.float()
    return F.conv1d(seq, weight.float().unsqueeze(1), bias32, groups=dim)  # [B, dim, new]


def causal_conv1d_prefill(
    x: torch.Tensor,  # [dim, num_tokens] the batch's new tokens, request after request
    weight: torch.Tensor,  # [dim, W]
    bias: torch.Tensor | None,  # [dim]
    conv_states: torch.Tensor,  # [slots, dim, W-1] written: each request's row gets its last W-1 inputs
    query_start_loc: torch.Tensor,  # [bs + 1] where each request starts in x
    cache_indices: torch.Tensor,  # [bs] pool row of each request
    has_initial_state: torch.Tensor | None,  # [bs] bool: continue the saved window, else start from zeros
    activation: str | None | bool = "silu",
) -> torch.Tensor:  # [dim, num_tokens]
    dim, width = weight.shape
    assert x.shape[0] == dim and conv_states.shape[1:] == (dim, width - 1), (x.shape, conv_states.shape, weight.shape)
    out = torch.empty_like(x)
    starts = query_start_loc.tolist()
    slots = cache_indices.tolist()
    continues = [False] * len(slots) if has_initial_state is None else has_initial_state.tolist()
    for r, slot in enumerate(slots):
        start, end = starts[r], starts[r + 1]
        if slot == PAD_SLOT_ID or end == start:
            continue
        window = conv_states[slot].float() if continues[r] else x.new_zeros(dim, width - 1, dtype=torch.float32)
        seq = torch.cat([window, x[:, start:end].float()], dim=-1)  # [dim, W-1+n]
        out[:, start:end] = _activate(_convolve(seq[None], weight, bias, end - start)[0], activation).to(x.dtype)
        conv_states[slot] = seq[:, seq.shape[1] - (width - 1):].to(conv_states.dtype)
    return out


def causal_conv1d_update(
    x: torch.Tensor,  # [bs, dim] (decode) or [bs, dim, steps] (verify)
    conv_states: torch.Tensor,  # [slots, dim, W-1] written: each row shifted by the `steps` new inputs
    weight: torch.Tensor,  # [dim, W]
    bias: torch.Tensor | None,  # [dim]
    activation: str | None | bool,
    conv_state_indices: torch.Tensor,  # [bs] pool row of each request
    intermediate_conv_window: torch.Tensor | None = None,  # [rows, >= steps, dim, W-1] written per step
    intermediate_state_indices: torch.Tensor | None = None,  # [bs] row of each request in it
) -> torch.Tensor:  # like x
    dim, width = weight.shape
    steps_last = x.dim() == 3
    x3 = x if steps_last else x.unsqueeze(-1)  # [bs, dim, steps]
    bs, steps = x3.shape[0], x3.shape[2]
    assert x3.shape[1] == dim and conv_states.shape[1:] == (dim, width - 1), (x.shape, conv_states.shape)
    slots = conv_state_indices[:bs].long()
    real = slots != PAD_SLOT_ID  # [bs]
    windows = conv_states[slots.clamp(min=0)].float() * real[:, None, None]  # [bs, dim, W-1]
    seq = torch.cat([windows, x3.float()], dim=-1)  # [bs, dim, W-1+steps]
    out = _activate(_convolve(seq, weight, bias, steps), activation).to(x.dtype)  # [bs, dim, steps]
    conv_states[slots[real]] = seq[real, :, steps:].to(conv_states.dtype)
    if intermediate_conv_window is not None:
        assert intermediate_state_indices is not None, "per-step windows need their rows"
        rows = intermediate_state_indices[:bs].long()[real]
        for t in range(steps):  # the window after step t: inputs t+1 .. t+W-1 of seq
            intermediate_conv_window[rows, t] = seq[real, :, t + 1 : t + width].to(intermediate_conv_window.dtype)
    # In x's memory layout: SGLang views the verify output back through x's transposed strides.
    result = torch.empty_like(x3)
    result.copy_(out)
    return result if steps_last else result.squeeze(-1)
