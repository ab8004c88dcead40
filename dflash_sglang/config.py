"""DFlashConfig: the drafter's shape and behaviour, parsed once from its `config.json` and the target's.

The reading rules (z-lab's) live in `config_parse.py`; this file holds the frozen result and its
checks. Every value a user can get wrong raises `ValueError` naming the field, the expected value
and the value got.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

ARCHITECTURES = ("DFlashDraftModel", "DFlash2DraftModel")
LAYER_TYPES = ("full_attention", "sliding_attention")
ROPE_TYPES = ("default", "llama3")
DEFAULT_MASK_TOKEN = "<|MASK|>"
SUPPORTED_ACTIVATIONS = ("silu",)


class TokenizerLike(Protocol):
    """What resolving `<|MASK|>` needs from a tokenizer (`get_vocab`, or `convert_tokens_to_ids`)."""

    def get_vocab(self) -> dict[str, int]: ...


def invalid(field_name: str, expected: str, got: Any) -> ValueError:
    return ValueError(f"DFlash config {field_name}: expected {expected}, got {got!r}")


@dataclass(frozen=True)
class LayerAttention:
    """How one drafter layer's block queries see the keys (context, then block).

    `window` follows the HF convention: key k is visible from query q when q - k < window
    (and, for a non-causal layer, also k - q < window). None means no window.
    """

    layer_type: str  # "full_attention" | "sliding_attention"
    causal: bool
    window: int | None


@dataclass(frozen=True)
class RopeParams:
    rope_type: str  # "default" | "llama3"
    theta: float
    # llama3 only (None for "default"):
    factor: float | None = None
    low_freq_factor: float | None = None
    high_freq_factor: float | None = None
    original_max_position_embeddings: int | None = None


@dataclass(frozen=True)
class DFlashConfig:
    architecture: str  # one of ARCHITECTURES
    block_size: int  # blk: tokens per block, anchor included
    num_target_layers: int  # as the drafter was trained (used for the default target_layer_ids)
    target_layer_ids: tuple[int, ...]  # n_feat ids; features are the outputs of these target layers
    mask_token_id: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    hidden_act: str
    rms_norm_eps: float
    attention_bias: bool
    rope: RopeParams
    max_position_embeddings: int
    vocab_size: int  # the drafter's (DFlash2 selector codebooks); the target's when absent
    layer_attention: tuple[LayerAttention, ...]  # one per drafter layer
    target_num_layers: int
    target_hidden_size: int
    target_vocab_size: int
    conv_kernel_size: int | None = None  # DFlash2
    conv_group_size: int | None = None  # DFlash2
    selector_rank: int | None = None  # DFlash2
    selector_top_k: int | None = None  # DFlash2
    output_multiplier: float = 1.0
    final_logit_softcapping: float | None = None
    input_embedding_scale: float = 1.0  # multiplies the target's embeddings of the block

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise invalid("architectures[0]", f"one of {list(ARCHITECTURES)}", self.architecture)
        if self.block_size < 2:
            raise invalid("block_size", "an int >= 2", self.block_size)
        if self.hidden_size != self.target_hidden_size:
            raise invalid("hidden_size", f"the target's hidden_size {self.target_hidden_size}", self.hidden_size)
        if not self.target_layer_ids:
            raise invalid("dflash_config.target_layer_ids", "a non-empty list", list(self.target_layer_ids))
        for layer_id in self.target_layer_ids:
            if not 0 <= layer_id < self.target_num_layers:
                raise invalid(
                    "dflash_config.target_layer_ids",
                    f"ids in [0, {self.target_num_layers}) (the target's num_hidden_layers)",
                    list(self.target_layer_ids),
                )
        if not 0 <= self.mask_token_id < self.target_vocab_size:
            expected = f"an id in [0, {self.target_vocab_size}) (the target's vocab)"
            raise invalid("mask_token_id", expected, self.mask_token_id)
        if len(self.layer_attention) != self.num_layers:
            raise invalid("layer_types", f"{self.num_layers} entries (num_hidden_layers)", len(self.layer_attention))
        if self.hidden_act not in SUPPORTED_ACTIVATIONS:
            raise invalid("hidden_act", f"one of {list(SUPPORTED_ACTIVATIONS)}", self.hidden_act)
        if self.head_dim % 2:
            raise invalid("head_dim", "an even int (RoPE rotates pairs)", self.head_dim)
        if self.num_heads % self.num_kv_heads:
            expected = f"a divisor of num_attention_heads {self.num_heads}"
            raise invalid("num_key_value_heads", expected, self.num_kv_heads)
        self._check_dflash2()

    def _check_dflash2(self) -> None:
        for name, partner in (("conv_kernel_size", "conv_group_size"), ("selector_rank", "selector_top_k")):
            mine, theirs = getattr(self, name), getattr(self, partner)
            if (mine is None) != (theirs is None):
                missing, present = (name, partner) if mine is None else (partner, name)
                raise invalid(f"dflash_config.{missing}", f"an int, because {present} is set", None)
        if not self.is_dflash2:
            return
        for name in ("conv_kernel_size", "selector_rank"):
            if getattr(self, name) is None:
                raise invalid(f"dflash_config.{name}", "an int for DFlash2DraftModel", None)
        if self.hidden_size % self.conv_group_size:
            expected = f"a divisor of hidden_size {self.hidden_size}"
            raise invalid("dflash_config.conv_group_size", expected, self.conv_group_size)
        if self.vocab_size < self.target_vocab_size:
            expected = f">= the target's vocab_size {self.target_vocab_size} (selector codebooks)"
            raise invalid("vocab_size", expected, self.vocab_size)
        if not 1 <= self.selector_top_k <= self.target_vocab_size:
            expected = f"an int in [1, {self.target_vocab_size}]"
            raise invalid("dflash_config.selector_top_k", expected, self.selector_top_k)

    @property
    def is_dflash2(self) -> bool:
        return self.architecture == "DFlash2DraftModel"

    @property
    def num_features(self) -> int:
        """n_feat: target layers whose outputs are concatenated into the target features."""
        return len(self.target_layer_ids)

    @classmethod
    def from_dicts(
        cls,
        drafter: Mapping[str, Any],
        target: Mapping[str, Any],
        tokenizer: TokenizerLike | None = None,
    ) -> DFlashConfig:
        """Parse the drafter's config.json dict against the target's (a nested `text_config` is accepted)."""
        from dflash_sglang.config_parse import parse_config_fields  # it imports this module

        return cls(**parse_config_fields(drafter, target, tokenizer))

    @classmethod
    def from_dirs(
        cls,
        drafter_dir: str | Path,
        target_dir_or_config: str | Path | Mapping[str, Any],
        tokenizer: TokenizerLike | None = None,
    ) -> DFlashConfig:
        drafter = read_config_json(drafter_dir)
        if isinstance(target_dir_or_config, Mapping):
            target = target_dir_or_config
        else:
            target = read_config_json(target_dir_or_config)
        return cls.from_dicts(drafter, target, tokenizer)


def read_config_json(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / "config.json"
    if not path.is_file():
        raise ValueError(f"config.json: expected a file at {str(path)!r}, got nothing there")
    with path.open() as f:
        return json.load(f)


def build_target_layer_ids(num_target_layers: int, num_draft_layers: int) -> list[int]:
    """z-lab's rule: one layer in the middle, or `num_draft_layers` evenly spaced over [1, L-3]."""
    if num_target_layers < 1:
        raise invalid("num_target_layers", "an int >= 1", num_target_layers)
    if num_draft_layers < 1:
        raise invalid("num_hidden_layers", "an int >= 1", num_draft_layers)
    if num_draft_layers == 1:
        return [num_target_layers // 2]
    start, end = 1, num_target_layers - 3
    span = end - start
    return [round(start + (i * span) / (num_draft_layers - 1)) for i in range(num_draft_layers)]

