"""DFlashConfig reads config.json as z-lab does, and names the field, the expected value and the value got."""

from __future__ import annotations

import pytest
import torch
from dflash.model import build_target_layer_ids as zlab_build_target_layer_ids
from drafter_pairs import TARGET, dflash2_dict, drafter_dict, zlab_model
from transformers import Qwen3Config
from transformers.models.qwen3.modeling_qwen3 import Qwen3RotaryEmbedding

from dflash_sglang.config import DFlashConfig, LayerAttention, build_target_layer_ids
from dflash_sglang.drafter.norm_rope import rope_inv_freq


def parse(d: dict, target: dict = TARGET, tokenizer=None) -> DFlashConfig:
    return DFlashConfig.from_dicts(d, target, tokenizer)


def test_build_target_layer_ids_is_zlabs_rule() -> None:
    for target_layers in range(4, 70):
        for draft_layers in range(1, 9):
            assert build_target_layer_ids(target_layers, draft_layers) == zlab_build_target_layer_ids(
                target_layers, draft_layers
            )
    assert build_target_layer_ids(36, 5) == [1, 9, 17, 25, 33]  # Qwen3-8B: hidden_states[id + 1] = [2, 10, ...]


def test_dflash_values_prefer_dflash_config_then_top_level() -> None:
    d = drafter_dict(block_size=4, dflash_config={"block_size": 8})
    assert parse(d).block_size == 8
    d = drafter_dict(block_size=4)
    assert parse(d).block_size == 4
    del d["block_size"]
    assert parse(d).block_size == 16  # z-lab's default
    d = drafter_dict(mask_token_id=7)
    del d["dflash_config"]["mask_token_id"]
    assert parse(d).mask_token_id == 7


def test_target_layer_ids_default_and_target_text_config() -> None:
    d = drafter_dict(num_hidden_layers=3)
    del d["dflash_config"]["target_layer_ids"]
    d["num_target_layers"] = 8
    assert parse(d).target_layer_ids == tuple(zlab_build_target_layer_ids(8, 3))
    del d["num_target_layers"]  # then the target's depth
    nested = {"text_config": {"num_hidden_layers": 12, "hidden_size": 64}, "vocab_size": 500}
    assert parse(d, nested).target_layer_ids == tuple(zlab_build_target_layer_ids(12, 3))
    assert parse(d, nested).target_vocab_size == 500


class _Tokenizer:
    def get_vocab(self) -> dict[str, int]:
        return {"a": 0, "<|MASK|>": 42, "<mask>": 43}


class _OldTokenizer:
    def convert_tokens_to_ids(self, token: str) -> int | None:
        return {"<|MASK|>": 41}.get(token)


def test_mask_token_resolved_through_tokenizer() -> None:
    d = drafter_dict()
    del d["dflash_config"]["mask_token_id"]
    assert parse(d, tokenizer=_Tokenizer()).mask_token_id == 42
    assert parse(d, tokenizer=_OldTokenizer()).mask_token_id == 41
    # An explicit null mask_token_id is absent to z-lab's lookup too; a custom mask token is honoured.
    custom = drafter_dict(dflash_config={"mask_token": "<mask>", "mask_token_id": None})
    assert parse(custom, tokenizer=_Tokenizer()).mask_token_id == 43
    with pytest.raises(ValueError) as err:
        parse(d)
    expected = "expected an int in dflash_config, or a tokenizer whose vocabulary has '<|MASK|>', got None"
    assert f"mask_token_id: {expected}" in str(err.value)


SLIDING_FULL = dict(layer_types=["sliding_attention", "full_attention"], use_sliding_window=True, sliding_window=5)


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({}, id="no-layer-types"),
        pytest.param(SLIDING_FULL, id="mixed"),
        pytest.param({**SLIDING_FULL, "is_causal": False}, id="noncausal"),
        pytest.param({**SLIDING_FULL, "is_causal": True}, id="causal"),
        pytest.param({**SLIDING_FULL, "use_sliding_window": False}, id="window-off"),
        pytest.param(dict(use_sliding_window=True, sliding_window=5, max_window_layers=1), id="qwen3-default-types"),
    ],
)
def test_layer_attention_is_zlabs(overrides: dict) -> None:
    d = drafter_dict(num_hidden_layers=2, **overrides)
    got = parse(d).layer_attention
    zlab = zlab_model(d)
    want = tuple((layer.self_attn.is_causal, layer.self_attn.sliding_window) for layer in zlab.layers)
    assert tuple((kind.causal, kind.window) for kind in got) == want


def test_mixed_layer_attention_kinds() -> None:
    kinds = parse(drafter_dict(num_hidden_layers=2, **SLIDING_FULL)).layer_attention
    assert kinds == (LayerAttention("sliding_attention", True, 5), LayerAttention("full_attention", False, None))


@pytest.mark.parametrize(
    "rope",
    [
        pytest.param(dict(rope_parameters={"rope_type": "default", "rope_theta": 1e6}), id="default"),
        pytest.param(dict(rope_parameters=None, rope_theta=5e5, rope_scaling={
            "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192}), id="llama3-legacy"),
        pytest.param(dict(rope_parameters={"rope_type": "llama3", "rope_theta": 5e5, "factor": 32.0,
                                           "low_freq_factor": 1.0, "high_freq_factor": 4.0},
                          max_position_embeddings=4096), id="llama3-default-original"),
    ],
)
def test_rope_frequencies_are_transformers(rope: dict) -> None:
    d = drafter_dict(head_dim=128, **rope)
    ours = rope_inv_freq(parse(d).rope, 128)
    theirs = Qwen3RotaryEmbedding(Qwen3Config(**d)).inv_freq
    assert torch.equal(ours, theirs)


def _error(d: dict, target: dict = TARGET) -> str:
    with pytest.raises(ValueError) as err:
        parse(d, target)
    return str(err.value)


@pytest.mark.parametrize(
    ("config", "target", "field", "expected", "got"),
    [
        pytest.param(drafter_dict(dflash_config={"target_layer_ids": [1, 8]}), TARGET,
                     "target_layer_ids", "ids in [0, 8)", "got [1, 8]", id="target-layer-out-of-range"),
        pytest.param(drafter_dict(), {**TARGET, "hidden_size": 128},
                     "hidden_size", "the target's hidden_size 128", "got 64", id="hidden-size-mismatch"),
        pytest.param(drafter_dict(dflash_config={"mask_token_id": 500}), TARGET,
                     "mask_token_id", "an id in [0, 500)", "got 500", id="mask-id-out-of-vocab"),
        pytest.param(drafter_dict(dflash_config={"block_size": 1}), TARGET,
                     "block_size", "an int >= 2", "got 1", id="block-size-1"),
        pytest.param(drafter_dict(num_hidden_layers=3, layer_types=["full_attention"] * 2), TARGET,
                     "layer_types", "3 entries", "got 2", id="layer-types-length"),
        pytest.param(drafter_dict(architectures=["Eagle3DraftModel"]), TARGET,
                     "architectures[0]", "one of ['DFlashDraftModel', 'DFlash2DraftModel']", "got 'Eagle3DraftModel'",
                     id="unknown-architecture"),
        pytest.param(dflash2_dict(dflash_config={"conv_group_size": None}), TARGET,
                     "conv_group_size", "an int, because conv_kernel_size is set", "got None",
                     id="conv-without-partner"),
        pytest.param(drafter_dict(dflash_config={"selector_rank": 8}), TARGET,
                     "selector_top_k", "an int, because selector_rank is set", "got None",
                     id="selector-without-partner"),
        pytest.param(dflash2_dict(dflash_config={"selector_rank": None, "selector_top_k": None}), TARGET,
                     "selector_rank", "an int for DFlash2DraftModel", "got None", id="dflash2-without-selector"),
        pytest.param(drafter_dict(layer_types=["linear_attention"]), TARGET,
                     "layer_types[0]", "one of ['full_attention', 'sliding_attention']", "got 'linear_attention'",
                     id="unknown-layer-type"),
        pytest.param(drafter_dict(rope_parameters={"rope_type": "yarn", "rope_theta": 1e4, "factor": 4.0}), TARGET,
                     "rope_type", "one of ['default', 'llama3']", "got 'yarn'", id="unknown-rope-type"),
        pytest.param(drafter_dict(num_attention_heads=4, num_key_value_heads=3), TARGET,
                     "num_key_value_heads", "a divisor of num_attention_heads 4", "got 3", id="kv-heads-not-divisor"),
        pytest.param({k: v for k, v in drafter_dict().items() if k != "hidden_size"}, TARGET,
                     "hidden_size", "an int >= 1", "got missing", id="missing-hidden-size"),
        pytest.param(drafter_dict(), {"num_hidden_layers": 8, "hidden_size": 64}, "target vocab_size", "an int >= 1",
                     "got missing", id="target-without-vocab"),
    ],
)
def test_invalid_config_names_field_expected_and_got(config, target, field, expected, got) -> None:
    message = _error(config, target)
    assert field in message and f"expected {expected}" in message and got in message, message


@pytest.mark.parametrize(
    "config",
    [
        pytest.param(drafter_dict(), id="v1"),
        pytest.param(drafter_dict(num_hidden_layers=2, **SLIDING_FULL), id="mixed"),
        pytest.param(drafter_dict(num_hidden_layers=2, **{**SLIDING_FULL, "use_sliding_window": False}), id="window-off"),
        pytest.param(dflash2_dict(), id="dflash2"),
        pytest.param(drafter_dict(rope_parameters=None, rope_theta=5e5, rope_scaling={
            "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192}), id="llama3-legacy"),
    ],
)
def test_hf_config_to_dict_parses_the_same(config: dict) -> None:
    """SGLang hands the worker `hf_config.to_dict()` (a normalised Qwen3Config), not the raw file."""
    assert parse(Qwen3Config(**config).to_dict()) == parse(config)
