"""Soft labels: the target's own next-token distribution at every generated position, kept as its top K.

For sampled requests the server accepts a draft with probability min(1, p / q), so the drafter's
distribution q, not only its argmax, decides the acceptance (1 - TV(p, q) per position). A sampled
continuation gives one hard label per position; the target's full distribution at that position
(given the sampled prefix) is the Rao-Blackwellised label: its mean over sampled prefixes is the same
marginal a parallel drafter should predict at block position k, with less variance.

The full distribution is 4096 floats a position; the top K (64..128) hold nearly all of the mass of
this target, so they are stored (fp16 probabilities, int16 ids when the vocabulary fits) and the rest
is one "tail" bucket of mass 1 - sum(top K): the loss (`soft_loss.py`) is the exact cross-entropy of
that coarsened K + 1 way distribution, so nothing is renormalised and a one-hot label is the hard CE.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

INT16_MAX_ID = 2**15 - 1
SUM_TOLERANCE = 1e-2  # fp16 rounding of K probabilities can push their sum a little past 1


@dataclass(frozen=True)
class TopK:
    """The top-K of a distribution per position; any leading shape, e.g. [rows, gen, K]."""

    probs: torch.Tensor  # [..., K] fp16, descending
    ids: torch.Tensor  # [..., K] int16 or int32 token ids

    @property
    def tail(self) -> torch.Tensor:
        """[...] fp32: the mass outside the top K (clamped at 0 against fp16 rounding)."""
        return (1.0 - self.probs.float().sum(-1)).clamp_min(0.0)

    def index(self, *index) -> TopK:
        return TopK(probs=self.probs[index], ids=self.ids[index])

    def check(self) -> None:
        """A label that is not a (sub-)distribution is a bug upstream (logits or unnormalised weights)."""
        probs = self.probs.float()
        if probs.min() < 0 or probs.sum(-1).max() > 1.0 + SUM_TOLERANCE:
            raise ValueError(
                f"soft labels: expected probabilities summing to <= 1, got min {probs.min().item():.4g}, "
                f"max sum {probs.sum(-1).max().item():.4g}"
            )


def id_dtype(vocab_size: int) -> torch.dtype:
    return torch.int16 if vocab_size - 1 <= INT16_MAX_ID else torch.int32


def top_k_of(logits: torch.Tensor, k: int) -> TopK:
    """logits [..., vocab] (any dtype) -> the top k of softmax(logits) (temperature 1), compressed."""
    probs = torch.softmax(logits.float(), dim=-1)  # [..., vocab]
    values, ids = probs.topk(k, dim=-1)  # [..., k] each, descending
    return TopK(probs=values.half(), ids=ids.to(id_dtype(logits.shape[-1])))


def one_hot_top_k(labels: torch.Tensor, k: int, vocab_size: int) -> TopK:
    """labels [...] int64 -> a top-K whose first entry holds all the mass (the hard label as a soft one)."""
    probs = torch.zeros(*labels.shape, k, dtype=torch.float16)  # [..., k]
    probs[..., 0] = 1.0
    ids = torch.zeros(*labels.shape, k, dtype=id_dtype(vocab_size))  # [..., k]
    others = (labels[..., None] + torch.arange(1, k)) % vocab_size  # [..., k - 1] distinct, mass 0
    ids[..., 0] = labels.to(ids.dtype)
    ids[..., 1:] = others.to(ids.dtype)
    return TopK(probs=probs, ids=ids)


def dense(top: TopK, vocab_size: int) -> torch.Tensor:
    """[..., vocab] fp32: the stored probabilities scattered back (the tail's mass is dropped)."""
    out = torch.zeros(*top.probs.shape[:-1], vocab_size)
    return out.scatter_(-1, top.ids.long(), top.probs.float())


def cat(parts: list[TopK], dim: int) -> TopK:
    return TopK(probs=torch.cat([p.probs for p in parts], dim), ids=torch.cat([p.ids for p in parts], dim))
