"""A sampling verify for SGLang's builtin DFLASH worker where its CUDA kernel is missing.

The builtin verifies sampled requests with `tree_speculative_sampling_target_only`, a CUDA kernel.
Without it `is_dflash_sampling_verify_available()` is False and the worker verifies sampled requests
by greedy argmax, with one warning: their outputs stop following the requested distribution. So on
CPU the builtin would be a lossy baseline for sampled requests.

Here the worker's two names get plain-torch stand-ins for the same rule (the target's processed
distribution is sampled at every block position; a draft is accepted iff it equals that sample, and
the first mismatching sample is the bonus token), built from our own `spec/` functions. Where SGLang's
kernel exists, both hooks call the original.
"""

from __future__ import annotations

import torch

from dflash_sglang.log import log_once

AVAILABLE = "sglang.srt.speculative.dflash_worker_v2.is_dflash_sampling_verify_available"
CORRECT_DRAFTS_AND_BONUS = "sglang.srt.speculative.dflash_worker_v2.compute_dflash_sampling_correct_drafts_and_bonus"


def sglang_kernel_available() -> bool:
    """Read from the module flag, not `is_dflash_sampling_verify_available()`: our AROUND hook makes that
    function answer True wherever SGLang's hook registry reaches it, so it cannot tell whether the kernel exists."""
    from sglang.srt.speculative import dflash_utils

    return bool(dflash_utils._DFLASH_SAMPLING_VERIFY_AVAILABLE)


def around_available(original, *args, **kwargs) -> bool:
    """HookRegistry AROUND hook: the builtin's sampled requests take its sampling verify path."""
    return True


def correct_drafts_and_bonus(
    candidates: torch.Tensor,  # [bs, blk] anchor, drafts
    next_token_logits: torch.Tensor,  # [bs*blk, vocab] after the worker's logit adjustments
    sampling_info,
) -> tuple[torch.Tensor, torch.Tensor]:  # [bs] accepted drafts, [bs] bonus token
    from dflash_sglang.sglang_adapter.sampling import sampling_params
    from dflash_sglang.spec.accept import accept
    from dflash_sglang.spec.posterior import posterior_tokens
    from dflash_sglang.spec.types import Candidates, Verification

    bs, blk = candidates.shape
    params = sampling_params(sampling_info, bs)
    posterior = posterior_tokens(next_token_logits.view(bs, blk, -1), params)  # [bs, blk]
    acceptance = accept(Candidates(tokens=candidates.long(), positions=torch.zeros_like(candidates)),
                        Verification(posterior=posterior))
    return acceptance.accepted.to(torch.int32), acceptance.bonus.to(torch.int64)


def around_correct_drafts_and_bonus(original, *, candidates, next_token_logits, sampling_info, **kwargs):
    """HookRegistry AROUND hook: SGLang's kernel where it exists, else ours."""
    if sglang_kernel_available():
        return original(candidates=candidates, next_token_logits=next_token_logits, sampling_info=sampling_info,
                        **kwargs)
    log_once("cpu-builtin-sampling-verify", "CPU fallback: SGLang's builtin DFLASH verifies sampled requests "
             "with dflash-sglang's torch sampling verify (its CUDA kernel is missing here)")
    return correct_drafts_and_bonus(candidates, next_token_logits, sampling_info)


def install() -> None:
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    HookRegistry.register(AVAILABLE, around_available, HookType.AROUND)
    HookRegistry.register(CORRECT_DRAFTS_AND_BONUS, around_correct_drafts_and_bonus, HookType.AROUND)
