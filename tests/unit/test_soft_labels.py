"""The sampled-data objective: top-K soft labels (storage, indexing), the soft loss, and a short run with it."""

from __future__ import annotations

import math
import shutil
from dataclasses import replace

import pytest
import torch

from dflash_sglang.training.blocks import position_weights, weighted_block_loss
from dflash_sglang.training.drafter_train import DataArgs, DrafterTrainArgs, train_drafter
from dflash_sglang.training.run_state import Budget
from dflash_sglang.training.sampled_data import (
    SampledBucket,
    SampledData,
    load_sampled_data,
    row_temperatures,
    save_sampled_data,
)
from dflash_sglang.training.sampled_objective import SampledArgs
from dflash_sglang.training.soft_labels import TopK, dense, one_hot_top_k, top_k_of
from dflash_sglang.training.soft_loss import expected_accepted, soft_block_loss, soft_cross_entropy
from dflash_sglang.training.tiny_pair import TinyPairSpec, make_tiny_pair
from dflash_sglang.training.tokenizer import corpus_paths

SPEC = TinyPairSpec(hidden_size=32, intermediate_size=64, head_dim=16, target_layers=2)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: a second thread only adds waits


def test_soft_loss_of_a_one_hot_label_is_the_hard_loss():
    logits = torch.randn(2, 3, 7, 50, generator=torch.Generator().manual_seed(0))  # [bs, n_blocks, blk - 1, vocab]
    labels = torch.randint(0, 50, (2, 3, 7), generator=torch.Generator().manual_seed(1))
    weights = position_weights(8, gamma=4.0)
    soft = soft_block_loss(logits, one_hot_top_k(labels, k=8, vocab_size=50), weights)
    torch.testing.assert_close(soft, weighted_block_loss(logits, labels, weights), atol=1e-6, rtol=1e-6)


def test_soft_loss_with_all_ids_is_the_full_cross_entropy_and_the_tail_is_one_bucket():
    gen = torch.Generator().manual_seed(0)
    logits, target_logits = torch.randn(4, 20, generator=gen), torch.randn(4, 20, generator=gen)
    p = torch.softmax(target_logits, -1)
    full = -(p * torch.log_softmax(logits, -1)).sum(-1)  # [4]
    top = TopK(probs=p.half(), ids=torch.arange(20).expand(4, 20).to(torch.int16))
    torch.testing.assert_close(soft_cross_entropy(logits, top), full, atol=2e-3, rtol=1e-3)
    # Top 5 only: the other 15 ids are one bucket, for the label and for q alike.
    top5 = top_k_of(target_logits, 5)
    ids = top5.ids.long()
    q = torch.softmax(logits, -1)
    p_tail, q_tail = 1 - p.gather(-1, ids).sum(-1), 1 - q.gather(-1, ids).sum(-1)
    coarse = -(p.gather(-1, ids) * q.gather(-1, ids).log()).sum(-1) - p_tail * q_tail.log()
    torch.testing.assert_close(soft_cross_entropy(logits, top5), coarse, atol=2e-3, rtol=1e-3)


def test_an_unnormalised_label_changes_the_loss_and_one_summing_past_one_is_refused():
    logits = torch.randn(3, 30, generator=torch.Generator().manual_seed(0))
    top = top_k_of(torch.randn(3, 30, generator=torch.Generator().manual_seed(1)), 8)
    halved = TopK(probs=top.probs / 2, ids=top.ids)  # what a forgotten normalisation would look like
    assert not torch.allclose(soft_cross_entropy(logits, halved), soft_cross_entropy(logits, top), atol=1e-3)
    doubled = TopK(probs=top.probs * 2, ids=top.ids)
    top.check()
    with pytest.raises(ValueError, match="^soft labels: expected probabilities summing to <= 1"):
        doubled.check()


def test_top_k_keeps_the_largest_probabilities_and_round_trips_through_dense():
    logits = torch.randn(2, 5, 300, generator=torch.Generator().manual_seed(0))  # [rows, gen, vocab]
    top = top_k_of(logits, 64)
    assert top.probs.dtype == torch.float16 and top.ids.dtype == torch.int16 and top.ids.shape == (2, 5, 64)
    p = torch.softmax(logits, -1)
    torch.testing.assert_close(top.probs.float(), p.topk(64, -1).values, atol=1e-3, rtol=1e-3)
    back = dense(top, 300)  # [2, 5, 300]
    kept = back > 0
    torch.testing.assert_close(back[kept], p[kept], atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(top.tail, 1 - p.topk(64, -1).values.sum(-1), atol=2e-3, rtol=0)
    assert top_k_of(torch.randn(1, 40_000), 4).ids.dtype == torch.int32  # ids past int16 are kept whole


def _bucket(rows: int, prompt_len: int, num_new: int, k: int, vocab: int) -> SampledBucket:
    gen = torch.Generator().manual_seed(prompt_len)
    tokens = torch.randint(0, vocab, (rows, prompt_len + num_new), generator=gen)
    labels = top_k_of(torch.randn(rows, num_new, vocab, generator=gen), k)
    features = torch.randn(rows, prompt_len + num_new, 6, generator=gen)
    temps = row_temperatures(rows, (0.7, 1.0))
    return SampledBucket(tokens, features, prompt_len, labels, temps, torch.ones_like(temps))


def test_sampled_data_round_trips_and_blocks_read_the_label_of_each_position(tmp_path):
    data = SampledData((_bucket(4, 5, 12, 8, 40), _bucket(3, 9, 12, 8, 40)), (1,), {"generate": 1.0})
    save_sampled_data(data, tmp_path / "s.pt")
    back = load_sampled_data(tmp_path / "s.pt")
    for a, b in zip(data.buckets, back.buckets):
        assert torch.equal(a.tokens, b.tokens) and torch.equal(a.labels.probs, b.labels.probs)
        assert torch.equal(a.labels.ids, b.labels.ids) and a.prompt_len == b.prompt_len
    assert back.buckets[0].temperatures.tolist() == pytest.approx([0.7, 1.0, 0.7, 1.0])
    bucket = back.buckets[0]
    first, last = bucket.anchor_range(4)
    anchors = torch.tensor([[first, last]] * 4)  # [rows, 2]
    blocks = bucket.block_labels(anchors, 4)  # [rows, 2, 3, K]
    # Mask position k of the block at anchor a predicts token a + k: generated index a + k - prompt_len.
    assert torch.equal(blocks.ids[2, 0, 0], bucket.labels.ids[2, first + 1 - 5])
    assert torch.equal(blocks.probs[1, 1, 2], bucket.labels.probs[1, last + 3 - 5])
    train, val = back.split(1)
    assert [b.tokens.shape[0] for b in train.buckets] == [3, 2] and [b.tokens.shape[0] for b in val.buckets] == [1, 1]


def test_expected_accepted_counts_every_draft_when_q_equals_p():
    logits = torch.randn(1, 2, 7, 16, generator=torch.Generator().manual_seed(0))
    top = top_k_of(logits, 16)
    assert expected_accepted(logits, top)[0].tolist() == pytest.approx([7.0, 7.0], abs=2e-2)
    assert (expected_accepted(-logits, top) < 7.0).all()


def test_training_with_sampled_data_logs_both_objectives(tmp_path):
    make_tiny_pair(tmp_path / "pair", seed=0, spec=SPEC)
    (tmp_path / "corpus").mkdir()
    for path in [p for p in corpus_paths() if 2_000 < p.stat().st_size < 20_000][:20]:
        shutil.copyfile(path, tmp_path / "corpus" / path.name)
    data = DataArgs(prompt_lengths=(24,), prompts_per_length=6, num_new=20, val_rows=2, corpus_root=tmp_path / "corpus")
    sampled = SampledArgs(path=tmp_path / "sampled.pt", weight=0.5, top_k=16)
    args = DrafterTrainArgs(
        target_dir=tmp_path / "pair" / "target", out_dir=tmp_path / "out", init_dir=tmp_path / "pair" / "drafter",
        budget=Budget(max_steps=4, time_budget=None, lr=3e-3, warmup_steps=1), batch_size=2, anchors_per_seq=4,
        eval_every=2, data=data, data_path=tmp_path / "data.pt", sampled=sampled,
    )
    log = train_drafter(args)
    assert [len(row) for row in log["train"]] == [5] * 4  # step, greedy loss and proxy, soft loss and proxy
    soft_losses = [row[3] for row in log["train"]]
    assert all(0 < loss < math.log(SPEC.vocab_size) + 20 for loss in soft_losses), soft_losses
    assert {"loss", "tau_proxy", "sampled_loss", "sampled_tau_proxy"} <= set(log["val"][-1][1])
    assert log["sampled"]["weight"] == 0.5 and (tmp_path / "sampled.pt").is_file()
    reloaded = load_sampled_data(tmp_path / "sampled.pt")
    assert reloaded.buckets[0].labels.probs.shape == (6, 20, 16)
    # Reusing temperature-1 labels for a run that asks for row-temperature labels is an error, not a silent mix.
    row_args = replace(args, out_dir=tmp_path / "out2", sampled=replace(sampled, row_temperature_labels=True))
    with pytest.raises(ValueError, match="expected row-temperature labels, got label temperatures \\[1.0\\]"):
        train_drafter(row_args)


def test_row_temperature_labels_compare_q_at_the_same_temperature():
    # A drafter whose logits equal the target's: at T = 1 labels and at T = 0.7 labels alike, q = p,
    # so the soft loss is the label's entropy and every draft is expected to be accepted.
    from dflash_sglang.training.soft_loss import soft_cross_entropy as ce

    logits = torch.randn(2, 1, 3, 12, generator=torch.Generator().manual_seed(0))  # [bs, n_blocks, blk - 1, vocab]
    temps = torch.tensor([0.7, 1.0])  # [bs]
    labels = top_k_of(logits / temps[:, None, None, None], 12)
    q_logits = logits / temps[:, None, None, None]  # what sampled_block_loss does with label_temperatures
    p = torch.softmax(q_logits, -1)
    torch.testing.assert_close(ce(q_logits, labels), -(p * p.log()).sum(-1), atol=2e-3, rtol=1e-3)
    assert expected_accepted(q_logits, labels).flatten().tolist() == pytest.approx([3.0, 3.0], abs=2e-2)
    # Comparing q at T = 1 against T = 0.7 labels (the mismatch the per-row temperature prevents) costs more.
    assert ce(logits[:1], labels.index(slice(0, 1))).sum() > ce(q_logits[:1], labels.index(slice(0, 1))).sum()


def test_row_temperature_labels_built_while_sampling_equal_a_teacher_forced_relabel(tmp_path):
    from dflash_sglang.training.frozen_target import FrozenTarget
    from dflash_sglang.training.sampled_data import build_sampled_data, relabel_at_row_temperature

    make_tiny_pair(tmp_path / "pair", seed=0, spec=SPEC)
    target = FrozenTarget.from_dir(tmp_path / "pair" / "target")
    prompts = {6: torch.randint(3, SPEC.vocab_size, (4, 6), generator=torch.Generator().manual_seed(0))}
    direct = build_sampled_data(target, prompts, 10, [1], top_k=32, seed=3, row_temperature_labels=True)
    relabelled = relabel_at_row_temperature(target, build_sampled_data(target, prompts, 10, [1], top_k=32, seed=3), 32)
    a, b = direct.buckets[0], relabelled.buckets[0]
    assert torch.equal(a.tokens, b.tokens)  # the labels' temperature does not change what is sampled
    assert torch.equal(a.label_temperatures, a.temperatures) and torch.equal(b.label_temperatures, b.temperatures)
    torch.testing.assert_close(a.labels.probs.float(), b.labels.probs.float(), atol=2e-3, rtol=0)
