"""The DFlash training recipe: loss weights, blocks, the block-causal mask, the masked training forward,
and short end-to-end runs (target pre-training, drafter training, resume) on a tiny random pair."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch

from dflash_sglang.drafter import load_drafter
from dflash_sglang.training.acceptance import ngram_draft, ngram_steps
from dflash_sglang.training.blocks import (
    accepted_drafts,
    block_causal_mask,
    make_blocks,
    position_weights,
    sample_anchors,
    weighted_block_loss,
)
from dflash_sglang.training.drafter_forward import inference_forward, training_forward
from dflash_sglang.training.drafter_init import config_for_target, drafter_config_dict, new_drafter
from dflash_sglang.training.drafter_train import DataArgs, DrafterTrainArgs, train_drafter
from dflash_sglang.training.run_state import STATE_FILE, Budget
from dflash_sglang.training.target_pretrain import TargetTrainArgs, train_target
from dflash_sglang.training.tiny_pair import TinyPairSpec, make_tiny_pair
from dflash_sglang.training.tokenizer import corpus_paths

SPEC = TinyPairSpec(hidden_size=32, intermediate_size=64, head_dim=16, target_layers=2)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: a second thread only adds waits


def test_position_weights_decay_exponentially_from_one():
    weights = position_weights(8, gamma=4.0)
    expected = [1.0, math.exp(-0.25), math.exp(-0.5), math.exp(-0.75), math.exp(-1.0), math.exp(-1.25), math.exp(-1.5)]
    assert weights.tolist() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="^gamma: expected > 0, got 0"):
        position_weights(8, gamma=0)


def test_weighted_loss_on_hand_made_logits():
    # Block of 3: position 1 uniform over 4 tokens (CE log 4), position 2 gives its label p = 1/2 (CE log 2).
    logits = torch.zeros(1, 1, 2, 4)  # [bs, n_blocks, blk - 1, vocab]
    logits[0, 0, 1, 3] = math.log(3.0)
    labels = torch.tensor([[[1, 3]]])  # [bs, n_blocks, blk - 1]
    w = math.exp(-1 / 4)
    loss = weighted_block_loss(logits, labels, position_weights(3, gamma=4.0))
    assert loss.item() == pytest.approx((math.log(4) + w * math.log(2)) / (1 + w), rel=1e-6)


def test_accepted_drafts_is_the_correct_prefix():
    labels = torch.tensor([[[5, 6, 7], [5, 6, 7], [5, 6, 7]]])  # [1, 3 blocks, 3 drafts]
    guesses = torch.tensor([[[5, 6, 7], [5, 0, 7], [0, 6, 7]]])  # all right; wrong 2nd; wrong 1st
    logits = torch.nn.functional.one_hot(guesses, 8).float()
    assert accepted_drafts(logits, labels).tolist() == [[3, 1, 0]]


def test_make_blocks_puts_anchor_then_masks_and_labels_the_next_tokens():
    tokens = torch.arange(100, 110)[None]  # [1, 10]
    blocks = make_blocks(tokens, torch.tensor([[2, 6]]), block_size=3, mask_token_id=9)
    assert blocks.ids.tolist() == [[102, 9, 9, 106, 9, 9]]
    assert blocks.positions.tolist() == [[2, 3, 4, 6, 7, 8]]
    assert blocks.labels.tolist() == [[[103, 104], [107, 108]]]


def test_block_causal_mask_two_blocks():
    # Context of 6 positions, blocks of 2 at anchors 2 and 4: keys are ctx 0..5, block0 (2 keys), block1 (2 keys).
    mask = block_causal_mask(torch.tensor([[2, 4]]), context_len=6, block_size=2)[0].int()
    block0_row = [1, 1, 0, 0, 0, 0] + [1, 1] + [0, 0]  # context before its anchor 2, its own block
    block1_row = [1, 1, 1, 1, 0, 0] + [0, 0] + [1, 1]  # context before 4, its own block, not block 0
    assert mask.tolist() == [block0_row, block0_row, block1_row, block1_row]


def test_sample_anchors_are_distinct_sorted_and_in_range():
    anchors = sample_anchors(5, 14, 10, 3, torch.Generator().manual_seed(0))
    for row in anchors.tolist():
        assert row == list(range(5, 15))  # 10 of 10 positions: every one, once
    some = sample_anchors(5, 40, 4, 50, torch.Generator().manual_seed(1))
    assert some.min() >= 5 and some.max() <= 40 and bool((some.diff(dim=1) > 0).all())
    with pytest.raises(ValueError, match="^num_anchors: expected <= 10"):
        sample_anchors(5, 14, 11, 1, torch.Generator())


@pytest.mark.parametrize("num_layers", [1, 2])
def test_training_forward_equals_inference_forward_per_block(num_layers):
    target_config = {"num_hidden_layers": 4, "hidden_size": 32, "intermediate_size": 48, "num_attention_heads": 4,
                     "num_key_value_heads": 2, "head_dim": 8, "vocab_size": 50, "rope_theta": 10000.0}
    config = config_for_target(target_config, drafter_config_dict(target_config, num_layers, 4, mask_token_id=3))
    drafter = new_drafter(config, seed=0, std=0.2).eval()
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(2, 12, config.num_features * 32, generator=gen)  # [bs, ctx, n_feat * hidden]
    tokens = torch.randint(0, 50, (2, 12), generator=gen)
    embed = torch.randn(50, 32, generator=gen)  # [vocab, hidden]
    anchors = torch.tensor([[1, 5, 8], [0, 3, 7]])  # [bs, n_blocks]; overlapping blocks on purpose
    blocks = make_blocks(tokens, anchors, 4, mask_token_id=3)
    embeds = drafter.embed_block(blocks.ids, embed)
    with torch.no_grad():
        batched = training_forward(drafter, features, embeds, blocks.positions, block_causal_mask(anchors, 12, 4))
    for b in range(2):
        for j, anchor in enumerate(anchors[b].tolist()):
            one = inference_forward(drafter, features[b : b + 1], embeds[b : b + 1, 4 * j : 4 * j + 4], anchor)
            torch.testing.assert_close(batched[b : b + 1, 4 * j : 4 * j + 4], one, atol=1e-5, rtol=0)


def test_ngram_lookup_drafts_what_followed_an_earlier_match():
    assert ngram_draft([1, 2, 3, 9, 1, 2, 3, 7, 2, 3], num_draft=2) == [7, 2]  # suffix [2, 3]: latest full match
    assert ngram_draft([4, 5, 6], num_draft=3) == []  # no earlier match
    # In a loop the latest match of the longest suffix is one token back (1 token follows); the shorter
    # suffix [0, 0] has an earlier match with all 3 tokens after it.
    assert ngram_draft([5, 0, 0, 0, 0, 0], num_draft=3) == [0, 0, 0]
    assert ngram_draft([5, 0, 0, 0], num_draft=3) == [0, 0]  # no full draft: the longest there is
    # Anchor at index 2 of "1 2 1 2 1 2 1 2": the text so far "1 2 1" holds only "2 1" after the earlier "1",
    # so 2 drafts, both right (+ bonus = 3). Next anchor at 5: 3 drafts, but only 2 tokens remain.
    assert ngram_steps([1, 2, 1, 2, 1, 2, 1, 2], first=2, block_size=4) == [3, 2]


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    """A random tiny pair and a 40-file slice of the stdlib (39 train files, 1 validation file)."""
    root = tmp_path_factory.mktemp("tiny")
    make_tiny_pair(root / "init", seed=0, spec=SPEC)
    (root / "corpus").mkdir()
    for path in [p for p in corpus_paths() if 2_000 < p.stat().st_size < 20_000][:40]:
        shutil.copyfile(path, root / "corpus" / path.name)
    return root


def _drafter_args(root, out, max_steps, resume=False):
    data = DataArgs(prompt_lengths=(24, 40), prompts_per_length=10, num_new=24, val_rows=2, corpus_root=root / "corpus")
    return DrafterTrainArgs(
        target_dir=root / "target", out_dir=out, init_dir=root / "init" / "drafter",
        budget=Budget(max_steps=max_steps, time_budget=None, lr=3e-3, warmup_steps=2), batch_size=4,
        anchors_per_seq=6, eval_every=5, data=data, data_path=root / "data.pt", resume=resume,
    )


@pytest.fixture(scope="module")
def trained_target(tiny_root):
    budget = Budget(max_steps=16, time_budget=None, lr=1e-2, warmup_steps=2)
    args = TargetTrainArgs(init_dir=tiny_root / "init" / "target", out_dir=tiny_root / "target", budget=budget,
                           seq_len=48, batch_size=4, eval_every=8, val_windows=8, corpus_root=tiny_root / "corpus")
    return train_target(args)


def test_target_pretraining_lowers_the_validation_loss(trained_target, tiny_root):
    val = [loss for _, loss in trained_target["val"]]
    assert len(val) == 2 and val[-1] < val[0] < math.log(SPEC.vocab_size) + 0.5, val
    tokenizer_files = [tiny_root / d / "tokenizer.json" for d in ("target", "init/target")]
    assert tokenizer_files[0].read_bytes() == tokenizer_files[1].read_bytes()  # only the weights change


def test_drafter_training_lowers_loss_and_writes_a_checkpoint_both_loaders_read(trained_target, tiny_root):
    dflash_model = pytest.importorskip("dflash.model")
    out = tiny_root / "drafter"
    log = train_drafter(_drafter_args(tiny_root, out, max_steps=30))
    losses = [loss for _, loss, _ in log["train"]]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.5, losses
    ours = load_drafter(out, tiny_root / "target")
    zlab, info = dflash_model.DFlashDraftModel.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    assert (zlab.block_size, zlab.mask_token_id, zlab.target_layer_ids) == (8, 2, [1])
    torch.testing.assert_close(zlab.fc.weight, ours.fc.weight, atol=0, rtol=0)


def test_resume_continues_from_the_saved_step(trained_target, tiny_root):
    out = tiny_root / "resumed"
    train_drafter(_drafter_args(tiny_root, out, max_steps=5))
    assert torch.load(out / STATE_FILE, weights_only=True)["run"]["step"] == 5
    log = train_drafter(_drafter_args(tiny_root, out, max_steps=10, resume=True))
    assert [step for step, *_ in log["train"]] == list(range(1, 11))
    assert json.loads((out / "train_log.json").read_text())["steps"] == 10
    assert torch.load(out / STATE_FILE, weights_only=True)["run"]["step"] == 10
