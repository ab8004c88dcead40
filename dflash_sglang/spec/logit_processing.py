"""The distribution AR would sample from at every block position: the target's logits processed by
the request's penalties, `min_new_tokens`, grammar mask, logit bias and custom processor.

Block position k's logits follow the committed output plus the drafts d_1 .. d_k, so everything that
reads the output so far reads exactly that: frequency, presence and repetition penalties count the
committed output tokens and the drafts before position k; `min_new_tokens` masks the stop tokens while
the output (committed, then k drafts) is shorter than asked. Applying the penalty computed before the
block at every position (what SGLang's builtin DFLASH does) is not what AR does from position 1 on.

The order is SGLang's sampler's: additive penalties (frequency, presence, min_new_tokens) as one sum,
then the repetition penalty's scaling, then the grammar mask, then the logit bias, then custom logit
processors. Requests without a feature get neutral values (0, 1, no mask), so a batch mixes freely.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from dflash_sglang.spec.types import Candidates

# Host-side pieces the adapter supplies (grammar matchers, user code): called once per step.
GrammarMask = Callable[[Candidates], torch.Tensor]  # -> [bs, blk, vocab] bool, True where allowed
CustomProcessor = Callable[[torch.Tensor], torch.Tensor]  # [bs, blk, vocab] -> [bs, blk, vocab]


@dataclass(frozen=True)
class Penalties:
    """Frequency, presence and repetition penalties over the committed output (anchor included)."""

    frequency: torch.Tensor  # [bs] 0 = off
    presence: torch.Tensor  # [bs] 0 = off
    repetition: torch.Tensor  # [bs] 1 = off
    output_counts: torch.Tensor  # [bs, vocab] occurrences of each token in the committed output

    @staticmethod
    def make_dummy(outputs: list[list[int]], vocab: int, frequency: float = 0.0, presence: float = 0.0,
                   repetition: float = 1.0) -> "Penalties":
        bs = len(outputs)
        return Penalties(torch.full((bs,), frequency), torch.full((bs,), presence), torch.full((bs,), repetition),
                         token_counts(outputs, vocab))


@dataclass(frozen=True)
class MinNewTokens:
    """Stop tokens are masked while the output is shorter than `min_new_tokens`."""

    min_new_tokens: torch.Tensor  # [bs] 0 = off
    output_lens: torch.Tensor  # [bs] committed output tokens (anchor included)
    stop_tokens: torch.Tensor  # [bs, vocab] bool: EOS and stop token ids

    @staticmethod
    def make_dummy(min_new_tokens: list[int], output_lens: list[int], stop_ids: list[int], vocab: int) -> "MinNewTokens":
        stops = torch.zeros(len(min_new_tokens), vocab, dtype=torch.bool)
        stops[:, stop_ids] = True
        return MinNewTokens(torch.tensor(min_new_tokens), torch.tensor(output_lens), stops)


@dataclass(frozen=True)
class LogitFeatures:
    """Everything of a batch's requests that changes the target's distribution; None fields are off."""

    penalties: Penalties | None = None
    min_new_tokens: MinNewTokens | None = None
    grammar_mask: GrammarMask | None = None
    logit_bias: torch.Tensor | None = None  # [bs, vocab]
    custom: CustomProcessor | None = None

    @staticmethod
    def make_dummy(vocab: int, outputs: list[list[int]], frequency: float = 1.0) -> "LogitFeatures":
        return LogitFeatures(penalties=Penalties.make_dummy(outputs, vocab, frequency=frequency))


def token_counts(outputs: list[list[int]], vocab: int) -> torch.Tensor:  # [bs, vocab] float32
    counts = torch.zeros(len(outputs), vocab, dtype=torch.float32)
    for row, ids in enumerate(outputs):
        if ids:
            counts[row].index_add_(0, torch.tensor(ids, dtype=torch.long), torch.ones(len(ids)))
    return counts


def process_logits(
    logits: torch.Tensor,  # [bs, blk, vocab] the target's, after each prefix of the candidates
    candidates: Candidates,
    features: LogitFeatures | None,
) -> torch.Tensor:  # [bs, blk, vocab] what AR would sample from at each position
    if features is None:
        return logits
    out = logits.float()
    additive = _additive(candidates.tokens, out.shape[-1], features)  # [bs, blk, vocab] or None
    if additive is not None:
        out = out + additive
    if features.penalties is not None:
        out = _repetition(out, draft_counts(candidates.tokens, out.shape[-1]), features.penalties)
    if features.grammar_mask is not None:
        out = out.masked_fill(~features.grammar_mask(candidates).to(out.device), float("-inf"))
    if features.logit_bias is not None:
        out = out + features.logit_bias.to(out.device, out.dtype)[:, None, :]
    if features.custom is not None:
        out = features.custom(out)
    return out.to(logits.dtype)


def draft_counts(
    tokens: torch.Tensor,  # [bs, blk] anchor, d_1 .. d_{blk-1}
    vocab: int,
) -> torch.Tensor:  # [bs, blk, vocab] occurrences of each token among d_1 .. d_k at position k
    bs, blk = tokens.shape
    drafts = tokens[:, 1:].long()  # [bs, blk-1]
    valid = (drafts >= 0) & (drafts < vocab)  # padded drafter heads may propose ids past the vocabulary
    onehot = torch.zeros(bs, blk, vocab, dtype=torch.float32, device=tokens.device)
    onehot[:, 1:].scatter_(-1, drafts.clamp(0, vocab - 1)[..., None], valid[..., None].float())
    return onehot.cumsum(dim=1)


def _additive(tokens: torch.Tensor, vocab: int, features: LogitFeatures) -> torch.Tensor | None:
    """Frequency, presence and min_new_tokens as one sum, as SGLang accumulates them."""
    parts = []
    bs, blk = tokens.shape
    if features.penalties is not None:
        p = features.penalties
        counts = p.output_counts.to(tokens.device)[:, None, :] + draft_counts(tokens, vocab)  # [bs, blk, vocab]
        parts.append(-p.frequency.to(counts.device).float().view(bs, 1, 1) * counts)
        parts.append(-p.presence.to(counts.device).float().view(bs, 1, 1) * (counts > 0).float())
    if features.min_new_tokens is not None:
        m = features.min_new_tokens
        position = torch.arange(blk, device=tokens.device)[None, :]  # [1, blk]
        short = (m.output_lens.to(tokens.device)[:, None] + position) < m.min_new_tokens.to(tokens.device)[:, None]
        masked = short[:, :, None] & m.stop_tokens.to(tokens.device)[:, None, :]  # [bs, blk, vocab]
        parts.append(torch.zeros(masked.shape, device=tokens.device).masked_fill(masked, float("-inf")))
    return sum(parts[1:], parts[0]) if parts else None


def _repetition(logits: torch.Tensor, drafts: torch.Tensor, penalties: Penalties) -> torch.Tensor:
    """Seen tokens' logits are divided by the penalty (multiplied where negative), as in SGLang."""
    bs = logits.shape[0]
    seen = (penalties.output_counts.to(logits.device)[:, None, :] + drafts) > 0  # [bs, blk, vocab]
    scale = torch.where(seen, penalties.repetition.to(logits.device).float().view(bs, 1, 1), 1.0)
    return torch.where(logits < 0, logits * scale, logits / scale)
