"""The bundled tiny pair loads in transformers and z-lab's reference, decodes losslessly, and is reproducible."""

from __future__ import annotations

import json
from importlib.metadata import version

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from dflash_sglang.bundled import tiny_pair
from dflash_sglang.training.tiny_pair import TinyPairSpec, build_target_layer_ids, drafter_weight_shapes, pair_weights
from dflash_sglang.training.tokenizer import PROVENANCE_FILE, SPECIAL_TOKENS, corpus_fingerprint, train_tokenizer

dflash_model = pytest.importorskip("dflash.model")
transformers = pytest.importorskip("transformers")

TARGET_DIR, DRAFTER_DIR = tiny_pair()
PY_SNIPPET = 'def área(r: float) -> float:\n    """Ünïcode docstring."""\n\treturn 3.14159 * r ** 2  # 🙂\n'


@pytest.fixture(scope="module")
def target():
    return transformers.AutoModelForCausalLM.from_pretrained(TARGET_DIR).eval()


@pytest.fixture(scope="module")
def tokenizer():
    return transformers.AutoTokenizer.from_pretrained(TARGET_DIR)


@pytest.fixture(scope="module")
def drafter():
    model, info = dflash_model.DFlashDraftModel.from_pretrained(DRAFTER_DIR, output_loading_info=True)
    return model.eval(), info


def _safetensors_keys(path) -> set[str]:
    with safe_open(str(path), framework="pt") as f:
        return set(f.keys())


def test_drafter_loads_in_zlab_format_with_every_weight(drafter):
    model, info = drafter
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    assert set(model.state_dict()) == _safetensors_keys(DRAFTER_DIR / "model.safetensors")
    assert (model.block_size, model.target_layer_ids, model.mask_token_id) == (8, [3], 2)
    assert model.fc.weight.shape == (256, 256)  # [hidden, n_feat*hidden]


def test_drafter_layer_ids_follow_zlab_rule():
    for num_target, num_draft in [(4, 1), (6, 1), (36, 5), (8, 2)]:
        expected = dflash_model.build_target_layer_ids(num_target, num_draft)
        assert build_target_layer_ids(num_target, num_draft) == expected
    wide = TinyPairSpec(drafter_layers=2, target_layers=8)
    assert drafter_weight_shapes(wide)["fc.weight"] == (256, 2 * 256)


@pytest.mark.parametrize(
    "field, value",
    [("num_key_value_heads", 3), ("vocab_size", 261), ("block_size", 1), ("drafter_layers", 7)],
    ids=["kv-heads-not-divisor", "vocab-below-bytes-plus-specials", "block-without-mask", "drafter-deeper-than-target"],
)
def test_spec_rejects_bad_sizes_naming_the_field(field, value):
    with pytest.raises(ValueError, match=f"^{field}: expected .*got {value}"):
        TinyPairSpec(**{field: value})


def test_target_loads_with_tied_head_and_config_values(target):
    config = target.config
    assert type(target).__name__ == "Qwen3ForCausalLM"
    sizes = (config.num_hidden_layers, config.hidden_size, config.num_key_value_heads, config.vocab_size)
    assert sizes == (6, 256, 2, 4096)
    assert config.rope_parameters["rope_theta"] == 10000.0 and target.dtype == torch.float32
    assert target.lm_head.weight.data_ptr() == target.model.embed_tokens.weight.data_ptr()
    # Every stored weight is used and only the tied head is absent from the file.
    assert set(target.state_dict()) - _safetensors_keys(TARGET_DIR / "model.safetensors") == {"lm_head.weight"}


def test_tokenizer_round_trips_source_and_knows_special_tokens(tokenizer):
    ids = tokenizer.encode(PY_SNIPPET, add_special_tokens=False)
    assert tokenizer.decode(ids) == PY_SNIPPET
    assert len(ids) < len(PY_SNIPPET.encode())  # merges learned, not bytes only
    assert [tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    assert tokenizer.encode("x<|MASK|>y", add_special_tokens=False)[1] == 2
    assert (tokenizer.eos_token, tokenizer.pad_token, len(tokenizer)) == ("<|im_end|>", "<|pad|>", 4096)


def test_chat_template_is_chatml(tokenizer):
    messages = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "hi"}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    no_prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    assert no_prompt == text.removesuffix("<|im_start|>assistant\n")


def test_generation_config_stops_at_turn_and_document_end():
    config = json.loads((TARGET_DIR / "generation_config.json").read_text())
    assert config["eos_token_id"] == [SPECIAL_TOKENS.index("<|im_end|>"), SPECIAL_TOKENS.index("<|endoftext|>")]


def test_zlab_dflash_generate_equals_target_greedy(target, tokenizer, drafter, monkeypatch):
    monkeypatch.setattr(dflash_model, "_cuda_time", lambda: 0.0)  # z-lab's timer calls torch.cuda.synchronize
    input_ids = tokenizer(PY_SNIPPET, return_tensors="pt").input_ids  # [1, ctx]
    num_new = 12  # more than one block of 8, so a second draft block runs on carried target features
    stop_ids = json.loads((TARGET_DIR / "generation_config.json").read_text())["eos_token_id"]
    spec = dflash_model.dflash_generate(drafter[0], target, input_ids, num_new, stop_ids, temperature=0.0)
    greedy = target.generate(input_ids, max_new_tokens=num_new, do_sample=False)  # stops at the same ids
    assert spec.shape[1] > input_ids.shape[1] + 1, spec.shape
    assert torch.equal(spec, greedy)


def test_tokenizer_training_is_deterministic_and_reproduces_the_bundled_file(tmp_path):
    paths = []
    for run in ("a", "b"):
        paths.append(tmp_path / f"{run}.json")
        train_tokenizer().save(str(paths[-1]), pretty=True)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    recorded = json.loads((TARGET_DIR / PROVENANCE_FILE).read_text())
    if (recorded["sha256"], recorded["tokenizers"]) != (corpus_fingerprint()["sha256"], version("tokenizers")):
        trained_on = f"Python {recorded['python']}, tokenizers {recorded['tokenizers']}"
        pytest.skip(f"the bundled tokenizer was trained on another corpus or trainer ({trained_on})")
    assert paths[0].read_bytes() == (TARGET_DIR / "tokenizer.json").read_bytes()


def test_random_init_is_seeded_and_the_bundled_weights_are_trained_from_its_shapes():
    # make_tiny_pair's seed-0 draw is the starting point of the bundled pair (MODEL_CARD.md); the
    # bundled weights are trained, so they share its names and shapes but not its values.
    target_weights, drafter_weights = pair_weights(TinyPairSpec(), seed=0)
    again, _ = pair_weights(TinyPairSpec(), seed=0)
    assert all(torch.equal(again[name], target_weights[name]) for name in target_weights)
    pairs = ((target_weights, TARGET_DIR, "model.embed_tokens.weight"), (drafter_weights, DRAFTER_DIR, "fc.weight"))
    for weights, model_dir, probe in pairs:
        stored = load_file(str(model_dir / "model.safetensors"))
        assert stored.keys() == weights.keys()
        assert all(stored[name].shape == weights[name].shape for name in weights), model_dir
        assert not torch.equal(stored[probe].float(), weights[probe]), f"{model_dir} still holds the random draw"
    other_seed, _ = pair_weights(TinyPairSpec(), seed=1)
    assert not torch.equal(other_seed["model.embed_tokens.weight"], target_weights["model.embed_tokens.weight"])
    std = target_weights["model.embed_tokens.weight"].std().item()  # [vocab, hidden]
    assert abs(std - 0.02) < 0.001 and torch.equal(target_weights["model.norm.weight"], torch.ones(256))
