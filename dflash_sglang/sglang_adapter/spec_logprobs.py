"""Logprobs of the committed tokens for the scheduler, from the processed distribution at each block
position, in the layout SGLang's result processor reads for spec-v2 chains (row b*blk + j: the j-th
token committed for request b) via SGLang's own `compute_spec_logprobs`."""

from __future__ import annotations

import torch

from sglang.srt.layers.logprob_processor import compute_spec_logprobs


def write_spec_logprobs(
    batch,
    logits_output,
    logits: torch.Tensor,  # [bs, blk, vocab] processed: what each committed token was drawn from
    out_tokens: torch.Tensor,  # [bs, blk] accepted drafts, the bonus token, then placeholders
) -> None:
    bs, blk, vocab = logits.shape
    # AR reports logprobs of the logits after penalties, grammar, bias and custom processors.
    logits_output.next_token_logits = logits.reshape(bs * blk, vocab)
    predict = out_tokens.clamp_min(0).flatten()  # placeholders past the bonus are never read
    compute_spec_logprobs(batch, logits_output, predict, chain_stride=blk)
