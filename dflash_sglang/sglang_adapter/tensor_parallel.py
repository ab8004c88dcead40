"""Our DFLASH worker under tensor parallelism (`--tp-size N`).

The drafter is small, so every rank runs all of it (replicated), as SGLang's `DraftTPExecution.SINGLE_GROUP`
does under attention DP: its draft worker is built, its KV pool sized and its forward run inside SGLang's
`draft_tp_context` on a one-rank group. The KV pool then holds all the drafter's KV heads, which is what our
drafter writes (the target's TP would size it for `kv_heads / tp`).

What the drafter borrows from the target is vocab-parallel:
- the embedding of the block (`VocabParallelEmbedding`: masked lookup in this rank's shard, then an all-reduce
  over the TP group). It is called from the step outside the draft scope, by every rank with the same tokens,
  so every rank gets the full-vocab embedding;
- the `lm_head`, one vocab shard per rank. The drafter needs the full-vocab logits (greedy argmax, and the
  drafter's distribution for sampled requests), so the whole weight is all-gathered once at start-up.

Every rank must then commit identical tokens: the ranks run their collectives in lockstep, and a rank that
accepted a different length would finish a request at another step and deadlock the group. Like SGLang's
builtin (`SpecTpSync`), rank 0 decides and broadcasts: the prefill's first tokens, the candidates before verify
(sampled drafts draw from an RNG) and the accept decision after it. SGLang's own sampler keeps ranks in step by
drawing identically from identically seeded RNGs; our sampled steps may draw a data-dependent number of values,
so after one of them the ranks' RNGs are no longer the same, and only rank 0's draws count.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from sglang.srt.configs.draft_parallel import DraftParallelLayout
from sglang.srt.distributed.parallel_state import get_attn_tp_group, get_self_pp_group, get_tp_group
from sglang.srt.runtime_context import get_parallel
from sglang.srt.speculative.spec_utils import draft_pp_context, draft_tp_context

from dflash_sglang.log import log_once
from dflash_sglang.spec.types import Acceptance

# Test-only: the drafter gets this rank's lm_head shard instead of the whole head, so that a test can show
# that the TP checks see the difference.
SKIP_LM_HEAD_GATHER_ENV = "DFLASH_SGLANG_TEST_SKIP_LM_HEAD_GATHER"


def replicated_draft_layout() -> DraftParallelLayout:
    """The drafter on a one-rank group of its own under TP; SGLang's plain layout at tp 1."""
    if get_parallel().tp_size == 1:
        return DraftParallelLayout(tp_group=None, attn_tp_size=1)
    # SGLang's singleton group per rank (built on every rank for one-layer drafts); a group of one makes
    # every draft-side collective a no-op and every draft-side size the whole model's.
    return DraftParallelLayout(tp_group=get_self_pp_group(), attn_tp_size=1)


@contextmanager
def draft_build_scope(layout: DraftParallelLayout) -> Iterator[None]:
    """Construction, backends and graphs of the draft worker: its own TP and PP groups."""
    with draft_pp_context(), draft_tp_context(layout):
        yield


def full_vocab_lm_head(lm_head: torch.nn.Module, group=None) -> torch.Tensor:
    """[vocab, hidden] the target's whole output head on every rank (its own weight at tp 1).
    `group`: the head's TP group (default: the one SGLang shards it over)."""
    if group is None:
        group = get_attn_tp_group() if getattr(lm_head, "use_attn_tp_group", False) else get_tp_group()
    if group.world_size == 1:
        return lm_head.weight
    if os.environ.get(SKIP_LM_HEAD_GATHER_ENV, "0") == "1":
        log_once("skip-lm-head-gather", "%s=1: the drafter reads this rank's lm_head shard, not the whole "
                 "head (test-only switch; drafts are wrong)", SKIP_LM_HEAD_GATHER_ENV, level=logging.WARNING)
        return lm_head.weight
    shard = lm_head.shard_indices
    if shard.num_added_elements_padded:
        raise ValueError(f"DFLASH under TP: expected an lm_head without added vocabulary (LoRA extra tokens), "
                         f"got {shard.num_added_elements_padded} added rows")
    # Every rank holds the same padded number of rows, rank r from r * rows on: the rank-ordered
    # concatenation is the padded head in vocabulary order.
    rows = shard.num_org_elements_padded
    assert shard.padded_org_vocab_start_index == group.rank_in_group * rows, (shard, group.rank_in_group)
    gathered = group.all_gather(lm_head.weight[:rows].contiguous(), dim=0)  # [tp*rows, hidden]
    return gathered[:lm_head.org_vocab_size]  # [vocab, hidden]


class RankAgreement:
    """Rank 0's candidates and accept decision, on every rank of the TP group (no-ops at tp 1)."""

    def __init__(self, group) -> None:
        self.group = group

    @staticmethod
    def for_target() -> "RankAgreement":
        return RankAgreement(get_tp_group())

    @property
    def active(self) -> bool:
        return self.group.world_size > 1

    def tokens(self, tokens: torch.Tensor) -> None:
        """Token ids ([bs] first tokens, [bs, blk] candidates), overwritten in place with rank 0's."""
        if self.active:
            self._from_rank0(tokens)

    @torch.inference_mode()
    def acceptance(self, acceptance: Acceptance) -> None:
        """The accept decision, overwritten in place with rank 0's, in one broadcast."""
        if not self.active:
            return
        bs, blk = acceptance.out_tokens.shape
        packed = torch.cat([acceptance.out_tokens.to(torch.int64), acceptance.accepted.to(torch.int64)[:, None],
                            acceptance.bonus.to(torch.int64)[:, None]], dim=1)  # [bs, blk+2]
        self.group.broadcast(packed, src=0)
        acceptance.out_tokens.copy_(packed[:, :blk])
        acceptance.accepted.copy_(packed[:, blk])
        acceptance.bonus.copy_(packed[:, blk + 1])

    @torch.inference_mode()  # the step's tensors may be inference tensors: in-place writes need the mode
    def _from_rank0(self, tensor: torch.Tensor) -> None:
        contiguous = tensor.contiguous()
        self.group.broadcast(contiguous, src=0)
        if contiguous.data_ptr() != tensor.data_ptr():
            tensor.copy_(contiguous)
