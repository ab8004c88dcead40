"""A decode batch's request features -> `spec.logit_processing.LogitFeatures`: penalties, min_new_tokens,
logit bias, grammars and custom logit processors, read from each `Req` and the forward's
`SamplingBatchInfo`.

SGLang's penalizer orchestrator counts one output token per decode step, so under speculative decoding
its counts are wrong; the counts here come from each request's committed output instead. With the
overlap scheduler the previous step's result may not be in `output_ids` yet when a step runs: the tokens
our last step committed for a request are kept on it (`remember_step`) and fill the gap, and the
grammar barrier SGLang hands spec-v2 workers brings each matcher up to date (worker.py). Batches
without any feature cost one `needs_features` check per step.
"""

from __future__ import annotations

import torch

from dflash_sglang.sglang_adapter.grammar_verify import grammar_mask
from dflash_sglang.spec.logit_processing import LogitFeatures, MinNewTokens, Penalties, token_counts

STEP_TOKENS_ATTR = "_dflash_sglang_step_tokens"  # on a Req: the tokens our last step committed for it


def needs_features(sampling_info, has_grammar: bool) -> bool:
    """Whether any request of the forward batch changes the target's distribution (O(1))."""
    if sampling_info is None:
        return False
    return (has_grammar or sampling_info.acc_additive_penalties is not None
            or sampling_info.acc_scaling_penalties is not None or sampling_info.logit_bias is not None
            or bool(sampling_info.has_custom_logit_processor))


def logit_features(batch, block_size: int) -> LogitFeatures | None:
    info = batch.sampling_info
    if not needs_features(info, bool(batch.has_grammar)):
        return None
    reqs = batch.reqs
    outputs = _committed_outputs(reqs, batch.seq_lens, batch.spec_info.bonus_tokens, [_reads_output(r) for r in reqs])
    device = batch.seq_lens.device
    return LogitFeatures(
        penalties=_penalties(reqs, outputs, info.vocab_size, device),
        min_new_tokens=_min_new_tokens(reqs, outputs, info.vocab_size, device),
        # the batch's own flag: SamplingBatchInfo.grammars is filled later, with the verify's ForwardBatch
        grammar_mask=grammar_mask(reqs, info.vocab_size) if batch.has_grammar else None,
        logit_bias=info.logit_bias,
        custom=_custom(info, block_size) if info.has_custom_logit_processor else None,
    )


def _reads_output(req) -> bool:
    p = req.sampling_params
    return bool(p.frequency_penalty or p.presence_penalty or p.repetition_penalty != 1.0 or p.min_new_tokens)


def _committed_outputs(reqs, seq_lens: torch.Tensor, anchors: torch.Tensor, needed: list[bool]) -> list[list[int]]:
    """Each request's output so far, the step's anchor (its last token) included (exact where needed)."""
    # the prompt and every committed output token but the anchor are in the KV cache
    expected = (seq_lens.cpu() + 1).tolist()
    anchor_ids = anchors.cpu().tolist()
    outputs = []
    for req, total, anchor, need in zip(reqs, expected, anchor_ids, needed):
        out = list(req.output_ids)
        missing = total - len(req.origin_input_ids) - len(out)  # the previous result, not processed yet
        if missing > 0:
            pending = req.__dict__.get(STEP_TOKENS_ATTR) or []
            if not pending or pending[-1] != anchor:  # the unprocessed result is a prefill's: just the anchor
                pending = [anchor]
            assert not need or (missing <= len(pending) and pending[-1] == anchor), (missing, pending, anchor)
            out += pending[-missing:]
        outputs.append(out)
    return outputs


def remember_step(reqs, out_tokens: torch.Tensor, lengths: torch.Tensor) -> None:
    """Keep on each request the tokens this step committed (out_tokens [bs, blk], lengths [bs])."""
    for req, row, n in zip(reqs, out_tokens.cpu().tolist(), lengths.cpu().tolist()):
        req.__dict__[STEP_TOKENS_ATTR] = row[:n]


def _penalties(reqs, outputs: list[list[int]], vocab: int, device) -> Penalties | None:
    params = [req.sampling_params for req in reqs]
    frequency = [p.frequency_penalty for p in params]
    presence = [p.presence_penalty for p in params]
    repetition = [p.repetition_penalty for p in params]
    if not any(frequency) and not any(presence) and all(r == 1.0 for r in repetition):
        return None
    return Penalties(
        frequency=torch.tensor(frequency, dtype=torch.float32, device=device),
        presence=torch.tensor(presence, dtype=torch.float32, device=device),
        repetition=torch.tensor(repetition, dtype=torch.float32, device=device),
        output_counts=token_counts(outputs, vocab).to(device),
    )


def _min_new_tokens(reqs, outputs: list[list[int]], vocab: int, device) -> MinNewTokens | None:
    wanted = [req.sampling_params.min_new_tokens or 0 for req in reqs]
    if not any(wanted):
        return None
    stops = torch.zeros(len(reqs), vocab, dtype=torch.bool)
    for row, req in enumerate(reqs):
        ids = [t for t in stop_token_ids(req) if 0 <= t < vocab]
        stops[row, ids] = True
    return MinNewTokens(torch.tensor(wanted, device=device),
                        torch.tensor([len(out) for out in outputs], device=device), stops.to(device))


def stop_token_ids(req) -> set[int]:
    """The ids that end a request: its stop_token_ids, its EOS ids and the tokenizer's (as AR masks them)."""
    ids = set(req.sampling_params.stop_token_ids or ()) | set(req.eos_token_ids or ())
    tokenizer = getattr(req, "tokenizer", None)
    if tokenizer is not None:
        ids |= set(getattr(tokenizer, "additional_stop_token_ids", None) or ())
        if tokenizer.eos_token_id is not None:
            ids.add(tokenizer.eos_token_id)
    return {t for t in ids if t is not None}


def _custom(info, block_size: int):
    from sglang.srt.layers.sampler import apply_custom_logit_processor

    def apply(logits: torch.Tensor) -> torch.Tensor:  # [bs, blk, vocab]
        bs, blk, vocab = logits.shape
        flat = logits.reshape(bs * blk, vocab)
        apply_custom_logit_processor(flat, info, num_tokens_in_batch=blk)
        return flat.view(bs, blk, vocab)

    return apply
