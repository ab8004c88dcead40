"""Where a tree step's KV goes. The target verified node i of request b at a temporary slot
`node_slots[b, i]`; the committed tokens must end up at the request's own contiguous slots
`block_slots[b, :acceptance_length]` (the ones the scheduler reserved past seq_len), in path order,
and every temporary slot is then free. The drafter's context K/V is written straight to the
contiguous slots from the target features of the path's nodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dflash_sglang.spec.tree_types import TreeAcceptance


@dataclass(frozen=True)
class CommitPlan:
    path_nodes: torch.Tensor  # [m] flat node index b * n + i of every committed token, request-major
    src_slots: torch.Tensor  # [m] temporary slots holding their target KV
    dst_slots: torch.Tensor  # [m] the request's contiguous slots they move to
    positions: torch.Tensor  # [m] absolute positions seq_len + depth

    @staticmethod
    def make_dummy(path_nodes: list[int], src: list[int], dst: list[int], positions: list[int]) -> "CommitPlan":
        t = torch.tensor
        return CommitPlan(t(path_nodes), t(src), t(dst), t(positions))


def commit_plan(walked: TreeAcceptance, node_slots: torch.Tensor, block_slots: torch.Tensor,
                seq_lens: torch.Tensor) -> CommitPlan:
    """node_slots [bs, n], block_slots [bs, blk], seq_lens [bs] -> the moves of the committed path."""
    bs, n = node_slots.shape
    keep = walked.path >= 0  # [bs, blk] root, accepted nodes; a prefix of each row
    rows = torch.arange(bs, device=node_slots.device)[:, None].expand_as(walked.path)  # [bs, blk]
    nodes = walked.path.clamp(min=0)
    depth = torch.arange(walked.path.shape[1], device=node_slots.device)[None, :]  # path column = depth
    return CommitPlan(
        path_nodes=(rows * n + nodes)[keep],
        src_slots=node_slots.gather(1, nodes)[keep],
        dst_slots=block_slots[:, : walked.path.shape[1]][keep],
        positions=(seq_lens[:, None] + depth)[keep],
    )


def move_rows(buffer: torch.Tensor, plan: CommitPlan) -> None:
    """Plain-torch reference of the pool's `move_kv_cache(dst, src)` for one buffer [slots, ...].
    Sources are temporary slots and destinations the request's own, so the two never overlap."""
    buffer[plan.dst_slots] = buffer[plan.src_slots]
