"""The target's own token at every block position: argmax, or a sample of the request's
distribution after temperature, top-k, top-p and min-p, processed as SGLang's sampler does for
non-speculative decoding (so that sampled output keeps exactly the AR distribution)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dflash_sglang.spec.categorical import draw


@dataclass(frozen=True)
class SamplingParams:
    """Per-request sampling parameters; greedy requests have top_k == 1."""

    temperatures: torch.Tensor  # [bs] > 0
    top_ks: torch.Tensor  # [bs] int, vocab-size or larger means off
    top_ps: torch.Tensor  # [bs] in (0, 1]
    min_ps: torch.Tensor  # [bs] in [0, 1)
    all_greedy: bool
    # whether any request may keep fewer tokens than the vocabulary; None: read the tensors (a host sync per
    # call, two a step under the rejection rule). SGLang's batch knows it on the host (need_top_k_sampling ...)
    may_filter: bool | None = None

    @staticmethod
    def make_dummy(temperatures: list[float], top_ks: list[int] | None = None, top_ps: list[float] | None = None,
                   min_ps: list[float] | None = None) -> "SamplingParams":
        bs = len(temperatures)
        top_ks = top_ks if top_ks is not None else [1 << 30] * bs
        return SamplingParams(
            temperatures=torch.tensor(temperatures, dtype=torch.float32),
            top_ks=torch.tensor(top_ks),
            top_ps=torch.tensor(top_ps if top_ps is not None else [1.0] * bs),
            min_ps=torch.tensor(min_ps if min_ps is not None else [0.0] * bs),
            all_greedy=all(k == 1 for k in top_ks),
        )


def posterior_tokens(
    logits: torch.Tensor,  # [bs, blk, vocab]
    params: SamplingParams,
    generator: torch.Generator | None = None,
) -> torch.Tensor:  # [bs, blk]
    if params.all_greedy:
        return logits.argmax(dim=-1)
    return draw(processed_probs(logits, params), generator)  # greedy rows of a mixed batch are one-hot


def processed_probs(
    logits: torch.Tensor,  # [bs, blk, vocab]
    params: SamplingParams,
) -> torch.Tensor:  # [bs, blk, vocab], rows sum to 1
    """Temperature, softmax, then top-k / top-p / min-p masks in sorted order, renormalised."""
    bs, blk, vocab = logits.shape
    scaled = logits.float() / params.temperatures.to(logits.device).view(bs, 1, 1)
    if not filters_anything(params, vocab):  # temperature only: no sort over the vocabulary
        return torch.softmax(scaled, dim=-1)
    probs = torch.softmax(scaled, dim=-1).view(bs * blk, vocab)
    sorted_probs, order = probs.sort(dim=-1, descending=True)  # [bs*blk, vocab]
    rank = torch.arange(vocab, device=logits.device)[None, :]
    top_ks = params.top_ks.to(logits.device).repeat_interleave(blk)[:, None]
    top_ps = params.top_ps.to(logits.device).float().repeat_interleave(blk)[:, None]
    min_ps = params.min_ps.to(logits.device).float().repeat_interleave(blk)[:, None]
    mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs
    drop = (rank >= top_ks) | (mass_before > top_ps) | (sorted_probs < sorted_probs[:, :1] * min_ps)
    drop[:, 0] = False  # the most likely token always survives, as in SGLang's sampler
    kept = sorted_probs.masked_fill(drop, 0.0)
    kept = kept / kept.sum(dim=-1, keepdim=True)
    return torch.zeros_like(probs).scatter(-1, order, kept).view(bs, blk, vocab)


def filters_anything(params: SamplingParams, vocab: int) -> bool:
    """Whether any request keeps fewer tokens than the whole vocabulary (one host sync unless the caller
    said it may not)."""
    if params.may_filter is False:
        return False
    return bool(((params.top_ks < vocab) | (params.top_ps < 1.0) | (params.min_ps > 0.0)).any())
