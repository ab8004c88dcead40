"""State dicts as Hugging Face checkpoints store them.

transformers 5 keeps a MoE layer's experts fused in memory (`mlp.experts.gate_up_proj` [E, 2*I, H],
`mlp.experts.down_proj` [E, H, I]) and fuses per-expert checkpoint weights when it loads them, but
`state_dict()` returns the fused tensors. SGLang's loaders (qwen3_next, qwen2_moe) read only the
per-expert names, so every target we write goes through `checkpoint_state_dict`.
"""

from __future__ import annotations

import torch

_GATE_UP = "mlp.experts.gate_up_proj"
_DOWN = "mlp.experts.down_proj"


def checkpoint_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`state` with fused expert tensors split into `mlp.experts.{e}.{gate,up,down}_proj.weight`."""
    out = {}
    for name, tensor in state.items():
        if name.endswith(_GATE_UP):
            prefix = name[: -len("gate_up_proj")]
            gate, up = tensor.chunk(2, dim=1)  # [E, I, H] each: transformers splits gate first, then up
            for e in range(tensor.shape[0]):
                out[f"{prefix}{e}.gate_proj.weight"] = gate[e].contiguous()
                out[f"{prefix}{e}.up_proj.weight"] = up[e].contiguous()
        elif name.endswith(_DOWN):
            prefix = name[: -len("down_proj")]
            for e in range(tensor.shape[0]):
                out[f"{prefix}{e}.down_proj.weight"] = tensor[e].contiguous()  # [H, I]
        else:
            out[name] = tensor
    return out
