"""The tiny model pair's shapes and its seeded random initialisation: a Qwen3 target and a z-lab-format drafter.

Nothing is downloaded: the tokenizer is trained on the stdlib (`tokenizer.py`) and the weights are drawn from a
seeded `torch.Generator`, so `scripts/make_tiny_pair.py` writes the same files byte for byte on every run. That
random pair is the starting point of the bundled one: `target_pretrain` and `drafter_train` train it (see
`dflash_sglang/tiny_pair/MODEL_CARD.md`); the committed weights are the trained ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file

from dflash_sglang.training.tokenizer import EOS_TOKEN, IM_END, MASK_TOKEN, PAD_TOKEN, SPECIAL_TOKENS, write_tokenizer

EOS_ID, PAD_ID, MASK_ID = (SPECIAL_TOKENS.index(t) for t in (EOS_TOKEN, PAD_TOKEN, MASK_TOKEN))
IM_END_ID = SPECIAL_TOKENS.index(IM_END)

# Qwen's ChatML: `<|im_start|>role\ncontent<|im_end|>\n` per message; the prompt for a reply ends the text.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def build_target_layer_ids(num_target_layers: int, num_draft_layers: int) -> list[int]:
    """z-lab's choice of target layers to capture: the middle one, or evenly spaced in [1, L-3]."""
    if num_draft_layers == 1:
        return [num_target_layers // 2]
    start, end = 1, num_target_layers - 3
    return [round(start + i * (end - start) / (num_draft_layers - 1)) for i in range(num_draft_layers)]


@dataclass(frozen=True)
class TinyPairSpec:
    """Sizes of the pair; the drafter has the target's width and heads (it reuses its embedding and lm_head)."""

    vocab_size: int = 4096
    hidden_size: int = 256
    intermediate_size: int = 768
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int = 64
    target_layers: int = 6
    drafter_layers: int = 1
    block_size: int = 8
    max_position_embeddings: int = 2048
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-6
    init_std: float = 0.02

    def __post_init__(self) -> None:
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"num_key_value_heads: expected a divisor of num_attention_heads={self.num_attention_heads}, "
                f"got {self.num_key_value_heads}"
            )
        min_vocab = 256 + len(SPECIAL_TOKENS) + 1  # every byte, the special tokens and at least one merge
        if self.vocab_size < min_vocab:
            raise ValueError(f"vocab_size: expected >= {min_vocab}, got {self.vocab_size}")
        if self.block_size < 2:
            raise ValueError(f"block_size: expected >= 2 (anchor + at least one mask token), got {self.block_size}")
        if not 1 <= self.drafter_layers <= self.target_layers:
            raise ValueError(f"drafter_layers: expected 1..{self.target_layers}, got {self.drafter_layers}")

    @property
    def target_layer_ids(self) -> list[int]:
        return build_target_layer_ids(self.target_layers, self.drafter_layers)


def _qwen3_text_config(spec: TinyPairSpec, num_layers: int) -> dict:
    """The Qwen3 keys both models share, as in Qwen/Qwen3-*'s config.json (plus the v5 `rope_parameters`)."""
    return {
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": EOS_ID,  # Qwen3 has no BOS of its own: its config points at <|endoftext|>
        "eos_token_id": IM_END_ID,
        "pad_token_id": PAD_ID,
        "head_dim": spec.head_dim,
        "hidden_act": "silu",
        "hidden_size": spec.hidden_size,
        "initializer_range": spec.init_std,
        "intermediate_size": spec.intermediate_size,
        "layer_types": ["full_attention"] * num_layers,
        "max_position_embeddings": spec.max_position_embeddings,
        "max_window_layers": num_layers,
        "model_type": "qwen3",
        "num_attention_heads": spec.num_attention_heads,
        "num_hidden_layers": num_layers,
        "num_key_value_heads": spec.num_key_value_heads,
        "rms_norm_eps": spec.rms_norm_eps,
        "rope_scaling": None,
        "rope_theta": spec.rope_theta,
        "rope_parameters": {"rope_type": "default", "rope_theta": spec.rope_theta},
        "sliding_window": None,
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": spec.vocab_size,
        # Both keys: transformers 5 writes `dtype`, readers written for transformers 4 look for `torch_dtype`.
        "torch_dtype": "float32",
        "dtype": "float32",
    }


def target_config(spec: TinyPairSpec) -> dict:
    return {
        "architectures": ["Qwen3ForCausalLM"],
        **_qwen3_text_config(spec, spec.target_layers),
        "tie_word_embeddings": True,
    }


def drafter_config(spec: TinyPairSpec) -> dict:
    """z-lab's checkpoint format: a Qwen3 text config plus the DFlash keys, top level and in `dflash_config`."""
    return {
        "architectures": ["DFlashDraftModel"],
        **_qwen3_text_config(spec, spec.drafter_layers),
        "tie_word_embeddings": False,  # the drafter has no embedding or head of its own
        "block_size": spec.block_size,
        "num_target_layers": spec.target_layers,
        "dflash_config": {
            "target_layer_ids": spec.target_layer_ids,
            "mask_token_id": MASK_ID,
            "block_size": spec.block_size,
        },
    }


def _layer_shapes(spec: TinyPairSpec, prefix: str) -> dict[str, tuple[int, ...]]:
    """One Qwen3 decoder layer's weights, named as HF's Qwen3DecoderLayer state_dict."""
    hidden, inter, head_dim = spec.hidden_size, spec.intermediate_size, spec.head_dim
    q_width, kv_width = spec.num_attention_heads * head_dim, spec.num_key_value_heads * head_dim
    return {
        f"{prefix}.self_attn.q_proj.weight": (q_width, hidden),
        f"{prefix}.self_attn.k_proj.weight": (kv_width, hidden),
        f"{prefix}.self_attn.v_proj.weight": (kv_width, hidden),
        f"{prefix}.self_attn.o_proj.weight": (hidden, q_width),
        f"{prefix}.self_attn.q_norm.weight": (head_dim,),
        f"{prefix}.self_attn.k_norm.weight": (head_dim,),
        f"{prefix}.mlp.gate_proj.weight": (inter, hidden),
        f"{prefix}.mlp.up_proj.weight": (inter, hidden),
        f"{prefix}.mlp.down_proj.weight": (hidden, inter),
        f"{prefix}.input_layernorm.weight": (hidden,),
        f"{prefix}.post_attention_layernorm.weight": (hidden,),
    }


def target_weight_shapes(spec: TinyPairSpec) -> dict[str, tuple[int, ...]]:
    """Qwen3ForCausalLM's names; no `lm_head.weight` because it is tied to `model.embed_tokens.weight`."""
    shapes = {"model.embed_tokens.weight": (spec.vocab_size, spec.hidden_size)}
    for i in range(spec.target_layers):
        shapes.update(_layer_shapes(spec, f"model.layers.{i}"))
    shapes["model.norm.weight"] = (spec.hidden_size,)
    return shapes


def drafter_weight_shapes(spec: TinyPairSpec) -> dict[str, tuple[int, ...]]:
    """The names z-lab's `DFlashDraftModel.save_pretrained` writes (no `model.` prefix, no embedding, no head)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for i in range(spec.drafter_layers):
        shapes.update(_layer_shapes(spec, f"layers.{i}"))
    n_feat = len(spec.target_layer_ids)
    shapes["norm.weight"] = (spec.hidden_size,)
    shapes["fc.weight"] = (spec.hidden_size, n_feat * spec.hidden_size)  # [hidden, n_feat*hidden]
    shapes["hidden_norm.weight"] = (spec.hidden_size,)
    return shapes


def random_weights(
    shapes: dict[str, tuple[int, ...]], std: float, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """Norm scales are ones (a vector weight here is always a norm); matrices are N(0, std), drawn in `shapes` order."""
    weights = {}
    for name, shape in shapes.items():
        if len(shape) == 1:
            weights[name] = torch.ones(shape, dtype=torch.float32)
        else:
            weights[name] = torch.empty(shape, dtype=torch.float32).normal_(0.0, std, generator=generator)
    return weights


def pair_weights(spec: TinyPairSpec, seed: int) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(target, drafter) weights from one stream, target first, so a seed names the whole pair."""
    generator = torch.Generator().manual_seed(seed)
    target = random_weights(target_weight_shapes(spec), spec.init_std, generator)
    drafter = random_weights(drafter_weight_shapes(spec), spec.init_std, generator)
    return target, drafter


def tokenizer_config(spec: TinyPairSpec) -> dict:
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": None,
        "eos_token": IM_END,
        "pad_token": PAD_TOKEN,
        "unk_token": None,
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": spec.max_position_embeddings,
        "chat_template": CHAT_TEMPLATE,
    }


def generation_config() -> dict:
    # Stop at the end of a chat turn or of a document, as Qwen3's generation_config does.
    return {"bos_token_id": EOS_ID, "eos_token_id": [IM_END_ID, EOS_ID], "pad_token_id": PAD_ID, "do_sample": False}


def _write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n")


def make_tiny_pair(out_dir: Path, seed: int = 0, spec: TinyPairSpec = TinyPairSpec()) -> tuple[Path, Path]:
    """Write `out_dir/target` (model + tokenizer) and `out_dir/drafter`; return the two dirs."""
    target_dir, drafter_dir = out_dir / "target", out_dir / "drafter"
    target_dir.mkdir(parents=True, exist_ok=True)
    drafter_dir.mkdir(parents=True, exist_ok=True)
    target_weights, drafter_weights = pair_weights(spec, seed)
    for model_dir, config, weights in (
        (target_dir, target_config(spec), target_weights),
        (drafter_dir, drafter_config(spec), drafter_weights),
    ):
        _write_json(model_dir / "config.json", config)
        save_file(weights, str(model_dir / "model.safetensors"), metadata={"format": "pt"})
    write_tokenizer(target_dir, spec.vocab_size)
    _write_json(target_dir / "tokenizer_config.json", tokenizer_config(spec))
    _write_json(target_dir / "special_tokens_map.json", {"eos_token": IM_END, "pad_token": PAD_TOKEN})
    _write_json(target_dir / "generation_config.json", generation_config())
    return target_dir, drafter_dir
