"""The soft objective on sampled data: cross-entropy of the drafter's q against the target's top-K p.

Position k of a block is weighted like the hard loss (`blocks.position_weights`). The label is the
K + 1 way distribution (the stored top K, then one tail bucket holding 1 - sum(top K)); q is coarsened
the same way (its own mass on the K ids, and the rest), so the loss is an exact cross-entropy, minimised
by q matching p on the K ids and in total on the tail, and a one-hot label gives the hard CE exactly.
"""

from __future__ import annotations

import torch

from dflash_sglang.training.soft_labels import TopK


def soft_cross_entropy(logits: torch.Tensor, top: TopK) -> torch.Tensor:
    """logits [..., vocab], top [..., K] -> [...] fp32: -sum_i p_i log q_i - p_tail log q_tail."""
    log_q = torch.log_softmax(logits.float(), dim=-1)  # [..., vocab]
    ids = top.ids.long()  # [..., K]
    probs = top.probs.float()  # [..., K]
    head = -(probs * log_q.gather(-1, ids)).sum(-1)  # [...]
    if ids.shape[-1] >= logits.shape[-1]:  # K = vocab: no tail, only fp16 rounding of the label's sum
        return head
    # log q_tail = log(sum of q outside the K ids), from the logits so it stays finite when q_tail is tiny.
    outside = logits.float().scatter(-1, ids, float("-inf"))  # [..., vocab]
    log_q_tail = torch.logsumexp(outside, -1) - torch.logsumexp(logits.float(), -1)  # [...]
    tail_term = -top.tail * log_q_tail  # [...] a zero tail gives 0: log_q_tail is finite
    return head + tail_term


def soft_block_loss(logits: torch.Tensor, top: TopK, weights: torch.Tensor) -> torch.Tensor:
    """logits [bs, n_blocks, blk - 1, vocab], top [bs, n_blocks, blk - 1, K], weights [blk - 1] -> scalar,
    reduced as `blocks.weighted_block_loss`: sum(w_k * ce) / sum(w_k) per block, then the block mean."""
    ce = soft_cross_entropy(logits, top)  # [bs, n_blocks, blk - 1]
    return (ce * weights).sum(-1).mean() / weights.sum()


def expected_accepted(logits: torch.Tensor, top: TopK) -> torch.Tensor:
    """[bs, n_blocks]: expected accepted drafts per block under speculative sampling at temperature 1,
    treating positions as independent: sum_k prod_{j <= k} (1 - TV(p_j, q_j)), with 1 - TV counted on
    the K ids only (a lower bound). 1 + its mean is the in-distribution proxy for sampled tau."""
    q = torch.softmax(logits.float(), dim=-1).gather(-1, top.ids.long())  # [bs, n_blocks, blk - 1, K]
    overlap = torch.minimum(q, top.probs.float()).sum(-1)  # [bs, n_blocks, blk - 1]
    return overlap.cumprod(dim=-1).sum(dim=-1)
