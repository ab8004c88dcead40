"""The worker side of `auto` that needs no server: the block layout the scheduler reads, the tree widths,
the plain step's forward."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from dflash_sglang.sglang_adapter.budget_auto import pad_acceptance, pad_positions, tree_widths
from dflash_sglang.sglang_adapter.plain_pass import DECODE, PLAIN_PASS_ENV, VERIFY, plain_pass_mode
from dflash_sglang.spec.types import PLACEHOLDER_TOKEN_ID, Acceptance


def test_a_narrow_step_is_padded_to_the_block_stride():
    narrow = Acceptance.make_dummy(accepted=[0, 2], bonus=[7, 9], block_size=3)  # width 3
    padded = pad_acceptance(narrow, block_size=8)
    assert padded.out_tokens.shape == (2, 8)
    assert padded.out_tokens[:, :3].tolist() == narrow.out_tokens.tolist()
    assert bool((padded.out_tokens[:, 3:] == PLACEHOLDER_TOKEN_ID).all())
    assert padded.acceptance_lengths.tolist() == [1, 3]
    full = Acceptance.make_dummy(accepted=[1], bonus=[5], block_size=8)
    assert pad_acceptance(full, block_size=8) is full  # the chain and trees are already in the block's layout


def test_logits_are_padded_for_the_logprob_layout():
    logits = torch.randn(2, 3, 11)  # [bs, width, vocab]
    padded = pad_positions(logits, block_size=8)
    assert padded.shape == (2, 8, 11) and torch.equal(padded[:, :3], logits)


def test_tree_widths_double_from_16_past_the_block_up_to_the_bound():
    assert tree_widths(64, block_size=8, page_size=1) == (16, 32, 64)
    assert tree_widths(64, block_size=16, page_size=1) == (32, 64)
    assert tree_widths(64, block_size=8, page_size=16) == ()  # tree nodes take single KV slots


def test_the_step_clock_is_the_host_clock_off_cuda():
    import time

    from dflash_sglang.sglang_adapter.budget_auto import step_clock

    assert step_clock("cpu") is time.perf_counter
    assert step_clock("cuda") is not time.perf_counter  # synchronises first (not run here: no GPU)


def test_plain_steps_take_the_decode_forward_only_where_no_decode_graph_could_replay_them(monkeypatch):
    monkeypatch.delenv(PLAIN_PASS_ENV, raising=False)
    assert plain_pass_mode(SimpleNamespace(decode_cuda_graph_runner=None)) == DECODE
    # graphs captured at the block's width would take a DECODE batch without spec_info for their own
    assert plain_pass_mode(SimpleNamespace(decode_cuda_graph_runner=object())) == VERIFY
    monkeypatch.setenv(PLAIN_PASS_ENV, VERIFY)
    assert plain_pass_mode(SimpleNamespace(decode_cuda_graph_runner=None)) == VERIFY
    monkeypatch.setenv(PLAIN_PASS_ENV, "fast")
    with pytest.raises(ValueError, match="expected decode or verify, got 'fast'"):
        plain_pass_mode(SimpleNamespace(decode_cuda_graph_runner=None))
