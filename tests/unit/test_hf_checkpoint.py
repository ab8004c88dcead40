"""Targets are written with per-expert MoE weights (what SGLang's loaders read), and transformers
loads them back to the same model."""

from __future__ import annotations

import torch
from safetensors.torch import save_file
from transformers import Qwen3NextConfig, Qwen3NextForCausalLM

from dflash_sglang.training.hf_checkpoint import checkpoint_state_dict


def _tiny_moe_config() -> Qwen3NextConfig:
    return Qwen3NextConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, full_attention_interval=2,
                           num_attention_heads=2, num_key_value_heads=1, head_dim=16, linear_num_key_heads=1,
                           linear_num_value_heads=2, linear_key_head_dim=8, linear_value_head_dim=8,
                           num_experts=3, num_experts_per_tok=2, moe_intermediate_size=12,
                           shared_expert_intermediate_size=12, decoder_sparse_step=1, mlp_only_layers=[])


def test_experts_are_split_per_expert_and_reload_identically(tmp_path):
    torch.manual_seed(0)
    config = _tiny_moe_config()
    model = Qwen3NextForCausalLM(config).float().eval()
    state = checkpoint_state_dict(model.state_dict())
    assert not any(name.endswith(("experts.gate_up_proj", "experts.down_proj")) for name in state)
    assert state["model.layers.0.mlp.experts.2.gate_proj.weight"].shape == (12, 32)
    assert state["model.layers.0.mlp.experts.2.down_proj.weight"].shape == (32, 12)
    config.save_pretrained(tmp_path)
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "model.safetensors"),
              metadata={"format": "pt"})
    reloaded = Qwen3NextForCausalLM.from_pretrained(tmp_path, dtype=torch.float32).eval()
    ids = torch.randint(0, 64, (1, 9))
    with torch.no_grad():
        assert torch.equal(model(ids).logits, reloaded(ids).logits)
