"""The optional second objective of drafter training: soft cross-entropy on the target's sampled continuations.

A drafter trained only on greedy continuations learns the target's argmax with hard labels and ends up
over-confident; speculative sampling accepts with min(1, p / q), so a sharp q that is wrong about the
runner-up tokens loses acceptance on sampled requests. Each step therefore adds
`weight * soft_block_loss` on a batch of sampled data (`sampled_data.py`) to the greedy loss: q at
the labels' temperature (1, or the row's sampling temperature) against the stored top-K target
distribution at that temperature, weighted per block position as the greedy
loss. Greedy requests keep their objective (the greedy data, hard labels); the weight trades the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from dflash_sglang.drafter import Drafter
from dflash_sglang.training.blocks import sample_anchors
from dflash_sglang.training.drafter_forward import block_logits
from dflash_sglang.training.frozen_target import FrozenTarget
from dflash_sglang.training.sampled_data import SampledBucket, SampledData
from dflash_sglang.training.soft_loss import expected_accepted, soft_block_loss

VAL_SEED = 4321  # fixed validation anchors of the sampled data


@dataclass(frozen=True)
class SampledArgs:
    path: Path  # sampled data file, built there if missing
    weight: float = 1.0  # the soft loss's weight next to the greedy loss (which keeps weight 1)
    temperatures: tuple[float, ...] = (0.7, 1.0)  # the sampling mix, assigned to rows in turn
    top_k: int = 64  # soft-label entries kept per position
    prompt_seed: int = 1  # prompts differ from the greedy data's (seed 0) for more variety
    sample_seed: int = 0  # the sampling generator's seed
    batch_size: int | None = None  # None: the greedy batch size
    row_temperature_labels: bool = False  # labels (and q) at each row's sampling temperature instead of T = 1


def sampled_block_loss(
    drafter: Drafter, target: FrozenTarget, batch: SampledBucket, anchors: torch.Tensor, weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(weighted soft loss, expected accepted drafts [bs, n_blocks]) of the blocks at anchors [bs, n_blocks]."""
    block_size = weights.shape[0] + 1
    logits, _ = block_logits(drafter, target, batch.tokens, batch.features, anchors, block_size)
    # q at the labels' temperature: the q speculative sampling at that temperature draws from.
    logits = logits / batch.label_temperatures[:, None, None, None]  # [bs, n_blocks, blk - 1, vocab]
    labels = batch.block_labels(anchors, block_size)  # [bs, n_blocks, blk - 1, K]
    return soft_block_loss(logits, labels, weights), expected_accepted(logits.detach(), labels)


def sampled_step_loss(
    drafter: Drafter, target: FrozenTarget, data: SampledData, weights: torch.Tensor, batch_size: int,
    anchors_per_seq: int, generator: torch.Generator,
) -> tuple[torch.Tensor, float]:
    """(soft loss of one random batch, its mean expected accepted drafts)."""
    batch = data.sample(batch_size, generator)
    first, last = batch.anchor_range(weights.shape[0] + 1)
    anchors = sample_anchors(first, last, anchors_per_seq, batch_size, generator)  # [bs, n_blocks]
    loss, accepted = sampled_block_loss(drafter, target, batch, anchors, weights)
    return loss, accepted.mean().item()


@torch.no_grad()
def validate_sampled(
    drafter: Drafter, target: FrozenTarget, val: SampledData, weights: torch.Tensor, anchors: int
) -> dict:
    """Soft loss and the sampled tau proxy (1 + mean expected accepted drafts at T = 1) on fixed held-out anchors."""
    generator = torch.Generator().manual_seed(VAL_SEED)
    losses, accepted = [], []
    for bucket in val.buckets:
        first, last = bucket.anchor_range(weights.shape[0] + 1)
        picks = sample_anchors(first, last, anchors, bucket.tokens.shape[0], generator)
        loss, acc = sampled_block_loss(drafter, target, bucket, picks, weights)
        losses.append(loss.item())
        accepted.append(acc.flatten())
    return {
        "sampled_loss": round(sum(losses) / len(losses), 4),
        "sampled_tau_proxy": round(1.0 + torch.cat(accepted).mean().item(), 3),
    }
