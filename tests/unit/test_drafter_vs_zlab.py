"""Our plain-torch drafter computes what z-lab's reference (dflash==0.1.0) computes, in fp32.

Same random weights, same inputs: final hidden states within 1e-5, draft token ids identical.
"""

from __future__ import annotations

import pytest
import torch
from dflash.model import _crop_to, _make_cache
from drafter_pairs import (
    MIXED,
    block_ids,
    dflash2_dict,
    drafter_dict,
    ours_draft,
    ours_like,
    random_inputs,
    zlab_draft,
    zlab_model,
)

ATOL = 1e-5

CASES = [
    # (id, config.json, context length, block size)
    pytest.param(drafter_dict(), 9, 16, id="v1-1layer-mha-blk16"),
    pytest.param(drafter_dict(num_hidden_layers=3, num_key_value_heads=2), 13, 8, id="v1-3layer-gqa-blk8"),
    pytest.param(drafter_dict(num_hidden_layers=3, num_key_value_heads=1), 21, 16, id="v1-3layer-mqa-blk16"),
    # Context (30) and block (16) longer than the window (6): the window cuts both.
    pytest.param(drafter_dict(**MIXED), 30, 16, id="v1-mixed-sliding-causal-ctx30-win6"),
    pytest.param(drafter_dict(**MIXED, is_causal=False), 30, 8, id="v1-mixed-sliding-noncausal-ctx30-win6"),
    pytest.param(drafter_dict(**MIXED, is_causal=True), 12, 8, id="v1-all-causal"),
    # Qwen3Config drops the window unless use_sliding_window: sliding layers are then causal, unwindowed.
    pytest.param(drafter_dict(**{**MIXED, "use_sliding_window": False}), 30, 8, id="v1-sliding-without-window"),
    pytest.param(
        drafter_dict(
            num_hidden_layers=2,
            rope_parameters=None,
            rope_theta=500000.0,
            rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                          "high_freq_factor": 4.0, "original_max_position_embeddings": 16},
            dflash_config={"output_multiplier": 0.5, "final_logit_softcapping": 3.0, "input_embedding_scale": 2.0},
        ),
        40,
        8,
        id="v1-llama3-rope-multiplier-softcap-embedscale",
    ),
    pytest.param(dflash2_dict(), 25, 16, id="dflash2-noncausal-sliding-blk16"),
    pytest.param(dflash2_dict(**MIXED, is_causal=None, block_size=8), 30, 8, id="dflash2-mixed-blk8"),
]


@pytest.mark.parametrize(("config", "ctx_len", "block_size"), CASES)
def test_single_call_matches_zlab(config: dict, ctx_len: int, block_size: int) -> None:
    zlab = zlab_model(config)
    ours = ours_like(zlab, config)
    inputs = random_inputs(seed=1)
    want_hidden, want_tokens = zlab_draft(zlab, inputs, ctx_len, block_size)
    got_hidden, got_tokens = ours_draft(ours, inputs, ctx_len, block_size)
    assert got_hidden.shape == want_hidden.shape == (1, block_size, 64)
    assert (got_hidden - want_hidden).abs().max().item() <= ATOL
    assert torch.equal(got_tokens, want_tokens)


def test_window_and_selector_are_exercised() -> None:
    """The cases above would pass vacuously if the window never cut or the selector agreed with argmax."""
    inputs = random_inputs(seed=1)
    windowed = drafter_dict(**MIXED)
    unwindowed = drafter_dict(**{**MIXED, "layer_types": ["full_attention"] * 3})
    h_windowed, _ = ours_draft(ours_like(zlab_model(windowed), windowed), inputs, 30, 16)
    h_full, _ = ours_draft(ours_like(zlab_model(unwindowed), unwindowed), inputs, 30, 16)
    assert (h_windowed - h_full).abs().max().item() > 1e-2

    config = dflash2_dict()
    ours = ours_like(zlab_model(config), config)
    hidden, selected = ours_draft(ours, inputs, 25, 16)
    argmax = ours.compute_logits(hidden[:, 1:], inputs["lm_head"]).argmax(-1)
    assert not torch.equal(selected, argmax)


@pytest.mark.parametrize(
    "config",
    [
        pytest.param(drafter_dict(**MIXED), id="v1-mixed"),
        pytest.param(dflash2_dict(**MIXED, is_causal=None), id="dflash2-mixed"),
    ],
)
def test_ragged_batch_matches_zlab_per_request(config: dict) -> None:
    """Three requests with different context lengths in one padded batch, each vs its own z-lab call."""
    zlab = zlab_model(config)
    ours = ours_like(zlab, config)
    inputs = random_inputs(seed=2)
    ctx_lens, block_size = [5, 23, 1], 8
    features = inputs["features"][0]  # [64, n_feat * hidden]
    bs, longest = len(ctx_lens), max(ctx_lens)
    padded = torch.zeros(bs, longest, features.shape[-1])  # [bs, ctx, n_feat * hidden]
    for i, n in enumerate(ctx_lens):
        padded[i, :n] = features[:n]
    context = ours.new_context(bs)
    ours.extend_context(context, padded, torch.arange(longest).expand(bs, longest), torch.tensor(ctx_lens))
    ids = torch.cat([block_ids(inputs["anchors"][n], block_size) for n in ctx_lens])  # [bs, blk]
    positions = torch.tensor(ctx_lens)[:, None] + torch.arange(block_size)  # [bs, blk]
    hidden = ours(ours.embed_block(ids, inputs["embed"]), positions, context)  # [bs, blk, hidden]
    tokens = ours.propose(hidden, ids[:, 0], inputs["lm_head"])  # [bs, blk - 1]
    for i, n in enumerate(ctx_lens):
        want_hidden, want_tokens = zlab_draft(zlab, inputs, n, block_size)
        assert (hidden[i] - want_hidden[0]).abs().max().item() <= ATOL, f"request {i}"
        assert torch.equal(tokens[i], want_tokens[0]), f"request {i}"


@torch.no_grad()
def _zlab_steps(zlab, inputs, prompt_len: int, produced: list[int], block_size: int) -> list[torch.Tensor]:
    """z-lab's cache semantics from `dflash_generate`: feed the new context, draft, crop to `start`."""
    cache = _make_cache(zlab.config)
    start, new = prompt_len, prompt_len
    outputs = []
    for step_produced in [*produced, 0]:
        ids = block_ids(inputs["anchors"][start], block_size)
        outputs.append(
            zlab(
                target_hidden=inputs["features"][:, start - new : start],
                noise_embedding=torch.nn.functional.embedding(ids, inputs["embed"]),
                position_ids=torch.arange(start - new, start + block_size)[None],
                past_key_values=cache,
                use_cache=True,
            )[0]
        )
        _crop_to(cache, start)
        start, new = start + step_produced, step_produced
    return outputs


@pytest.mark.parametrize("is_causal", [None, False], ids=["causal-sliding", "noncausal-sliding"])
def test_incremental_steps_match_zlab_cache(is_causal: bool | None) -> None:
    """Two requests advance by different numbers of tokens per step (ragged appends); each step's
    block output equals z-lab's with its DynamicCache (sliding layers trimmed past the window).
    A speculative append rolled back with `crop` must leave no trace."""
    config = drafter_dict(**MIXED, is_causal=is_causal)
    zlab = zlab_model(config)
    ours = ours_like(zlab, config)
    inputs = random_inputs(seed=3)
    block_size, prompt_lens = 8, [7, 3]
    produced = [[3, 8, 1, 5, 2], [1, 1, 8, 6, 4]]  # tokens committed per step, per request
    want = [_zlab_steps(zlab, inputs, p, steps, block_size) for p, steps in zip(prompt_lens, produced)]

    features = inputs["features"][0]  # [64, n_feat * hidden]
    context = ours.new_context(2)
    starts, news = list(prompt_lens), list(prompt_lens)
    for step in range(len(produced[0]) + 1):
        width = max(news)
        chunk = torch.zeros(2, width, features.shape[-1])  # [bs, n, n_feat * hidden] padded
        chunk_positions = torch.zeros(2, width, dtype=torch.long)  # [bs, n]
        for i in range(2):
            chunk[i, : news[i]] = features[starts[i] - news[i] : starts[i]]
            chunk_positions[i, : news[i]] = torch.arange(starts[i] - news[i], starts[i])
        ours.extend_context(context, chunk, chunk_positions, torch.tensor(news))
        committed = context.lens.clone()
        ours.extend_context(context, torch.randn(2, 4, features.shape[-1]), 100 + torch.arange(4).expand(2, 4))
        context.crop(committed)
        ids = torch.cat([block_ids(inputs["anchors"][s], block_size) for s in starts])  # [bs, blk]
        positions = torch.tensor(starts)[:, None] + torch.arange(block_size)  # [bs, blk]
        hidden = ours(ours.embed_block(ids, inputs["embed"]), positions, context)
        for i in range(2):
            assert (hidden[i] - want[i][step]).abs().max().item() <= ATOL, f"step {step} request {i}"
        if step < len(produced[0]):
            news = [produced[i][step] for i in range(2)]
            starts = [s + n for s, n in zip(starts, news)]
    assert max(starts) > 3 * MIXED["sliding_window"]  # the window trimmed z-lab's cache


# bf16: both sides cast their weights to bf16 (z-lab keeps RoPE's inv_freq fp32, as its
# `from_pretrained(dtype=bf16)` does) and get bf16 inputs. Stated tolerance: max |Δ hidden| <= 1e-2
# and at most half of z-lab's own bf16-vs-fp32 error; draft tokens identical. Measured: 0 (same op order).
BF16_ATOL = 1e-2


@pytest.mark.parametrize(
    ("config", "ctx_len", "block_size"),
    [CASES[3], CASES[7], CASES[8]],
)
def test_bf16_matches_zlab(config: dict, ctx_len: int, block_size: int) -> None:
    zlab = zlab_model(config)
    ours = ours_like(zlab, config).to(torch.bfloat16)
    inputs = random_inputs(seed=1)
    fp32_hidden, _ = zlab_draft(zlab, inputs, ctx_len, block_size)
    for p in zlab.parameters():
        p.data = p.data.to(torch.bfloat16)
    inputs = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in inputs.items()}
    want_hidden, want_tokens = zlab_draft(zlab, inputs, ctx_len, block_size)
    got_hidden, got_tokens = ours_draft(ours, inputs, ctx_len, block_size)
    assert got_hidden.dtype == torch.bfloat16
    error = (got_hidden.float() - want_hidden.float()).abs().max().item()
    zlab_rounding = (want_hidden.float() - fp32_hidden).abs().max().item()
    assert error <= BF16_ATOL and error <= 0.5 * zlab_rounding, (error, zlab_rounding)
    assert torch.equal(got_tokens, want_tokens)
