"""Tiny drafter pairs for the unit tests: z-lab's reference model and ours, on the same random weights.

z-lab's `DFlashDraftModel` (dflash==0.1.0, our numerical oracle) is built from the same config.json
dict that `DFlashConfig` parses, so both sides read the same file.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from dflash.model import DFlash2DraftModel, DFlashDraftModel, _draft_value
from transformers import Qwen3Config

from dflash_sglang.config import DFlashConfig
from dflash_sglang.drafter import Drafter

HIDDEN = 64
VOCAB = 500
MASK_ID = 3
TARGET = {"num_hidden_layers": 8, "hidden_size": HIDDEN, "vocab_size": VOCAB}
MIXED = dict(  # Qwen3.6-style: causal sliding-window layers around a full non-causal one
    num_hidden_layers=3,
    num_key_value_heads=2,
    layer_types=["sliding_attention", "full_attention", "sliding_attention"],
    use_sliding_window=True,
    sliding_window=6,
)


def drafter_dict(**overrides: Any) -> dict[str, Any]:
    """A z-lab style config.json for a tiny drafter; `dflash_config` entries merge into the default."""
    d: dict[str, Any] = {
        "architectures": ["DFlashDraftModel"],
        "model_type": "qwen3",
        "hidden_size": HIDDEN,
        "intermediate_size": 128,
        "num_hidden_layers": 1,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "head_dim": 16,
        "vocab_size": VOCAB,
        "rms_norm_eps": 1e-6,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
        "num_target_layers": 8,
        "block_size": 16,
        "dflash_config": {"mask_token_id": MASK_ID, "target_layer_ids": [1, 4]},
    }
    dflash = overrides.pop("dflash_config", {})
    d.update(copy.deepcopy(overrides))
    d["dflash_config"] = {**d["dflash_config"], **dflash}
    return d


def dflash2_dict(**overrides: Any) -> dict[str, Any]:
    """Shaped like z-lab's published DFlash2 config: non-causal sliding layers, conv, selector, softcap."""
    dflash = {
        "conv_kernel_size": 2,
        "conv_group_size": 16,
        "selector_rank": 8,
        "selector_top_k": 6,
        "output_multiplier": 0.7,
        "final_logit_softcapping": 4.0,
        **overrides.pop("dflash_config", {}),
    }
    base = dict(
        architectures=["DFlash2DraftModel"],
        num_hidden_layers=3,
        num_key_value_heads=2,
        is_causal=False,
        layer_types=["sliding_attention"] * 3,
        use_sliding_window=True,
        sliding_window=6,
        dflash_config=dflash,
    )
    base.update(overrides)
    return drafter_dict(**base)


def randomize_(model: torch.nn.Module, seed: int) -> None:
    """Weights of a useful scale (z-lab leaves DFlash2's conv kernels uninitialised)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            noise = torch.randn(p.shape, generator=gen)
            if name.endswith("norm.weight"):
                p.copy_(1 + 0.1 * noise)
            elif name.endswith("codebook.weight") or name.endswith("base_kernel"):
                p.copy_(0.5 * noise)
            else:
                p.copy_(noise * p.shape[-1] ** -0.5)


def zlab_model(d: dict[str, Any], seed: int = 0) -> DFlashDraftModel:
    config = Qwen3Config(**copy.deepcopy(d))
    config._attn_implementation = "sdpa"
    cls = DFlash2DraftModel if d["architectures"][0] == "DFlash2DraftModel" else DFlashDraftModel
    model = cls(config).eval()
    randomize_(model, seed)
    return model


def ours_like(zlab: torch.nn.Module, d: dict[str, Any]) -> Drafter:
    ours = Drafter(DFlashConfig.from_dicts(d, TARGET)).eval()
    ours.load_state_dict(zlab.state_dict(), strict=True)
    return ours


def random_inputs(seed: int, num_features: int = 2) -> dict[str, torch.Tensor]:
    """Target features for 64 positions, the target's embedding and lm_head weights."""
    gen = torch.Generator().manual_seed(seed)
    return {
        "features": torch.randn(1, 64, num_features * HIDDEN, generator=gen),  # [1, 64, n_feat * hidden]
        "embed": torch.randn(VOCAB, HIDDEN, generator=gen),  # [vocab, hidden]
        "lm_head": 0.3 * torch.randn(VOCAB, HIDDEN, generator=gen),  # [vocab, hidden]
        "anchors": torch.randint(0, VOCAB, (64,), generator=gen),  # [64] anchor for a block at each start
    }


def block_ids(anchor: int | torch.Tensor, block_size: int) -> torch.Tensor:
    ids = torch.full((1, block_size), MASK_ID, dtype=torch.long)  # [1, blk]
    ids[0, 0] = anchor
    return ids


def lm_head_module(weight: torch.Tensor) -> torch.nn.Linear:
    head = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    head.weight.data = weight
    return head


@torch.no_grad()
def zlab_draft(
    zlab: torch.nn.Module, inputs: dict[str, torch.Tensor], ctx_len: int, block_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """One z-lab call, as `dflash_generate` makes it: context positions [0, ctx), block [ctx, ctx + blk)."""
    ids = block_ids(inputs["anchors"][ctx_len], block_size)  # [1, blk]
    scale = float(_draft_value(zlab.config, "input_embedding_scale", 1.0))
    hidden = zlab(
        target_hidden=inputs["features"][:, :ctx_len],
        noise_embedding=F.embedding(ids, inputs["embed"]) * scale,
        position_ids=torch.arange(ctx_len + block_size)[None],
    )  # [1, blk, hidden]
    head = lm_head_module(inputs["lm_head"])
    if isinstance(zlab, DFlash2DraftModel):
        tokens = zlab.propose(hidden[:, 1:], ids[:, 0], head, 0.0)[0]
    else:
        tokens = torch.argmax(zlab.compute_logits(hidden[:, 1:], head), dim=-1)
    return hidden, tokens


@torch.no_grad()
def ours_draft(
    ours: Drafter, inputs: dict[str, torch.Tensor], ctx_len: int, block_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    ids = block_ids(inputs["anchors"][ctx_len], block_size)  # [1, blk]
    context = ours.new_context(1)
    features = inputs["features"][:, :ctx_len].to(ours.dtype)
    ours.extend_context(context, features, torch.arange(ctx_len)[None])
    positions = torch.arange(ctx_len, ctx_len + block_size)[None]  # [1, blk]
    hidden = ours(ours.embed_block(ids, inputs["embed"].to(ours.dtype)), positions, context)
    return hidden, ours.propose(hidden, ids[:, 0], inputs["lm_head"].to(ours.dtype))
