"""A decode batch's request features -> `spec.logit_processing.LogitFeatures`: penalties, min_new_tokens,
logit bias, grammars and custom logit processors, read from each `Req` and the forward's
`SamplingBatchInfo`.

SGLang's penalizer orchestrator counts one output token per decode step, so under speculative decoding
its counts are wrong; the counts here come from each request's committed `output_ids` instead. Those
(and each grammar's state) must hold every committed token when the step runs: `install()` makes the
overlap scheduler process the previous result first for a batch that reads them (SGLang's own rule
for grammar batches of workers without a grammar barrier). Batches without any feature cost one
`needs_features` check per step.
"""

from __future__ import annotations

import torch

from dflash_sglang.sglang_adapter.grammar_verify import grammar_mask
from dflash_sglang.spec.logit_processing import LogitFeatures, MinNewTokens, Penalties, token_counts

SYNC_TARGET = "sglang.srt.managers.scheduler.Scheduler.is_disable_overlap_for_batch"


def needs_features(sampling_info) -> bool:
    """Whether any request of the forward batch changes the target's distribution (O(1))."""
    if sampling_info is None:
        return False
    return (sampling_info.acc_additive_penalties is not None or sampling_info.acc_scaling_penalties is not None
            or sampling_info.logit_bias is not None or bool(sampling_info.has_custom_logit_processor)
            or any(g is not None for g in (sampling_info.grammars or ())))


def logit_features(batch, block_size: int) -> LogitFeatures | None:
    info = batch.sampling_info
    if not needs_features(info):
        return None
    reqs = batch.reqs
    outputs = _committed_outputs(reqs, batch.seq_lens)
    device = batch.seq_lens.device
    return LogitFeatures(
        penalties=_penalties(reqs, outputs, info.vocab_size, device),
        min_new_tokens=_min_new_tokens(reqs, outputs, info.vocab_size, device),
        grammar_mask=grammar_mask(reqs, info.vocab_size) if info.grammars else None,
        logit_bias=info.logit_bias,
        custom=_custom(info, block_size) if info.has_custom_logit_processor else None,
    )


def _committed_outputs(reqs, seq_lens: torch.Tensor) -> list[list[int]]:
    """Each request's output so far, the step's anchor (last token) included."""
    outputs = [list(req.output_ids) for req in reqs]
    expected = (seq_lens.cpu() + 1).tolist()  # the prompt and every committed output token but the anchor are in KV
    got = [len(req.origin_input_ids) + len(out) for req, out in zip(reqs, outputs)]
    assert got == expected, f"output_ids lag the committed tokens (overlap not synced): {got} vs {expected}"
    return outputs


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


def sync_overlap_for_features(original, scheduler, batch, last_batch):
    """The previous result is processed before a DFLASH decode batch whose requests read their output."""
    if original(scheduler, batch, last_batch):
        return True
    if not batch or not batch.forward_mode.is_decode() or not batch.spec_algorithm.is_dflash():
        return False
    from dflash_sglang.sglang_adapter.takeover import selected_impl

    if selected_impl() == "builtin":
        return False
    info = batch.sampling_info
    orchestrator = getattr(info, "penalizer_orchestrator", None)
    return bool((orchestrator is not None and orchestrator.is_required) or batch.has_grammar
                or info.has_custom_logit_processor)


def install() -> None:
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    HookRegistry.register(SYNC_TARGET, sync_overlap_for_features, HookType.AROUND)
