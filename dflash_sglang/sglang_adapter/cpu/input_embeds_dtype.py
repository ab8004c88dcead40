"""Give a model its `input_embeds` in its own dtype, not always bfloat16.

`ModelRunner._extend_forward_kwargs` passes `forward_batch.input_embeds.bfloat16()`. SGLang's builtin
DFLASH feeds its drafter through `input_embeds` (the target's embedding of the block), so a drafter
served in float32 or float16 dies in its first linear layer (`expected m1 and m2 to have the same dtype`).
On GPUs models are usually bf16 and nobody notices; on this CPU float32 is the natural dtype, both exact
and much faster than bf16 without AMX. We hand the embeddings over uncast when the model is not bf16.
"""

from __future__ import annotations

from dflash_sglang.log import log_once

EXTEND_FORWARD_KWARGS = "sglang.srt.model_executor.model_runner.ModelRunner._extend_forward_kwargs"


def after_extend_forward_kwargs(kwargs: dict, runner, forward_batch, *args, **more):
    """HookRegistry AFTER hook: undo the bf16 cast of `input_embeds` for a model of another dtype."""
    embeds = forward_batch.input_embeds
    passed = kwargs.get("input_embeds")
    if embeds is None or passed is None or passed.dtype == runner.dtype:
        return kwargs
    if forward_batch.replace_embeds is not None:  # SGLang scattered into its cast copy: leave it be
        return kwargs
    log_once("cpu-input-embeds", "CPU fallback: input_embeds reach the model in %s, not bfloat16",
             runner.dtype)
    kwargs["input_embeds"] = embeds.to(runner.dtype)
    return kwargs


def install() -> None:
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    HookRegistry.register(EXTEND_FORWARD_KWARGS, after_extend_forward_kwargs, HookType.AFTER)
