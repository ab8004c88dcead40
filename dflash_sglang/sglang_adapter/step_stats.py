"""Per-step acceptance lengths in every response's `meta_info`, streamed or not.

SGLang carries `LogitsProcessorOutput.customized_info` to `meta_info`, but slices it by *output token*
when streaming, while ours has one value per speculative *step*. So the scheduler side stores the
value token-aligned (at the step's last token, None elsewhere, prefill's token included), and the
tokenizer side drops the Nones when it accumulates the chunks: `meta_info["dflash_acceptance_lengths"]`
is then the per-step list so far, in every chunk and in the final response.

SGLang's own workers (`DFLASH_SGLANG_IMPL=builtin`, NGRAM) report no per-step lengths, but the scheduler
updates each request's histogram once per step with the step's correct drafts: that step's length is
those plus the bonus token, recorded the same way, so the builtin and ours compare step by step.
"""

from __future__ import annotations

ACCEPTANCE_KEY = "dflash_acceptance_lengths"
WIDTH_KEY = "dflash_verify_widths"  # `--speculative-dflash-tree-budget auto`: each step's verify width
STEP_KEYS = (ACCEPTANCE_KEY, WIDTH_KEY)  # one value per step, stored and streamed alike
COLLECT = ("sglang.srt.managers.scheduler_components.batch_result_processor."
           "SchedulerBatchResultProcessor._maybe_collect_customized_info")
ACCUMULATE = "sglang.srt.managers.tokenizer_manager.TokenizerManager._accumulate_request_meta_info"
HISTOGRAM = "sglang.srt.managers.schedule_batch.Req.update_spec_correct_drafts_histogram"
PENDING_ATTR = "_dflash_sglang_step_length"  # on a Req: its last step's length, until collected


def token_aligned(previous: list, num_output_tokens: int, step_length: int | list[int]) -> list:
    """`previous` padded with None up to the step's last output token, which holds the step's length.
    A list holds one value per target pass of a plain run (budget_auto.py), each pass's at its own token;
    a run cut short by a stop keeps the values of the tokens that are visible."""
    values = step_length if isinstance(step_length, list) else [step_length]
    aligned = previous + [None] * max(num_output_tokens - len(previous) - len(values), 0) + values
    return aligned[: max(num_output_tokens, len(previous) + 1)]


def collect_customized_info(original, processor, i, req, logits_output):
    pending = req.__dict__.pop(PENDING_ATTR, None)
    info = getattr(logits_output, "customized_info", None)
    if not info or ACCEPTANCE_KEY not in info:
        original(processor, i, req, logits_output)
        if pending is not None:  # a worker without lengths of its own (SGLang's builtin)
            record_step(req, pending)
        return
    per_step = {key: info.pop(key) for key in STEP_KEYS if key in info}
    try:
        if info:
            original(processor, i, req, logits_output)
    finally:
        info.update(per_step)
    for key, values in per_step.items():
        record_step(req, values[i], key)


def record_step(req, step_length: int | list[int], key: str = ACCEPTANCE_KEY) -> None:
    if req.customized_info is None:
        req.customized_info = {}
    previous = req.customized_info.get(key, [])
    # A request that stops inside a block keeps fewer tokens than the step committed (finished_len):
    # the step's value goes at its last *visible* token, which the streamer does not slice away.
    visible = req.finished_len if req.finished_len is not None else len(req.output_ids)
    req.customized_info[key] = token_aligned(previous, visible, step_length)


def note_step(original, req, num_correct_drafts):
    original(req, num_correct_drafts)
    req.__dict__[PENDING_ATTR] = int(num_correct_drafts) + 1  # the accepted drafts and the bonus token


def accumulate_request_meta_info(original, meta_info, state, key, values):
    original(meta_info, state, key, values)
    if key in STEP_KEYS:
        meta_info[key] = [n for n in state.customized_info_accumulated[key] if n is not None]


def install() -> None:
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    HookRegistry.register(COLLECT, collect_customized_info, HookType.AROUND)
    HookRegistry.register(ACCUMULATE, accumulate_request_meta_info, HookType.AROUND)
    HookRegistry.register(HISTOGRAM, note_step, HookType.AROUND)
