"""The hybrid tiny pair's generator (a seeded Qwen3Next target and its drafter) and the replaying target that keeps
z-lab's `dflash_generate` lossless on it."""

from __future__ import annotations

import json

import pytest
import torch

from dflash_sglang.drafter import load_drafter
from dflash_sglang.training.hybrid_target import ReplayingTarget, is_hybrid
from dflash_sglang.training.tiny_hybrid_pair import HybridPairSpec, hybrid_target_config, make_hybrid_pair

dflash_model = pytest.importorskip("dflash.model")
transformers = pytest.importorskip("transformers")

# The default layout (GDN and full attention mixed, MoE everywhere) at a quarter of the width, so tests are quick.
SMALL = HybridPairSpec(
    hidden_size=64, head_dim=16, linear_key_head_dim=16, linear_value_head_dim=16, moe_intermediate_size=32,
    shared_expert_intermediate_size=32, drafter_intermediate_size=128,
)


@pytest.fixture(scope="module")
def small_pair(tmp_path_factory):
    return make_hybrid_pair(tmp_path_factory.mktemp("hybrid") / "pair", seed=0, spec=SMALL)


def test_default_spec_is_qwen3_coder_next_scaled_down():
    spec = HybridPairSpec()
    config = hybrid_target_config(spec)
    assert config["architectures"] == ["Qwen3NextForCausalLM"]
    # SGLang's qwen3_next config derives the layer pattern from this key, not from `layer_types`.
    assert config["full_attention_interval"] == 4
    assert [i for i, t in enumerate(config["layer_types"]) if t == "full_attention"] == [3, 7]
    assert config["mlp_only_layers"] == [] and config["decoder_sparse_step"] == 1  # SGLang builds MoE everywhere
    assert spec.drafter_spec.target_layer_ids == dflash_model.build_target_layer_ids(8, 1) == [4]


def test_spec_refuses_a_drafter_that_reads_the_last_layer():
    with pytest.raises(ValueError, match="last target layer"):
        HybridPairSpec(num_layers=2, full_attention_interval=2)


def test_generator_is_seeded_byte_for_byte(small_pair, tmp_path):
    target_dir, drafter_dir = small_pair
    again = make_hybrid_pair(tmp_path / "again", seed=0, spec=SMALL)
    other = make_hybrid_pair(tmp_path / "other", seed=1, spec=SMALL)
    for first, second in zip((target_dir, drafter_dir), again):
        names = sorted(p.name for p in first.iterdir())
        assert names == sorted(p.name for p in second.iterdir())
        assert all((first / n).read_bytes() == (second / n).read_bytes() for n in names), first
    for first, second in zip((target_dir, drafter_dir), other):
        assert (first / "model.safetensors").read_bytes() != (second / "model.safetensors").read_bytes()


def test_generated_pair_loads_in_transformers_zlab_and_ours(small_pair):
    target_dir, drafter_dir = small_pair
    assert json.loads((target_dir / "config.json").read_text())["full_attention_interval"] == 4
    target, info = transformers.AutoModelForCausalLM.from_pretrained(target_dir, output_loading_info=True)
    assert type(target).__name__ == "Qwen3NextForCausalLM" and is_hybrid(target.config)
    assert not any(info.values()), info
    drafter, info = dflash_model.DFlashDraftModel.from_pretrained(drafter_dir, output_loading_info=True)
    assert not any(info.values()), info
    ours = load_drafter(drafter_dir, target_dir, dtype=torch.float32)
    assert list(ours.config.target_layer_ids) == drafter.target_layer_ids == [4]


def test_replaying_target_keeps_dflash_generate_lossless(small_pair):
    # A random drafter is rejected almost every step, so nearly every verify leaves rejected drafts in the
    # recurrent state; the raw target (the guard) must then drift from its own greedy output.
    target_dir, drafter_dir = small_pair
    target = transformers.AutoModelForCausalLM.from_pretrained(target_dir, dtype=torch.float32).eval()
    drafter = dflash_model.DFlashDraftModel.from_pretrained(drafter_dir, dtype=torch.float32).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(target_dir)
    drifted = 0
    for prompt in ("def add(a, b):\n    return", "import os\n\n\nclass Path:\n"):
        ids = tokenizer(prompt, return_tensors="pt").input_ids  # [1, prompt_len]
        alone = dflash_model.dflash_generate(drafter, target, ids, 24, None, block_size=1)
        assert torch.equal(alone, target.generate(ids, max_new_tokens=24, do_sample=False))
        replayed = dflash_model.dflash_generate(drafter, ReplayingTarget(target), ids, 24, None)
        assert torch.equal(replayed, alone)
        drifted += not torch.equal(dflash_model.dflash_generate(drafter, target, ids, 24, None), alone)
    assert drifted, "the raw hybrid target stayed lossless: the test cannot see a missing state rollback"


def test_bundled_pair_is_trained_from_the_seed_0_draw_and_small(tmp_path):
    from safetensors.torch import load_file

    from dflash_sglang.bundled import tiny_pair

    init_target, init_drafter = make_hybrid_pair(tmp_path, seed=0)
    target_dir, drafter_dir = tiny_pair("hybrid")
    assert json.loads((target_dir / "config.json").read_text()) == hybrid_target_config(HybridPairSpec())
    for init_dir, model_dir, probe in ((init_target, target_dir, "model.embed_tokens.weight"),
                                       (init_drafter, drafter_dir, "fc.weight")):
        init, stored = load_file(str(init_dir / "model.safetensors")), load_file(str(model_dir / "model.safetensors"))
        assert stored.keys() == init.keys()
        assert all(stored[name].shape == init[name].shape for name in init), model_dir
        assert not torch.equal(stored[probe].float(), init[probe]), f"{model_dir} still holds the random draw"
    # bf16 target weights (config.json says float32, so loading upcasts exactly), fp32 drafter: as the dense pair.
    assert load_file(str(target_dir / "model.safetensors"))["model.embed_tokens.weight"].dtype == torch.bfloat16
    assert load_file(str(drafter_dir / "model.safetensors"))["fc.weight"].dtype == torch.float32
    size = sum(p.stat().st_size for d in (target_dir, drafter_dir) for p in d.iterdir())
    assert size < 20e6, size


def test_bundled_pair_decodes_losslessly_through_the_replaying_target():
    from dflash_sglang.bundled import tiny_pair

    target_dir, drafter_dir = tiny_pair("hybrid")
    target = transformers.AutoModelForCausalLM.from_pretrained(target_dir, dtype=torch.float32).eval()
    drafter = dflash_model.DFlashDraftModel.from_pretrained(drafter_dir, dtype=torch.float32).eval()
    assert load_drafter(drafter_dir, target_dir, dtype=torch.float32).config.block_size == 8
    ids = transformers.AutoTokenizer.from_pretrained(target_dir)(
        'def add(a: int, b: int) -> int:\n    """Return the sum of a and b."""\n', return_tensors="pt"
    ).input_ids  # [1, prompt_len]
    alone = target.generate(ids, max_new_tokens=32, do_sample=False)
    assert torch.equal(dflash_model.dflash_generate(drafter, ReplayingTarget(target), ids, 32, None), alone)
