"""z-lab checkpoints: `model.safetensors` (or a sharded `model.safetensors.index.json`) plus `config.json`.

Tensor names are z-lab's (`layers.{i}.self_attn.q_proj.weight`, `fc.weight`, ...), optionally
prefixed with `model.`. Published DFlash2 checkpoints store the selector codebooks without the
`.weight` suffix; both spellings load, and we save the published one. Loading is strict: a missing
or an unexpected tensor, or a wrong shape, raises `ValueError` naming it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from dflash_sglang.config import DFlashConfig, LayerAttention, TokenizerLike
from dflash_sglang.drafter.model import Drafter

WEIGHTS_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
# Module name -> the name published DFlash2 checkpoints use.
_PUBLISHED_NAMES = {
    "candidate_selector.predecessor_codebook.weight": "candidate_selector.predecessor_codebook",
    "candidate_selector.successor_codebook.weight": "candidate_selector.successor_codebook",
}
_MODULE_NAMES = {published: module for module, published in _PUBLISHED_NAMES.items()}


def read_checkpoint(directory: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint directory, by their stored names."""
    directory = Path(directory)
    if (directory / WEIGHTS_FILE).is_file():
        return load_file(directory / WEIGHTS_FILE)
    if not (directory / INDEX_FILE).is_file():
        raise ValueError(f"drafter weights: expected {WEIGHTS_FILE} or {INDEX_FILE} in {str(directory)!r}, got neither")
    with (directory / INDEX_FILE).open() as f:
        shards = sorted(set(json.load(f)["weight_map"].values()))
    tensors: dict[str, torch.Tensor] = {}
    for shard in shards:
        tensors.update(load_file(directory / shard))
    return tensors


def _module_name(stored: str) -> str:
    name = stored.removeprefix("model.")
    return _MODULE_NAMES.get(name, name)


def load_weights(drafter: Drafter, directory: str | Path) -> None:
    """A z-lab checkpoint's tensors into `drafter`, strictly: copied into its dtype, or, for a drafter
    built on the meta device, taken as stored."""
    load_state(drafter, read_checkpoint(directory), source=repr(str(directory)))


def load_state(drafter: Drafter, stored: Mapping[str, torch.Tensor], source: str) -> None:
    """Tensors by their stored (z-lab) names into `drafter`, strictly; `source` names them in errors."""
    by_module = {_module_name(name): name for name in stored}
    expected = drafter.state_dict()
    missing = sorted(_PUBLISHED_NAMES.get(n, n) for n in expected.keys() - by_module.keys())
    if missing:
        raise ValueError(f"drafter weights in {source}: expected {missing}, got no such tensors")
    unexpected = sorted(by_module[n] for n in by_module.keys() - expected.keys())
    if unexpected:
        raise ValueError(f"drafter weights in {source}: expected no other tensors, got {unexpected}")
    on_meta = drafter.fc.weight.is_meta
    state = {}
    for name, param in expected.items():
        tensor = stored[by_module[name]]
        if tensor.shape != param.shape:
            raise ValueError(
                f"drafter weight {by_module[name]!r}: expected shape {list(param.shape)}, got {list(tensor.shape)}"
            )
        state[name] = tensor if on_meta else tensor.to(param.dtype)
    drafter.load_state_dict(state, strict=True, assign=on_meta)


def load_drafter(
    drafter_dir: str | Path,
    target_dir_or_config: str | Path | Mapping[str, Any],
    *,
    tokenizer: TokenizerLike | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str = "cpu",
) -> Drafter:
    """Config and weights from a z-lab checkpoint; `dtype` defaults to the checkpoint's."""
    config = DFlashConfig.from_dirs(drafter_dir, target_dir_or_config, tokenizer)
    with torch.device("meta"):  # the weights come from the file: skip random initialisation
        drafter = Drafter(config)
    load_weights(drafter, drafter_dir)
    if dtype is None:
        dtype = drafter.fc.weight.dtype
    return drafter.to(device=device, dtype=dtype).eval()


def save_drafter(drafter: Drafter, directory: str | Path) -> None:
    """Write `config.json` and `model.safetensors` that z-lab's `from_pretrained` loads."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {**zlab_config_dict(drafter.config), "dtype": str(drafter.dtype).removeprefix("torch.")}
    with (directory / "config.json").open("w") as f:
        json.dump(config, f, indent=2)
    tensors = {_PUBLISHED_NAMES.get(n, n): t.detach().contiguous().cpu() for n, t in drafter.state_dict().items()}
    save_file(tensors, directory / WEIGHTS_FILE, metadata={"format": "pt"})


def _causal_override(kinds: tuple[LayerAttention, ...]) -> bool | None:
    """The one `is_causal` value z-lab needs to rebuild these layers (None: each layer's default)."""
    if all(k.causal == (k.layer_type == "sliding_attention") for k in kinds):
        return None
    causal = {k.causal for k in kinds}
    assert len(causal) == 1, f"per-layer causality {kinds} has no z-lab config"
    return causal.pop()


def zlab_config_dict(cfg: DFlashConfig) -> dict[str, Any]:
    """A config.json (Qwen3Config keys plus DFlash fields) from which z-lab rebuilds this drafter."""
    windows = {k.window for k in cfg.layer_attention if k.layer_type == "sliding_attention"}
    assert len(windows) <= 1, f"one sliding window for all layers, got {windows}"
    window = windows.pop() if windows else None
    out = {
        "architectures": [cfg.architecture],
        "model_type": "qwen3",
        "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.intermediate_size,
        "num_hidden_layers": cfg.num_layers,
        "num_attention_heads": cfg.num_heads,
        "num_key_value_heads": cfg.num_kv_heads,
        "head_dim": cfg.head_dim,
        "hidden_act": cfg.hidden_act,
        "rms_norm_eps": cfg.rms_norm_eps,
        "attention_bias": cfg.attention_bias,
        "max_position_embeddings": cfg.max_position_embeddings,
        "vocab_size": cfg.vocab_size,
        "rope_parameters": _rope_section(cfg),
        "layer_types": [k.layer_type for k in cfg.layer_attention],
        "use_sliding_window": window is not None,
        "sliding_window": window,
        "tie_word_embeddings": False,
        "num_target_layers": cfg.num_target_layers,
        "block_size": cfg.block_size,
        "dflash_config": _dflash_section(cfg),
    }
    causal = _causal_override(cfg.layer_attention)
    if causal is not None:
        out["is_causal"] = causal
    return out


def _rope_section(cfg: DFlashConfig) -> dict[str, Any]:
    rope: dict[str, Any] = {"rope_type": cfg.rope.rope_type, "rope_theta": cfg.rope.theta}
    if cfg.rope.rope_type == "llama3":
        for name in ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"):
            rope[name] = getattr(cfg.rope, name)
    return rope


def _dflash_section(cfg: DFlashConfig) -> dict[str, Any]:
    dflash: dict[str, Any] = {
        "block_size": cfg.block_size,
        "mask_token_id": cfg.mask_token_id,
        "target_layer_ids": list(cfg.target_layer_ids),
        "output_multiplier": cfg.output_multiplier,
        "input_embedding_scale": cfg.input_embedding_scale,
    }
    for name in ("conv_kernel_size", "conv_group_size", "selector_rank", "selector_top_k", "final_logit_softcapping"):
        if getattr(cfg, name) is not None:
            dflash[name] = getattr(cfg, name)
    return dflash
