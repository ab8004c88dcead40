"""Requests our DFLASH worker cannot serve yet are refused one by one, with a message, instead of
reaching the verify step (where, e.g., a logprob request would take the scheduler down).

Hooked onto SGLang's own per-request DFLASH check, which the scheduler calls for every new request
and answers by aborting just that request with the message.
"""

from __future__ import annotations

VALIDATE = "sglang.srt.speculative.dflash_utils.validate_dflash_request"


def unsupported_features(req) -> list[str]:
    params = req.sampling_params
    found = []
    if req.return_logprob:
        found.append("logprobs")
    if any(getattr(params, name, None) for name in ("json_schema", "regex", "ebnf", "structural_tag")):
        found.append("grammar-constrained output")
    if (getattr(params, "frequency_penalty", 0.0) or getattr(params, "presence_penalty", 0.0)
            or getattr(params, "repetition_penalty", 1.0) != 1.0 or getattr(params, "min_new_tokens", 0)):
        found.append("frequency/presence/repetition penalties and min_new_tokens")
    if getattr(params, "logit_bias", None):
        found.append("logit_bias")
    if getattr(req, "custom_logit_processor", None):
        found.append("custom logit processors")
    return found


def validate_dflash_request(original, req, enable_overlap):
    from dflash_sglang.sglang_adapter.takeover import selected_impl

    message = original(req, enable_overlap)
    if message is not None or selected_impl() == "builtin":
        return message
    found = unsupported_features(req)
    if not found:
        return None
    return (f"dflash-sglang's DFLASH worker does not support {', '.join(found)} yet; "
            "send the request without them, or start the server with DFLASH_SGLANG_IMPL=builtin")


def install() -> None:
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    HookRegistry.register(VALIDATE, validate_dflash_request, HookType.AROUND)
