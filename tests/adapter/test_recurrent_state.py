"""The recurrent-state commit's index plumbing, on hand-made tensors (no server). The e2e proof that
the commit makes hybrid targets lossless is tests/e2e/test_hybrid_dflash.py."""

from __future__ import annotations

import torch

from dflash_sglang.sglang_adapter.recurrent_state import SKIP_COMMIT_ENV, chain_accept_index
from helpers.e2e import SKIP_STATE_COMMIT_ENV


def test_chain_accept_index_lists_the_committed_block_positions_of_each_request():
    index = chain_accept_index(torch.tensor([1, 4, 3]), block_size=4)
    assert index.tolist() == [[0, -1, -1, -1], [4, 5, 6, 7], [8, 9, 10, -1]]


def test_last_committed_step_is_acceptance_length_minus_one():
    # SGLang's commit reads the last committed step as accept_index[b, len-1] - b*blk: for a chain that
    # must be len-1, the block position whose state follows exactly the committed tokens.
    lengths = torch.tensor([2, 8, 1, 5])
    index = chain_accept_index(lengths, block_size=8)
    rows = torch.arange(4)
    assert (index[rows, lengths - 1] - rows * 8).tolist() == (lengths - 1).tolist()


def test_the_e2e_guard_names_the_real_switch():
    assert SKIP_STATE_COMMIT_ENV == SKIP_COMMIT_ENV
