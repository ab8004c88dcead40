"""A new drafter for a given target: its z-lab config.json dict and seeded initial weights.

The drafter's layers have the target's width, heads and RoPE (it reuses the target's embedding and
`lm_head`, so the hidden size must match); z-lab's drafters are Qwen3 layers (with q/k norms) for
Llama targets too. The target layers default to z-lab's `build_target_layer_ids`. Or start from an
existing checkpoint (for the bundled pair: the random draw of `scripts/make_tiny_pair.py`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from dflash_sglang.config import DEFAULT_MASK_TOKEN, DFlashConfig, build_target_layer_ids, read_config_json
from dflash_sglang.drafter import Drafter, load_drafter

# Copied from the target's config when present (Qwen3 and Llama spell them alike).
_SHARED_KEYS = (
    "hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads", "head_dim", "hidden_act",
    "rms_norm_eps", "max_position_embeddings", "vocab_size", "rope_theta", "rope_parameters", "rope_scaling",
)


def drafter_config_dict(
    target_config: dict[str, Any],
    num_layers: int,
    block_size: int,
    mask_token_id: int,
    target_layer_ids: list[int] | None = None,
) -> dict[str, Any]:
    """A z-lab `DFlashDraftModel` config.json for `target_config` (a nested `text_config` is read)."""
    text = target_config.get("text_config") or target_config
    shared = {k: text[k] for k in _SHARED_KEYS if text.get(k) is not None}
    shared.setdefault("head_dim", text["hidden_size"] // text["num_attention_heads"])  # Llama leaves it implicit
    num_target_layers = text["num_hidden_layers"]
    if target_layer_ids is None:
        target_layer_ids = build_target_layer_ids(num_target_layers, num_layers)
    return {
        "architectures": ["DFlashDraftModel"],
        "model_type": "qwen3",
        **shared,
        "num_hidden_layers": num_layers,
        "layer_types": ["full_attention"] * num_layers,
        "attention_bias": False,
        "tie_word_embeddings": False,
        "num_target_layers": num_target_layers,
        "block_size": block_size,
        "dflash_config": {
            "target_layer_ids": list(target_layer_ids),
            "mask_token_id": mask_token_id,
            "block_size": block_size,
        },
    }


def mask_token_id(tokenizer_vocab: dict[str, int], token: str = DEFAULT_MASK_TOKEN) -> int:
    if token not in tokenizer_vocab:
        raise ValueError(
            f"mask_token_id: expected the tokenizer to have {token!r} (or pass --mask-token-id), got no such token"
        )
    return tokenizer_vocab[token]


def new_drafter(config: DFlashConfig, seed: int, std: float = 0.02) -> Drafter:
    """Matrices N(0, std) from a seeded generator (in parameter-name order), norm scales one."""
    drafter = Drafter(config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, param in sorted(drafter.named_parameters()):
            if param.ndim >= 2:
                param.normal_(0.0, std, generator=generator)
            else:
                param.fill_(1.0)
    return drafter


def drafter_from_init(init_dir: Path, target_dir: Path) -> Drafter:
    """A checkpoint to continue from, in fp32 and trainable."""
    drafter = load_drafter(init_dir, target_dir, dtype=torch.float32)
    return drafter.train().requires_grad_(True)


def config_for_target(target: Path | dict[str, Any], drafter_dict: dict[str, Any]) -> DFlashConfig:
    """The parsed config of `drafter_dict` against the target's config.json (a dir or its dict)."""
    return DFlashConfig.from_dicts(drafter_dict, target if isinstance(target, dict) else read_config_json(target))
