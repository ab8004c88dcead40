"""The tiny hybrid pair: a seeded random Qwen3Next target (Gated DeltaNet + full attention, MoE MLPs) and its drafter.

The target is Qwen3-Coder-Next's architecture scaled down: every `full_attention_interval`-th layer is full
attention, the others Gated DeltaNet (linear attention with a recurrent state and a short causal convolution).
Every layer has a sparse MoE MLP, because SGLang's `qwen3_next` builds one whatever `mlp_only_layers` says.
`full_attention_interval` is written to config.json: SGLang's own config class derives the layer pattern from it.

The target's weights are transformers' own initialisation of `Qwen3NextForCausalLM` (it knows how to start
`A_log`, `dt_bias` and the zero-centred norms), drawn under a fixed torch seed. The drafter is the dense pair's
drafter (`tiny_pair.drafter_config`) pointed at this target. The tokenizer files are the bundled dense pair's.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file

from dflash_sglang.training.hf_checkpoint import checkpoint_state_dict

from dflash_sglang.training.tiny_pair import (
    EOS_ID,
    IM_END_ID,
    PAD_ID,
    TinyPairSpec,
    _write_json,
    drafter_config,
    drafter_weight_shapes,
    random_weights,
)

# Copied from the bundled dense target, so both pairs tokenize alike.
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
    "tokenizer_corpus.json",
)
DENSE_TARGET_DIR = Path(__file__).resolve().parents[1] / "tiny_pair" / "target"


@dataclass(frozen=True)
class HybridPairSpec:
    """Sizes of the hybrid target; the drafter has the target's width and attention heads."""

    vocab_size: int = 4096
    hidden_size: int = 256
    num_layers: int = 8
    full_attention_interval: int = 4  # layers 3 and 7 full attention, the rest Gated DeltaNet
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int = 64
    partial_rotary_factor: float = 0.25
    linear_num_key_heads: int = 2
    linear_num_value_heads: int = 4
    linear_key_head_dim: int = 32
    linear_value_head_dim: int = 32
    linear_conv_kernel_dim: int = 4
    num_experts: int = 4
    num_experts_per_tok: int = 2
    moe_intermediate_size: int = 128
    shared_expert_intermediate_size: int = 128
    drafter_intermediate_size: int = 768  # the drafter's dense Qwen3 MLP (the dense pair's)
    drafter_layers: int = 1
    block_size: int = 8
    max_position_embeddings: int = 2048
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-6
    init_std: float = 0.02

    def __post_init__(self) -> None:
        if self.num_layers % self.full_attention_interval:
            raise ValueError(
                f"num_layers: expected a multiple of full_attention_interval={self.full_attention_interval} "
                f"(the last layer full attention, as in Qwen3-Next), got {self.num_layers}"
            )
        if self.num_layers - 1 in self.drafter_spec.target_layer_ids:
            # SGLang's qwen3_next captures a feature layer as the input of the next one, which the last lacks.
            raise ValueError(f"drafter_layers: z-lab's rule picks the last target layer for {self.drafter_layers}")

    @property
    def layer_types(self) -> list[str]:
        return [
            "full_attention" if (i + 1) % self.full_attention_interval == 0 else "linear_attention"
            for i in range(self.num_layers)
        ]

    @property
    def drafter_spec(self) -> TinyPairSpec:
        """The dense pair's spec with this target's sizes: it describes the drafter (and `num_target_layers`)."""
        return TinyPairSpec(
            vocab_size=self.vocab_size, hidden_size=self.hidden_size, intermediate_size=self.drafter_intermediate_size,
            num_attention_heads=self.num_attention_heads, num_key_value_heads=self.num_key_value_heads,
            head_dim=self.head_dim, target_layers=self.num_layers, drafter_layers=self.drafter_layers,
            block_size=self.block_size, max_position_embeddings=self.max_position_embeddings,
            rope_theta=self.rope_theta, rms_norm_eps=self.rms_norm_eps, init_std=self.init_std,
        )


def hybrid_target_config(spec: HybridPairSpec) -> dict:
    """Keys as in Qwen/Qwen3-Coder-Next's config.json, at this size."""
    rope = {"rope_type": "default", "rope_theta": spec.rope_theta, "partial_rotary_factor": spec.partial_rotary_factor}
    return {
        "architectures": ["Qwen3NextForCausalLM"],
        "model_type": "qwen3_next",
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": EOS_ID,
        "eos_token_id": IM_END_ID,
        "pad_token_id": PAD_ID,
        "hidden_act": "silu",
        "hidden_size": spec.hidden_size,
        "initializer_range": spec.init_std,
        "intermediate_size": spec.drafter_intermediate_size,  # unused: every layer is MoE (mlp_only_layers empty)
        "num_hidden_layers": spec.num_layers,
        "full_attention_interval": spec.full_attention_interval,
        "layer_types": spec.layer_types,
        "num_attention_heads": spec.num_attention_heads,
        "num_key_value_heads": spec.num_key_value_heads,
        "head_dim": spec.head_dim,
        "partial_rotary_factor": spec.partial_rotary_factor,
        "rope_theta": spec.rope_theta,
        "rope_scaling": None,
        "rope_parameters": rope,
        "max_position_embeddings": spec.max_position_embeddings,
        "rms_norm_eps": spec.rms_norm_eps,
        "linear_conv_kernel_dim": spec.linear_conv_kernel_dim,
        "linear_key_head_dim": spec.linear_key_head_dim,
        "linear_value_head_dim": spec.linear_value_head_dim,
        "linear_num_key_heads": spec.linear_num_key_heads,
        "linear_num_value_heads": spec.linear_num_value_heads,
        "decoder_sparse_step": 1,
        "mlp_only_layers": [],
        "num_experts": spec.num_experts,
        "num_experts_per_tok": spec.num_experts_per_tok,
        "moe_intermediate_size": spec.moe_intermediate_size,
        "shared_expert_intermediate_size": spec.shared_expert_intermediate_size,
        "norm_topk_prob": True,
        "output_router_logits": False,
        "router_aux_loss_coef": 0.001,
        "tie_word_embeddings": False,
        "use_cache": True,
        "vocab_size": spec.vocab_size,
        "torch_dtype": "float32",
        "dtype": "float32",
    }


def hybrid_target_weights(config: dict, seed: int) -> dict[str, torch.Tensor]:
    """transformers' initialisation of the model, under `seed` (the global RNG is restored afterwards)."""
    from transformers import Qwen3NextConfig, Qwen3NextForCausalLM

    keys = {k: v for k, v in config.items() if k not in ("architectures", "model_type", "torch_dtype", "dtype")}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen3NextForCausalLM(Qwen3NextConfig(**keys)).float()
    return {name: t.detach().contiguous() for name, t in checkpoint_state_dict(model.state_dict()).items()}


def make_hybrid_pair(
    out_dir: Path, seed: int = 0, spec: HybridPairSpec = HybridPairSpec(), tokenizer_dir: Path = DENSE_TARGET_DIR
) -> tuple[Path, Path]:
    """Write `out_dir/target` (model + tokenizer) and `out_dir/drafter`; return the two dirs."""
    target_dir, drafter_dir = out_dir / "target", out_dir / "drafter"
    target_dir.mkdir(parents=True, exist_ok=True)
    drafter_dir.mkdir(parents=True, exist_ok=True)
    config = hybrid_target_config(spec)
    _write_json(target_dir / "config.json", config)
    save_file(hybrid_target_weights(config, seed), str(target_dir / "model.safetensors"), metadata={"format": "pt"})
    for name in TOKENIZER_FILES:
        shutil.copyfile(tokenizer_dir / name, target_dir / name)
    dense = spec.drafter_spec
    generator = torch.Generator().manual_seed(seed)
    _write_json(drafter_dir / "config.json", drafter_config(dense))
    drafter_weights = random_weights(drafter_weight_shapes(dense), dense.init_std, generator)
    save_file(drafter_weights, str(drafter_dir / "model.safetensors"), metadata={"format": "pt"})
    return target_dir, drafter_dir
