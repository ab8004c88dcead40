"""z-lab checkpoints load in ours and ours load in z-lab's `from_pretrained`, with the same numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from dflash.model import DFlash2DraftModel, DFlashDraftModel
from drafter_pairs import (
    MIXED,
    TARGET,
    dflash2_dict,
    drafter_dict,
    ours_draft,
    ours_like,
    random_inputs,
    zlab_draft,
    zlab_model,
)
from safetensors.torch import load_file, save_file

from dflash_sglang.config import DFlashConfig
from dflash_sglang.drafter import load_drafter, save_drafter
from dflash_sglang.drafter.weights import zlab_config_dict

CONFIGS = [
    pytest.param(drafter_dict(**MIXED), id="v1-mixed"),
    pytest.param(
        drafter_dict(**MIXED, is_causal=False, dflash_config={"final_logit_softcapping": 5.0}), id="v1-noncausal"
    ),
    pytest.param(dflash2_dict(), id="dflash2"),
]


def _zlab_class(config: dict) -> type:
    return DFlash2DraftModel if config["architectures"][0] == "DFlash2DraftModel" else DFlashDraftModel


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("shard", [False, True], ids=["single", "sharded"])
def test_zlab_checkpoint_loads_in_ours(tmp_path: Path, config: dict, shard: bool) -> None:
    zlab = zlab_model(config)
    zlab.save_pretrained(tmp_path, max_shard_size="20KB" if shard else "5GB")
    assert (tmp_path / "model.safetensors.index.json").is_file() == shard
    ours = load_drafter(tmp_path, TARGET)
    assert ours.dtype == torch.float32
    inputs = random_inputs(seed=4)
    want_hidden, want_tokens = zlab_draft(zlab, inputs, 20, 8)
    got_hidden, got_tokens = ours_draft(ours, inputs, 20, 8)
    assert (got_hidden - want_hidden).abs().max().item() <= 1e-5
    assert torch.equal(got_tokens, want_tokens)


@pytest.mark.parametrize("config", CONFIGS)
def test_our_checkpoint_loads_in_zlab(tmp_path: Path, config: dict) -> None:
    ours = ours_like(zlab_model(config, seed=5), config)
    save_drafter(ours, tmp_path)
    zlab, info = _zlab_class(config).from_pretrained(tmp_path, output_loading_info=True)
    assert (info["missing_keys"], info["unexpected_keys"], info["mismatched_keys"]) == (set(), set(), set())
    zlab_state = zlab.state_dict()
    for name, tensor in ours.state_dict().items():
        assert torch.equal(zlab_state[name], tensor), name
    assert zlab.block_size == ours.config.block_size
    assert zlab.mask_token_id == ours.config.mask_token_id
    assert list(zlab.target_layer_ids) == list(ours.config.target_layer_ids)
    for z_layer, kind in zip(zlab.layers, ours.config.layer_attention):
        assert (z_layer.self_attn.is_causal, z_layer.self_attn.sliding_window) == (kind.causal, kind.window)
    inputs = random_inputs(seed=4)
    want_hidden, want_tokens = zlab_draft(zlab.eval(), inputs, 20, 8)
    got_hidden, got_tokens = ours_draft(ours, inputs, 20, 8)
    assert (got_hidden - want_hidden).abs().max().item() <= 1e-5
    assert torch.equal(got_tokens, want_tokens)


@pytest.mark.parametrize("config", CONFIGS)
def test_saved_config_parses_back_to_the_same(config: dict) -> None:
    parsed = DFlashConfig.from_dicts(config, TARGET)
    assert DFlashConfig.from_dicts(zlab_config_dict(parsed), TARGET) == parsed


def test_dflash2_saves_the_published_codebook_names(tmp_path: Path) -> None:
    config = dflash2_dict()
    save_drafter(ours_like(zlab_model(config), config), tmp_path)
    names = set(load_file(tmp_path / "model.safetensors"))
    # As in z-lab's published DFlash2 safetensors header.
    assert {"candidate_selector.predecessor_codebook", "candidate_selector.successor_codebook"} <= names
    assert "candidate_selector.predecessor_codebook.weight" not in names


def _rewrite(directory: Path, edit) -> None:
    tensors = load_file(directory / "model.safetensors")
    save_file(edit(tensors), directory / "model.safetensors", metadata={"format": "pt"})


def test_model_prefix_and_bf16_checkpoint_load(tmp_path: Path) -> None:
    config = drafter_dict(**MIXED)
    zlab = zlab_model(config)
    zlab.save_pretrained(tmp_path)
    _rewrite(tmp_path, lambda t: {f"model.{k}": v.to(torch.bfloat16) for k, v in t.items()})
    ours = load_drafter(tmp_path, TARGET)
    assert ours.dtype == torch.bfloat16  # the checkpoint's dtype by default
    for name, tensor in zlab.state_dict().items():
        assert torch.equal(ours.state_dict()[name], tensor.to(torch.bfloat16)), name
    assert load_drafter(tmp_path, TARGET, dtype=torch.float32).dtype == torch.float32


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    config = drafter_dict(**MIXED)
    zlab_model(config).save_pretrained(tmp_path)
    return tmp_path


def test_missing_weight_is_named(saved: Path) -> None:
    _rewrite(saved, lambda t: {k: v for k, v in t.items() if k != "layers.1.self_attn.k_norm.weight"})
    with pytest.raises(ValueError) as err:
        load_drafter(saved, TARGET)
    assert "expected ['layers.1.self_attn.k_norm.weight']" in str(err.value)
    assert "got no such tensors" in str(err.value)


def test_unexpected_weight_is_named(saved: Path) -> None:
    _rewrite(saved, lambda t: {**t, "embed_tokens.weight": torch.zeros(500, 64)})
    with pytest.raises(ValueError) as err:
        load_drafter(saved, TARGET)
    assert "expected no other tensors, got ['embed_tokens.weight']" in str(err.value)


def test_wrong_shape_is_named(saved: Path) -> None:
    _rewrite(saved, lambda t: {**t, "fc.weight": torch.zeros(64, 3 * 64)})
    with pytest.raises(ValueError) as err:
        load_drafter(saved, TARGET)
    assert "'fc.weight': expected shape [64, 128], got [64, 192]" in str(err.value)


def test_missing_safetensors_is_named(saved: Path) -> None:
    (saved / "model.safetensors").unlink()
    with pytest.raises(ValueError, match="expected model.safetensors or model.safetensors.index.json"):
        load_drafter(saved, TARGET)


def test_config_json_is_read_from_the_target_dir(saved: Path, tmp_path_factory) -> None:
    target_dir = tmp_path_factory.mktemp("target")
    (target_dir / "config.json").write_text(json.dumps({"text_config": TARGET, "architectures": ["X"]}))
    drafter_json = json.loads((saved / "config.json").read_text())
    assert load_drafter(saved, target_dir).config == DFlashConfig.from_dicts(drafter_json, TARGET)
