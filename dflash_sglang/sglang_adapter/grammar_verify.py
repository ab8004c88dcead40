"""Grammar masks at every block position, from SGLang's grammar objects (`req.grammar`).

Position 0's mask is the grammar's state after the committed tokens (the scheduler advances it by
exactly those). For position k the matcher is advanced by the drafts d_1 .. d_k, as AR's would be had
it produced them, and rolled back afterwards: the scheduler alone commits. A draft that the mask before
it forbids stops the walk; the accept rule then rejects it there (its probability is 0), so the
positions past it are never read and stay unconstrained. As in SGLang's own tree verification
(`speculative/spec_utils.traverse_tree`), the walk reads the packed int32 token bitmask that the
xgrammar and llguidance backends fill; the logits are masked by the backend's own `apply_vocab_mask`.
"""

from __future__ import annotations

import torch

from dflash_sglang.spec.logit_processing import GrammarMask
from dflash_sglang.spec.types import Candidates


def _allowed(bitmask_row: torch.Tensor, token: int) -> bool:
    return 0 <= token < bitmask_row.numel() * 32 and bool((int(bitmask_row[token // 32]) >> (token % 32)) & 1)


def _live(grammar) -> bool:
    return grammar is not None and not grammar.finished and not grammar.is_terminated()


def fill_block_masks(grammar, bitmask: torch.Tensor, first_row: int, tokens: list[int]) -> int:
    """Rows first_row .. +len(tokens)-1 of `bitmask` <- the grammar's masks after tokens[1:k+1] for
    each k; returns how many drafts the grammar took (and gave back)."""
    grammar.fill_vocab_mask(bitmask, first_row)
    taken = 0
    for k in range(1, len(tokens)):
        if not _allowed(bitmask[first_row + k - 1], tokens[k]):
            break
        grammar.accept_token(tokens[k])
        taken += 1
        if grammar.is_terminated():
            break
        grammar.fill_vocab_mask(bitmask, first_row + k)
    if taken:
        grammar.rollback(taken)
    return taken


def grammar_mask(reqs, vocab_size: int) -> GrammarMask:
    """The step's `GrammarMask`: [bs, blk, vocab] bool, True where the grammar allows the token."""

    def masks(candidates: Candidates) -> torch.Tensor:
        bs, blk = candidates.tokens.shape
        grammars = [req.grammar for req in reqs]
        some = next(g for g in grammars if g is not None)
        # allocated unconstrained: rows of requests without a live grammar stay so
        bitmask = some.allocate_vocab_mask(vocab_size=vocab_size, batch_size=bs * blk, device="cpu")
        assert bitmask.dtype == torch.int32, f"expected a packed int32 token bitmask, got {bitmask.dtype}"
        rows = candidates.tokens.cpu().tolist()
        for i, grammar in enumerate(grammars):
            if _live(grammar):
                fill_block_masks(grammar, bitmask, i * blk, rows[i])
        logits = candidates.tokens.new_zeros((bs * blk, vocab_size), dtype=torch.float32)
        some.apply_vocab_mask(logits=logits, vocab_mask=some.move_vocab_mask(bitmask, logits.device))
        return torch.isfinite(logits).view(bs, blk, vocab_size)

    return masks
