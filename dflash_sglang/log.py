"""One logger for the package, visible in SGLang's server log.

SGLang loads plugins in the launcher before it configures logging, so INFO lines would be lost
through the root logger. Our logger writes to stderr itself, once, with a recognisable prefix.
"""

from __future__ import annotations

import logging
import os
import sys

_NAME = "dflash_sglang"


def get_logger() -> logging.Logger:
    logger = logging.getLogger(_NAME)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[dflash-sglang pid=%(process)d] %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(os.environ.get("DFLASH_SGLANG_LOG_LEVEL", "INFO").upper())
        logger.propagate = False
    return logger


_logged_once: set[str] = set()


def log_once(key: str, message: str, *args: object, level: int = logging.INFO) -> None:
    """For named fallbacks: say it once per process, not once per step."""
    if key in _logged_once:
        return
    _logged_once.add(key)
    get_logger().log(level, message, *args)
