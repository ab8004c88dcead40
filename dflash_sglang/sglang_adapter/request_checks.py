"""Requests our DFLASH worker cannot serve are refused one by one, with a message saying why, instead of
reaching the verify step. Logprobs, grammars, penalties, `min_new_tokens`, logit bias and custom logit
processors are all served (request_features.py); what is left is a grammar from a backend whose token
mask our per-position walk cannot read.

Hooked onto SGLang's own per-request DFLASH check, which the scheduler calls for every new request
and answers by aborting just that request with the message.
"""

from __future__ import annotations

VALIDATE = "sglang.srt.speculative.dflash_utils.validate_dflash_request"
GRAMMAR_KEYS = ("json_schema", "regex", "ebnf", "structural_tag")
# xgrammar (the default) and llguidance fill SGLang's packed int32 token bitmask, which grammar_verify.py walks
# per position; outlines fills a boolean mask of its own.
BITMASK_GRAMMAR_BACKENDS = ("xgrammar", "llguidance")
NON_BITMASK_GRAMMAR_BACKENDS = ("outlines",)


def unsupported_features(req, grammar_backend: str | None) -> list[str]:
    params = req.sampling_params
    found = []
    if any(getattr(params, name, None) for name in GRAMMAR_KEYS) and grammar_backend in NON_BITMASK_GRAMMAR_BACKENDS:
        found.append(f"grammar-constrained output with --grammar-backend {grammar_backend} (its token mask is not "
                     f"the packed bitmask the per-position verify walks; use {' or '.join(BITMASK_GRAMMAR_BACKENDS)})")
    return found


def _grammar_backend() -> str | None:
    from sglang.srt.runtime_context import get_server_args

    return getattr(get_server_args(), "grammar_backend", None)


def validate_dflash_request(original, req, enable_overlap):
    from dflash_sglang.sglang_adapter.takeover import selected_impl

    message = original(req, enable_overlap)
    if message is not None or selected_impl() == "builtin":
        return message
    found = unsupported_features(req, _grammar_backend())
    if not found:
        return None
    return (f"dflash-sglang's DFLASH worker does not support {', '.join(found)}; "
            "send the request without them, or start the server with DFLASH_SGLANG_IMPL=builtin")


def install() -> None:
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    HookRegistry.register(VALIDATE, validate_dflash_request, HookType.AROUND)
