"""Torch bodies for the small fused ops around the Gated DeltaNet kernels in SGLang's Qwen3-Next / Qwen3.5 layers.

Each has a Triton kernel on GPUs and an AMX-only (or missing) CPU kernel, and each is a line of torch:
- the gated RMSNorm after the recurrence: `weight * rmsnorm(x) * silu(gate)`, norm before gate, in float32,
  as transformers' `Qwen3NextRMSNormGated`;
- the shared expert's sigmoid gate in the MoE block: `sigmoid(x @ w) * shared_out`, added to the routed output
  or not (transformers: `sigmoid(shared_expert_gate(x)) * shared_expert(x)`);
- `x *= sigmoid(gate)` (the output gate of Qwen3.5's full attention).

Plain torch only: no sglang import.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_GATE_ACTIVATIONS = {"swish": F.silu, "silu": F.silu, "sigmoid": torch.sigmoid}


def rms_norm_gated(
    x: torch.Tensor,  # [num_tokens, V]
    gate: torch.Tensor,  # [num_tokens, V]
    weight: torch.Tensor | None,  # [V]
    eps: float,
    activation: str = "silu",
) -> torch.Tensor:  # [num_tokens, V] in x's dtype
    if activation not in _GATE_ACTIVATIONS:
        raise ValueError(f"gated RMSNorm activation: expected one of {sorted(_GATE_ACTIVATIONS)}, got {activation!r}")
    x32 = x.float()
    normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)
    if weight is not None:
        normed = weight.float() * normed
    return (normed * _GATE_ACTIVATIONS[activation](gate.float())).to(x.dtype)


def shared_expert_gate(
    hidden_states: torch.Tensor,  # [num_tokens, hidden]
    gate_weight: torch.Tensor,  # [hidden] (the [1, hidden] gate projection, squeezed)
    shared_output: torch.Tensor,  # [num_tokens, hidden]
) -> torch.Tensor:  # [num_tokens, hidden] float32
    gate = torch.sigmoid(hidden_states.float() @ gate_weight.float().reshape(-1))  # [num_tokens]
    return gate[:, None] * shared_output.float()


def sigmoid_mul_(x: torch.Tensor, gate: torch.Tensor) -> None:
    """x *= sigmoid(gate) in place; gate may be a strided [num_tokens, heads, head_dim] view of x's shape."""
    view = x.view(gate.shape)
    view.mul_(torch.sigmoid(gate.float()).to(x.dtype))
