"""Handing the validated DFlashConfig to the drafter model class SGLang constructs.

SGLang's model runner builds the drafter from its HF config alone and knows nothing of the target,
so the worker parses the config once (drafter + target) and publishes it for the duration of the
draft runner's construction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dflash_sglang.config import DFlashConfig

_current: DFlashConfig | None = None


@contextmanager
def drafter_config_scope(config: DFlashConfig) -> Iterator[None]:
    global _current
    previous, _current = _current, config
    try:
        yield
    finally:
        _current = previous


def current_drafter_config() -> DFlashConfig:
    if _current is None:
        raise RuntimeError(
            "the DFlash drafter model was built outside dflash-sglang's worker; "
            "set DFLASH_SGLANG_IMPL=builtin to use SGLang's own drafter class"
        )
    return _current
