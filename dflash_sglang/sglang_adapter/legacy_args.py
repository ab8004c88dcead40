"""The seeds' launch commands on SGLang 0.5.23: legacy flag spellings and the overlap env flags.

The model cards were written for SGLang's DFLASH pull requests. Two of their flags were renamed
since, and parse errors would stop the launch; each one is translated, with one warning naming the
modern flag. Their overlap env flags are gone (`SGLANG_ENABLE_SPEC_V2`, silently ignored since 0.5.14),
never released (`SGLANG_ENABLE_DFLASH_SPEC_V2`), or mean something narrower now
(`SGLANG_ENABLE_OVERLAP_PLAN_STREAM`, a side stream inside the overlap scheduler). We honour all three
as the card meant them, for DFLASH launches: overlap on or off, off passed on as
`--disable-overlap-schedule`. One start-up line then states the overlap setting in effect and why.

Hook points (the launcher calls `load_plugins()` before either runs):
- BEFORE `server_args.prepare_server_args(argv)`, the parse entry of `python -m sglang.launch_server`
  and `sglang serve`: rewrites argv;
- AROUND `ServerArgs.resolve_once()`: reports the overlap setting once resolution has decided it.
"""

from __future__ import annotations

import logging
import os

from dflash_sglang.log import get_logger, log_once

PREPARE_SERVER_ARGS = "sglang.srt.server_args.prepare_server_args"
RESOLVE_ONCE = "sglang.srt.server_args.ServerArgs.resolve_once"

# Seed-era spelling -> SGLang 0.5.23 spelling (checked against 0.5.23's parser, every seed flag).
RENAMED_FLAGS = {
    "--mamba-scheduler-strategy": "--mamba-radix-cache-strategy",
    "--speculative-dflash-draft-window-size": "--speculative-draft-window-size",
}
OVERLAP_ENV = ("SGLANG_ENABLE_SPEC_V2", "SGLANG_ENABLE_DFLASH_SPEC_V2", "SGLANG_ENABLE_OVERLAP_PLAN_STREAM")
DISABLE_OVERLAP = "--disable-overlap-schedule"
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")

OVERLAP_LINE = "DFLASH overlap schedule: %s (%s)"


def translate_flags(argv: list[str]) -> list[str]:
    """argv with each legacy spelling (`--flag value` or `--flag=value`) replaced by the modern one."""
    out = []
    for arg in argv:
        flag, eq, value = arg.partition("=")
        modern = RENAMED_FLAGS.get(flag)
        if modern is not None:
            log_once(f"legacy-flag{flag}", "%s is the spelling of SGLang's DFLASH pull requests; "
                     "SGLang 0.5.23 calls it %s: translated", flag, modern, level=logging.WARNING)
            arg = modern + eq + value
        out.append(arg)
    return out


def overlap_request(environ=os.environ) -> tuple[bool | None, str | None]:
    """(overlap wanted, the variable that says so) from the seeds' env flags; (None, None) when none
    is set. Any flag set off wins: the card's switches were all needed to turn overlap on."""
    wanted, reason = None, None
    for name in OVERLAP_ENV:
        raw = environ.get(name)
        if raw is None or not raw.strip():
            continue
        value = raw.strip().lower()
        if value not in _TRUE + _FALSE:
            raise ValueError(f"{name}: expected one of {', '.join(_TRUE + _FALSE)}, got {raw!r}")
        if value in _FALSE:
            return False, f"{name}={raw}"
        wanted, reason = True, reason or f"{name}={raw}"
    return wanted, reason


def is_dflash_launch(argv: list[str]) -> bool:
    algorithm = ""  # the last one given wins, as in SGLang's parser
    for i, arg in enumerate(argv):
        flag, eq, value = arg.partition("=")
        if flag == "--speculative-algorithm":
            algorithm = value if eq else (argv[i + 1] if i + 1 < len(argv) else "")
    return algorithm.upper() == "DFLASH"


def before_prepare_server_args(argv, *args, **kwargs):
    """HookRegistry BEFORE hook: the argv SGLang's parser will see."""
    argv = translate_flags(list(argv))
    if is_dflash_launch(argv):
        try:
            wanted, reason = overlap_request()
        except ValueError as err:
            from dflash_sglang.sglang_adapter.startup import StartupError

            raise StartupError(str(err)) from None
        if wanted is False and DISABLE_OVERLAP not in argv:
            argv.append(DISABLE_OVERLAP)
            log_once("overlap-env-off", "%s: passing %s to SGLang", reason, DISABLE_OVERLAP)
    return (argv, *args), kwargs


def overlap_reason(server_args, view) -> str:
    """Why the resolved overlap setting (`view`, resolved from `server_args`) is what it is."""
    disabled = bool(view.disable_overlap_schedule)
    wanted, env_reason = overlap_request()
    if disabled:
        if wanted is False:
            return f"{env_reason}, passed on as {DISABLE_OVERLAP}"
        declared = [source for source, fields in getattr(server_args, "_resolved_overrides", None) or ()
                    if fields.get("disable_overlap_schedule")]
        if declared:
            return f"SGLang's {declared[-1]} turned it off"
        return f"{DISABLE_OVERLAP} given"
    why = f"{env_reason} asks for it; " if wanted else ""
    why += "SGLang 0.5.23 overlaps by default"
    if view.device == "cpu":
        why += "; on CPU it turns overlap off for EAGLE and NGRAM, not for DFLASH"
    return why + f"; set {OVERLAP_ENV[0]}=0 or pass {DISABLE_OVERLAP} to turn it off"


def around_resolve_once(original, server_args, *args, **kwargs):
    """HookRegistry AROUND hook: one line per resolved DFLASH launch (a record resolves once; the
    copies sent to scheduler processes arrive resolved and say nothing)."""
    already = getattr(server_args, "_resolution_finished", False)
    result = original(server_args, *args, **kwargs)
    if already:
        return result
    from sglang.srt.arg_groups.model_override_base import resolved_view

    view = resolved_view(server_args)
    if (view.speculative_algorithm or "").upper() == "DFLASH":
        state = "off" if view.disable_overlap_schedule else "on"
        get_logger().info(OVERLAP_LINE, state, overlap_reason(server_args, view))
    return result


def install() -> None:
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    HookRegistry.register(PREPARE_SERVER_ARGS, before_prepare_server_args, HookType.BEFORE)
    HookRegistry.register(RESOLVE_ONCE, around_resolve_once, HookType.AROUND)
