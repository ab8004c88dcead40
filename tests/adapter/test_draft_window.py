"""The draft window's compact rows and lengths (`sglang_adapter/draft_window.py`), on hand-made tables.
That a server applies them, with the builtin's results, is tests/e2e/test_dflash_draft_window.py."""

from __future__ import annotations

import pytest
import torch

from dflash_sglang.sglang_adapter.draft_window import DraftWindow, check_window, visible_lens
from dflash_sglang.sglang_adapter.step_models import block_slots

BLOCK = 4


def test_visible_lens_are_the_last_window_tokens_or_the_whole_short_context():
    assert visible_lens(torch.tensor([3, 100, 64, 65]), window=64, page_size=1).tolist() == [3, 64, 64, 64]


def test_visible_lens_start_on_a_page_keeping_up_to_page_minus_one_older_tokens():
    # 100 - 64 = 36 -> page start 32: 68 tokens; 96 - 64 = 32 is a page start already.
    assert visible_lens(torch.tensor([100, 96, 20]), window=64, page_size=16).tolist() == [68, 64, 20]


def _target_table(rows: int = 4, width: int = 300) -> torch.Tensor:
    return (torch.arange(rows * width, dtype=torch.int32).view(rows, width) + 10_000)  # slot = 10000 + width*row + col


@pytest.mark.parametrize("page_size", [1, 16])
def test_compact_row_is_the_window_then_the_block_slots(page_size):
    window = DraftWindow(size=64, block_size=BLOCK, page_size=page_size)
    target = _target_table()
    draft = torch.full((4, window.table_width), -1, dtype=torch.int32)
    req_pool_indices, seq_lens = torch.tensor([3, 1]), torch.tensor([100, 10])
    lens, lens_cpu = window.compact(draft, target, req_pool_indices, seq_lens, seq_lens.clone())
    assert lens.tolist() == lens_cpu.tolist() == visible_lens(seq_lens, 64, page_size).tolist()
    slots = block_slots(target, req_pool_indices, seq_lens, BLOCK)  # [bs, blk] what the draft pass writes
    for b, (row, seq_len, n) in enumerate(zip(req_pool_indices.tolist(), seq_lens.tolist(), lens.tolist())):
        assert draft[row, :n].tolist() == target[row, seq_len - n : seq_len].tolist()  # the last n committed
        assert draft[row, n : n + BLOCK].tolist() == slots[b].tolist()
    assert (draft[[0, 2]] == -1).all()  # rows of other requests are left alone


def test_table_width_holds_window_alignment_and_block_in_whole_pages():
    assert DraftWindow(size=64, block_size=8).table_width == 72
    assert DraftWindow(size=64, block_size=8, page_size=16).table_width == 96  # 64 + 15 + 8 -> 6 pages


@pytest.mark.parametrize(("window", "message"), [
    (0, "expected a positive number of tokens, got 0"),
    (-3, "expected a positive number of tokens, got -3"),
    (7, r"expected at least the block size \(--speculative-num-draft-tokens 8\), got 7"),
])
def test_bad_windows_are_refused_by_name(window, message):
    with pytest.raises(ValueError, match="--speculative-draft-window-size: " + message):
        check_window(window, 8)
    check_window(8, 8)
