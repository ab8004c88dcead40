"""Recurrent-state commit for hybrid targets (Gated DeltaNet / Mamba layers mixed with attention).

A verify pass runs the whole block through the target's recurrent layers, but in TARGET_VERIFY SGLang's
kernels leave the live conv and SSM state untouched (`disable_state_update`) and keep the state after
each block position in per-step buffers instead. After accept, the state after exactly the committed
tokens (anchor + accepted drafts) has to be copied into the live slot, and, with
`--mamba-radix-cache-strategy extra_buffer`, the state at a track-interval crossing into the request's
track slot, so that the radix cache can later resume from it. Attention KV needs no such step: the
scheduler advances `seq_lens` by the acceptance lengths and the rest of the block is overwritten.

We use SGLang's own commit (`commit_mamba_states_after_verify`, shared by its EAGLE and NGRAM workers),
which covers the plain scatter, track slots and the ReplaySSM variants. A dense target makes this a
no-op: `RecurrentStateCommit.for_target` returns `no_recurrent_state`.
"""

from __future__ import annotations

import logging
import os

import torch

from sglang.srt.configs.hybrid_arch import mambaish_config
from sglang.srt.speculative.spec_utils import commit_mamba_states_after_verify

from dflash_sglang.log import log_once

# Test-only: switches the commit off so that a test can show the lossless check sees the bug.
SKIP_COMMIT_ENV = "DFLASH_SGLANG_TEST_SKIP_STATE_COMMIT"


def chain_accept_index(acceptance_lengths: torch.Tensor, block_size: int) -> torch.Tensor:
    """[bs, blk] for each request, the flat verify-token index of each committed block position
    (`b * blk + k` for k < acceptance length), -1 past it: a chain is a tree with one child per node."""
    bs = acceptance_lengths.shape[0]
    columns = torch.arange(block_size, device=acceptance_lengths.device)  # [blk]
    flat = torch.arange(bs, device=acceptance_lengths.device)[:, None] * block_size + columns[None, :]  # [bs, blk]
    return torch.where(columns[None, :] < acceptance_lengths[:, None], flat, torch.full_like(flat, -1))


def no_recurrent_state(batch, acceptance_lengths: torch.Tensor) -> None:
    """The commit for a target without recurrent layers: nothing to do."""


class RecurrentStateCommit:
    def __init__(self, target_worker, block_size: int) -> None:
        self.target_worker = target_worker
        self.block_size = block_size

    @staticmethod
    def for_target(target_worker, block_size: int):
        """The commit this target needs, once its attention backends exist."""
        if mambaish_config(target_worker.model_runner.model_config) is None:
            return no_recurrent_state
        if os.environ.get(SKIP_COMMIT_ENV, "0") == "1":
            log_once("skip-state-commit", "%s=1: the hybrid target's recurrent state is NOT committed after "
                     "verify (test-only switch; output is wrong)", SKIP_COMMIT_ENV, level=logging.WARNING)
            return no_recurrent_state
        backend = target_worker.model_runner.attn_backend
        if not hasattr(backend, "update_mamba_state_after_mtp_verify"):
            raise ValueError(f"hybrid target: expected an attention backend that commits recurrent state after "
                             f"verify (update_mamba_state_after_mtp_verify), got {type(backend).__name__}")
        return RecurrentStateCommit(target_worker, block_size)

    def __call__(self, batch, acceptance_lengths: torch.Tensor) -> None:
        """Must run after the target's verify pass and before the scheduler advances `batch.seq_lens`
        (SGLang's commit reads them as the lengths before the block)."""
        lengths = acceptance_lengths.to(torch.int64)  # [bs] anchor + accepted drafts
        commit_mamba_states_after_verify(
            self.target_worker, batch, lengths, chain_accept_index(lengths, self.block_size), self.block_size)
