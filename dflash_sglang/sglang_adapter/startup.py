"""Start-up checks of a DFLASH launch, in the launcher, before any scheduler process exists.

A bad draft path or a drafter that does not fit the target would otherwise surface as a stack trace
from deep inside a scheduler process. Here it ends start-up with one line naming the problem.
"""

from __future__ import annotations

import os
import re

from dflash_sglang.config import DFlashConfig, read_config_json
from dflash_sglang.sglang_adapter.draft_window import check_window
from dflash_sglang.sglang_adapter.serving_config import serving_config
from dflash_sglang.log import log_once

HANDLE_SPECULATIVE = "sglang.srt.arg_groups.speculative_hook.handle_speculative_decoding"
# "org/name" with no other slash, not a filesystem-looking path: a hub id SGLang resolves itself.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class StartupError(SystemExit):
    """Ends the launcher with one line on stderr and exit code 1, never a traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(f"dflash-sglang: error: {message}")


def local_paths(model_path: str, draft_path: str | None) -> bool:
    """True when both are local directories; False when one is a hub id SGLang fetches (checked
    later, in the worker). Raises for a missing flag or a local-looking path that does not exist."""
    if draft_path is None:
        raise StartupError("--speculative-algorithm DFLASH needs --speculative-draft-model-path")
    for flag, path in (("--model-path", model_path), ("--speculative-draft-model-path", draft_path)):
        if os.path.exists(path):
            continue
        if _HUB_ID.match(path):
            log_once(f"hub-{path}", "%s %s is not a local path: its checks run once SGLang has fetched it", flag, path)
            return False
        raise StartupError(f"{flag}: expected a model directory with config.json, got {path!r}, which does not exist")
    return True


def fitted_config(model_path: str, draft_path: str, block_size: int) -> DFlashConfig:
    """The drafter's config checked against the target's, at the server's block size."""
    if int(block_size) < 2:
        raise StartupError(f"--speculative-num-draft-tokens (the DFlash block size): expected >= 2, got {block_size}")
    try:
        return serving_config(read_config_json(draft_path), read_config_json(model_path), block_size)
    except ValueError as err:
        raise StartupError(f"drafter {draft_path!r} does not fit target {model_path!r}: {err}") from None


def checked_window(cfg, local: bool) -> None:
    """--speculative-draft-window-size against the block size, before SGLang raises its own traceback.
    The block size is the flag's, else (local drafter) the checkpoint's; a hub-id drafter's is unknown here."""
    window = cfg.speculative_draft_window_size
    if window is None:
        return
    block = cfg.speculative_num_draft_tokens or cfg.speculative_dflash_block_size
    if block is None and local:
        try:
            block = DFlashConfig.from_dirs(cfg.speculative_draft_model_path, cfg.model_path).block_size
        except ValueError:
            block = None  # a drafter that does not fit: fitted_config reports it once SGLang has run
    try:
        check_window(int(window), None if block is None else int(block))
    except ValueError as err:
        raise StartupError(str(err)) from None


def handle_speculative_decoding(original, server_args, *args, **kwargs):
    """AROUND SGLang's speculative argument handling (which reads the draft config first thing):
    for DFLASH, the paths before it runs, the fit once it has resolved the block size."""
    from sglang.srt.arg_groups.model_override_base import resolving_view

    cfg = resolving_view(server_args)
    if (cfg.speculative_algorithm or "").upper() != "DFLASH":
        return original(server_args, *args, **kwargs)
    local = local_paths(cfg.model_path, cfg.speculative_draft_model_path)
    checked_window(cfg, local)
    result = original(server_args, *args, **kwargs)
    if local:
        cfg = resolving_view(server_args)
        fitted_config(cfg.model_path, cfg.speculative_draft_model_path, cfg.speculative_num_draft_tokens)
    return result


def install() -> None:
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    HookRegistry.register(HANDLE_SPECULATIVE, handle_speculative_decoding, HookType.AROUND)
