"""Reading a drafter's config.json the way z-lab does (`dflash==0.1.0` reads it through `Qwen3Config`).

A DFlash field is looked up in `dflash_config` first, then at the top level. Keys absent from the
file take `Qwen3Config`'s defaults, including its rule that `sliding_window` counts only when
`use_sliding_window` is true.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from dflash_sglang.config import (
    DEFAULT_MASK_TOKEN,
    LAYER_TYPES,
    ROPE_TYPES,
    LayerAttention,
    RopeParams,
    build_target_layer_ids,
    invalid,
)
from dflash_sglang.log import log_once


class _Missing:
    def __repr__(self) -> str:
        return "missing"


_MISSING = _Missing()

# Qwen3Config's defaults, which z-lab inherits for keys absent from config.json.
_QWEN3_DEFAULTS = {
    "head_dim": 128,
    "hidden_act": "silu",
    "rms_norm_eps": 1e-6,
    "attention_bias": False,
    "max_position_embeddings": 32768,
    "use_sliding_window": False,
    "sliding_window": 4096,
    "max_window_layers": 28,
    "rope_theta": 10000.0,
}


def _int(value: Any, name: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):  # also None and _MISSING
        expected = "an int" if minimum is None else f"an int >= {minimum}"
        raise invalid(name, expected, value)
    if minimum is not None and value < minimum:
        raise invalid(name, f"an int >= {minimum}", value)
    return value


def _float(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid(name, "a number", value)
    return float(value)


def _target_fields(target: Mapping[str, Any]) -> dict[str, int]:
    text = target.get("text_config") or target
    fields = {}
    for name in ("num_hidden_layers", "hidden_size", "vocab_size"):
        fields[name] = _int(text.get(name, target.get(name, _MISSING)), f"target {name}", minimum=1)
    return fields


def _layer_attention(drafter: Mapping[str, Any], num_layers: int) -> tuple[LayerAttention, ...]:
    # Qwen3Config drops sliding_window unless use_sliding_window is true; z-lab then runs its
    # sliding layers causal without a window, and so do we.
    use_window = drafter.get("use_sliding_window", _QWEN3_DEFAULTS["use_sliding_window"])
    window = drafter.get("sliding_window", _QWEN3_DEFAULTS["sliding_window"]) if use_window else None
    if window is not None:
        window = _int(window, "sliding_window", minimum=1)
    layer_types = drafter.get("layer_types")
    if layer_types is None:
        first_sliding = drafter.get("max_window_layers", _QWEN3_DEFAULTS["max_window_layers"])
        sliding = [window is not None and i >= first_sliding for i in range(num_layers)]
        layer_types = ["sliding_attention" if s else "full_attention" for s in sliding]
    if not isinstance(layer_types, (list, tuple)):
        raise invalid("layer_types", f"a list of {list(LAYER_TYPES)}", layer_types)
    is_causal = drafter.get("is_causal")  # z-lab reads it at the top level only
    if is_causal is not None and not isinstance(is_causal, bool):
        raise invalid("is_causal", "true, false or absent", is_causal)
    kinds = []
    for i, layer_type in enumerate(layer_types):
        if layer_type not in LAYER_TYPES:
            raise invalid(f"layer_types[{i}]", f"one of {list(LAYER_TYPES)}", layer_type)
        sliding = layer_type == "sliding_attention"
        causal = sliding if is_causal is None else is_causal
        kinds.append(LayerAttention(layer_type, causal, window if sliding else None))
    return tuple(kinds)


def _rope(drafter: Mapping[str, Any], max_positions: int) -> RopeParams:
    # transformers 5 writes `rope_parameters`; older configs have `rope_theta` + `rope_scaling`.
    params = drafter.get("rope_parameters") or drafter.get("rope_scaling") or {}
    if any(isinstance(v, Mapping) for v in params.values()):
        raise invalid("rope_parameters", "one dict for all layers", dict(params))
    rope_type = params.get("rope_type", params.get("type", "default"))
    if rope_type not in ROPE_TYPES:
        raise invalid("rope_parameters.rope_type", f"one of {list(ROPE_TYPES)}", rope_type)
    partial = params.get("partial_rotary_factor", drafter.get("partial_rotary_factor"))
    if partial is not None and partial != 1.0:
        raise invalid("partial_rotary_factor", "1.0 or absent", partial)
    theta = _float(params.get("rope_theta", drafter.get("rope_theta", _QWEN3_DEFAULTS["rope_theta"])), "rope_theta")
    if rope_type == "default":
        return RopeParams("default", theta)
    # As transformers' `standardize_rope_params`: a top-level value wins over the rope dict's.
    original = params.get("original_max_position_embeddings", max_positions)
    original = drafter.get("original_max_position_embeddings", original)
    return RopeParams(
        "llama3",
        theta,
        factor=_float(params.get("factor"), "rope_parameters.factor"),
        low_freq_factor=_float(params.get("low_freq_factor"), "rope_parameters.low_freq_factor"),
        high_freq_factor=_float(params.get("high_freq_factor"), "rope_parameters.high_freq_factor"),
        original_max_position_embeddings=_int(original, "rope_parameters.original_max_position_embeddings", 1),
    )


def _mask_token_id(draft_value: Callable[..., Any], tokenizer: Any) -> int:
    mask_id = draft_value("mask_token_id")
    if mask_id is not None:
        return _int(mask_id, "mask_token_id")
    token = draft_value("mask_token", DEFAULT_MASK_TOKEN)
    expected = f"an int in dflash_config, or a tokenizer whose vocabulary has {token!r}"
    if tokenizer is None:
        raise invalid("mask_token_id", expected, None)
    if hasattr(tokenizer, "get_vocab"):
        mask_id = tokenizer.get_vocab().get(token)
    else:
        mask_id = tokenizer.convert_tokens_to_ids(token)
    if mask_id is None:
        raise invalid("mask_token_id", expected, f"no {token!r} in the tokenizer")
    return _int(mask_id, "mask_token_id")


def parse_config_fields(
    drafter: Mapping[str, Any], target: Mapping[str, Any], tokenizer: Any
) -> dict[str, Any]:
    """The keyword arguments of `DFlashConfig` (which validates them)."""
    dflash = drafter.get("dflash_config") or {}

    def draft_value(name: str, default: Any = None) -> Any:  # z-lab's `_draft_value`
        return dflash.get(name, drafter.get(name, default))

    tgt = _target_fields(target)
    fields = _layer_fields(drafter, tgt)
    fields.update(_dflash_fields(draft_value, tgt, fields["num_layers"], tokenizer))
    fields["target_num_layers"] = tgt["num_hidden_layers"]
    fields["target_hidden_size"] = tgt["hidden_size"]
    fields["target_vocab_size"] = tgt["vocab_size"]
    return fields


def _layer_fields(drafter: Mapping[str, Any], tgt: dict[str, int]) -> dict[str, Any]:
    """The Qwen3-style decoder layers' shape."""

    def get(name: str, minimum: int = 1) -> int:
        return _int(drafter.get(name, _QWEN3_DEFAULTS.get(name, _MISSING)), name, minimum)

    num_layers, num_heads = get("num_hidden_layers"), get("num_attention_heads")
    architectures = drafter.get("architectures") or [None]
    return dict(
        architecture=architectures[0],
        hidden_size=get("hidden_size"),
        num_layers=num_layers,
        num_heads=num_heads,
        num_kv_heads=_int(drafter.get("num_key_value_heads") or num_heads, "num_key_value_heads", 1),
        head_dim=get("head_dim", minimum=2),
        intermediate_size=get("intermediate_size"),
        hidden_act=drafter.get("hidden_act", _QWEN3_DEFAULTS["hidden_act"]),
        rms_norm_eps=_float(drafter.get("rms_norm_eps", _QWEN3_DEFAULTS["rms_norm_eps"]), "rms_norm_eps"),
        attention_bias=bool(drafter.get("attention_bias", _QWEN3_DEFAULTS["attention_bias"])),
        rope=_rope(drafter, get("max_position_embeddings")),
        max_position_embeddings=get("max_position_embeddings"),
        vocab_size=_int(drafter.get("vocab_size") or tgt["vocab_size"], "vocab_size", minimum=1),
        layer_attention=_layer_attention(drafter, num_layers),
    )


def _dflash_fields(
    draft_value: Callable[..., Any], tgt: dict[str, int], num_layers: int, tokenizer: Any
) -> dict[str, Any]:
    """The DFlash fields: `dflash_config.X` first, then the top-level `X`."""
    num_target_layers = draft_value("num_target_layers")
    if num_target_layers is None:
        num_target_layers = tgt["num_hidden_layers"]
    num_target_layers = _int(num_target_layers, "num_target_layers", minimum=1)
    _warn_target_depth(num_target_layers, tgt["num_hidden_layers"])
    layer_ids = draft_value("target_layer_ids")
    if layer_ids is None:
        layer_ids = build_target_layer_ids(num_target_layers, num_layers)
    if not isinstance(layer_ids, (list, tuple)):
        raise invalid("dflash_config.target_layer_ids", "a list of ints", layer_ids)
    softcap = draft_value("final_logit_softcapping")
    softcap = None if softcap is None or _float(softcap, "final_logit_softcapping") <= 0 else float(softcap)
    fields: dict[str, Any] = dict(
        block_size=_int(draft_value("block_size", 16), "block_size"),
        num_target_layers=num_target_layers,
        target_layer_ids=tuple(_int(i, "dflash_config.target_layer_ids") for i in layer_ids),
        mask_token_id=_mask_token_id(draft_value, tokenizer),
        output_multiplier=_float(draft_value("output_multiplier", 1.0), "output_multiplier"),
        final_logit_softcapping=softcap,
        input_embedding_scale=_float(draft_value("input_embedding_scale", 1.0), "input_embedding_scale"),
    )
    for name in ("conv_kernel_size", "conv_group_size", "selector_rank", "selector_top_k"):
        value = draft_value(name)
        fields[name] = None if value is None else _int(value, f"dflash_config.{name}", minimum=1)
    return fields


def _warn_target_depth(trained_for: int, target_layers: int) -> None:
    if trained_for != target_layers:
        log_once(
            "num_target_layers",
            "drafter was trained for a %d-layer target but the target has %d layers",
            trained_for,
            target_layers,
            level=logging.WARNING,
        )

