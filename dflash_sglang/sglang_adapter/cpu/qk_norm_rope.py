"""Keep SGLang's builtin DFLASH drafter off its Triton-only qk-norm + rope kernel when Triton cannot launch.

`DFlashAttention.__init__` turns on `use_table_qk_norm_rope` on every non-NPU device; its forward then
runs `table_qk_norm_rope_`, a Triton kernel, which on a GPU-less host dies with
`RuntimeError: 0 active drivers`. With the flag off, the same forward takes its existing eager path
(`apply_qk_norm` + `rotary_emb`), which computes the same thing.
"""

from __future__ import annotations

from dflash_sglang.log import log_once

DFLASH_ATTENTION_INIT = "sglang.srt.models.dflash.DFlashAttention.__init__"


def triton_can_launch() -> bool:
    try:
        from triton.runtime import driver

        driver.active  # noqa: B018  resolving the active driver is the check
    except (ImportError, RuntimeError):
        return False
    return True


def after_dflash_attention_init(result, attention, *args, **kwargs):
    """HookRegistry AFTER hook: force the eager qk-norm + rope path."""
    if attention.use_table_qk_norm_rope:
        attention.use_table_qk_norm_rope = False
        log_once("cpu-qk-norm-rope", "CPU fallback: DFLASH drafter uses eager qk-norm + rope "
                 "(its Triton table_qk_norm_rope kernel cannot launch here)")
    return result


def install() -> None:
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    if not triton_can_launch():
        HookRegistry.register(DFLASH_ATTENTION_INIT, after_dflash_attention_init, HookType.AFTER)
