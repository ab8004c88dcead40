"""The tree walk and the commit plan on hand-built trees."""

from __future__ import annotations

import pytest
import torch

from dflash_sglang.spec.tree_accept import walk_tree
from dflash_sglang.spec.tree_commit import commit_plan, move_rows
from dflash_sglang.spec.tree_types import NO_PARENT, DraftTree, TreeAcceptance
from dflash_sglang.spec.types import PLACEHOLDER_TOKEN_ID as P

EOS = 2
#        node:  0   1   2   3   4   5   6
TOKENS = [[50, 10, 11, 20, 21, EOS, 30]]
PARENTS = [[NO_PARENT, 0, 0, 1, 1, 2, 3]]  # 10 -> {20, 21}; 11 -> EOS; 20 -> 30


@pytest.mark.parametrize("posterior,path,out", [
    # Root wants 10, node 1 wants 21, node 4 has no child: bonus is node 4's token 99.
    ([10, 21, 0, 0, 99, 0, 0], [0, 1, 4], [10, 21, 99, P]),
    # Down the deepest branch 10 -> 20 -> 30, bonus from node 6.
    ([10, 20, 0, 30, 0, 0, 77], [0, 1, 3, 6], [10, 20, 30, 77]),
    # The path ends with a stop token: 11 -> EOS is committed and the scheduler stops at EOS.
    ([11, 0, EOS, 0, 0, 5, 0], [0, 2, 5], [11, EOS, 5, P]),
    # The target's token at the root is no child: only the bonus.
    ([12, 20, 0, 30, 0, 0, 0], [0], [12, P, P, P]),
    # A sibling's child never matches through the wrong parent: node 1 wants EOS (node 5 is 11's child).
    ([10, EOS, 0, 0, 0, 0, 0], [0, 1], [10, EOS, P, P]),
], ids=["branch", "deepest", "stop-token", "root-only", "wrong-parent"])
def test_walk_hand_built(posterior, path, out):
    tree = DraftTree.make_dummy(TOKENS, PARENTS, [40])
    walked = walk_tree(tree, torch.tensor([posterior]), block_size=4)
    assert walked.path[0, : len(path)].tolist() == path
    assert walked.acceptance.accepted.tolist() == [len(path) - 1]
    assert walked.acceptance.out_tokens.tolist() == [out]
    assert walked.acceptance.bonus.tolist() == [out[len(path) - 1]]


def test_walk_batched_rows_are_independent():
    tree = DraftTree.make_dummy(TOKENS * 3, PARENTS * 3, [0, 5, 9])
    posterior = torch.tensor([[10, 20, 0, 30, 0, 0, 77], [12] + [0] * 6, [11, 0, EOS, 0, 0, 5, 0]])
    walked = walk_tree(tree, posterior, block_size=4)
    assert walked.acceptance.accepted.tolist() == [3, 0, 2]
    assert walked.acceptance.out_tokens.tolist() == [[10, 20, 30, 77], [12, P, P, P], [11, EOS, 5, P]]


def test_commit_moves_the_path_to_contiguous_slots():
    """Row r of the fake KV holds the node it was verified for; after the moves each request's own
    slots hold its path, root first, and other requests' slots are untouched."""
    walked = TreeAcceptance.make_dummy([[0, 2, 5], [0]], bonus=[5, 12], tokens=TOKENS * 2, block_size=4)
    node_slots = torch.tensor([[100, 101, 102, 103, 104, 105, 106], [200, 201, 202, 203, 204, 205, 206]])
    block_slots = torch.tensor([[10, 11, 12, 13], [20, 21, 22, 23]])
    plan = commit_plan(walked, node_slots, block_slots, seq_lens=torch.tensor([40, 7]))
    assert plan.path_nodes.tolist() == [0, 2, 5, 7]
    assert plan.src_slots.tolist() == [100, 102, 105, 200]
    assert plan.dst_slots.tolist() == [10, 11, 12, 20]
    assert plan.positions.tolist() == [40, 41, 42, 7]
    kv = torch.arange(300, dtype=torch.float32)[:, None].repeat(1, 2)  # [slots, 2]
    move_rows(kv, plan)
    assert kv[10:14, 0].tolist() == [100, 102, 105, 13] and kv[20:24, 0].tolist() == [200, 21, 22, 23]
