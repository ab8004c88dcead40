"""A target and drafter over a 16-token vocabulary, for sampling statistics that a few thousand samples
can resolve. Random weights at a scale that gives the target peaked but far from one-hot distributions;
served with --skip-tokenizer-init (prompts and outputs are token ids), so no tokenizer is needed.
`kind="hybrid"` makes the target a Qwen3Next (Gated DeltaNet and full-attention layers, MoE MLPs)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

VOCAB, HIDDEN, HEADS, KV_HEADS, HEAD_DIM, INNER = 16, 64, 2, 1, 32, 128
TARGET_LAYERS, MASK_ID, BLOCK = 3, VOCAB - 1, 4


def _config(layers: int, architecture: str) -> dict:
    return {
        "architectures": [architecture], "model_type": "qwen3", "vocab_size": VOCAB, "hidden_size": HIDDEN,
        "intermediate_size": INNER, "num_hidden_layers": layers, "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS, "head_dim": HEAD_DIM, "hidden_act": "silu", "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0, "max_position_embeddings": 512, "tie_word_embeddings": False,
        "attention_bias": False, "torch_dtype": "float32", "eos_token_id": MASK_ID, "bos_token_id": 0,
    }


def _layer(prefix: str) -> dict[str, tuple[int, ...]]:
    return {
        f"{prefix}.self_attn.q_proj.weight": (HEADS * HEAD_DIM, HIDDEN),
        f"{prefix}.self_attn.k_proj.weight": (KV_HEADS * HEAD_DIM, HIDDEN),
        f"{prefix}.self_attn.v_proj.weight": (KV_HEADS * HEAD_DIM, HIDDEN),
        f"{prefix}.self_attn.o_proj.weight": (HIDDEN, HEADS * HEAD_DIM),
        f"{prefix}.self_attn.q_norm.weight": (HEAD_DIM,), f"{prefix}.self_attn.k_norm.weight": (HEAD_DIM,),
        f"{prefix}.mlp.gate_proj.weight": (INNER, HIDDEN), f"{prefix}.mlp.up_proj.weight": (INNER, HIDDEN),
        f"{prefix}.mlp.down_proj.weight": (HIDDEN, INNER),
        f"{prefix}.input_layernorm.weight": (HIDDEN,), f"{prefix}.post_attention_layernorm.weight": (HIDDEN,),
    }


def _weights(shapes: dict[str, tuple[int, ...]], g: torch.Generator, std: float) -> dict[str, torch.Tensor]:
    return {n: torch.ones(s) if len(s) == 1 else torch.randn(s, generator=g) * std for n, s in shapes.items()}


def _hybrid_target(seed: int) -> tuple[dict, dict[str, torch.Tensor]]:
    """Gated DeltaNet, full attention, GDN, full attention; transformers' initialisation."""
    from dflash_sglang.training.tiny_hybrid_pair import HybridPairSpec, hybrid_target_config, hybrid_target_weights

    spec = HybridPairSpec(hidden_size=HIDDEN, num_layers=TARGET_LAYERS + 1, full_attention_interval=2,
                          num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, head_dim=HEAD_DIM,
                          linear_num_key_heads=1, linear_num_value_heads=2, linear_key_head_dim=16,
                          linear_value_head_dim=16, num_experts=2, num_experts_per_tok=1, moe_intermediate_size=32,
                          shared_expert_intermediate_size=32, drafter_intermediate_size=INNER,
                          max_position_embeddings=512)
    # The spec checks its vocabulary against the bundled tokenizer's specials; this pair has no tokenizer.
    config = hybrid_target_config(spec) | {"vocab_size": VOCAB, "eos_token_id": MASK_ID, "bos_token_id": 0,
                                           "pad_token_id": 0}
    return config, hybrid_target_weights(config, seed)


def make_tiny_vocab_pair(out: Path, seed: int = 0, kind: str = "dense") -> tuple[Path, Path]:
    g = torch.Generator().manual_seed(seed)
    if kind == "hybrid":
        target_config, target = _hybrid_target(seed)
    else:
        target_config, target_shapes = _config(TARGET_LAYERS, "Qwen3ForCausalLM"), {
            "model.embed_tokens.weight": (VOCAB, HIDDEN), "model.norm.weight": (HIDDEN,)}
        for i in range(TARGET_LAYERS):
            target_shapes |= _layer(f"model.layers.{i}")
        target = _weights(target_shapes, g, 0.1)
    target["lm_head.weight"] = torch.randn(VOCAB, HIDDEN, generator=g) * 0.15  # logits spread ~1.2
    drafter = _weights(_layer("layers.0") | {"norm.weight": (HIDDEN,), "hidden_norm.weight": (HIDDEN,),
                                             "fc.weight": (HIDDEN, HIDDEN)}, g, 0.1)
    drafter_config = _config(1, "DFlashDraftModel") | {
        "block_size": BLOCK, "num_target_layers": target_config["num_hidden_layers"],
        "dflash_config": {"target_layer_ids": [1], "mask_token_id": MASK_ID, "block_size": BLOCK}}
    dirs = []
    for name, config, weights in (("target", target_config, target),
                                  ("drafter", drafter_config, drafter)):
        (out / name).mkdir(parents=True, exist_ok=True)
        (out / name / "config.json").write_text(json.dumps(config, indent=1))
        save_file(weights, str(out / name / "model.safetensors"), metadata={"format": "pt"})
        dirs.append(out / name)
    return dirs[0], dirs[1]
