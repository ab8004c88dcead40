"""Named options: an environment variable that picks one of a few behaviours, read once at start-up
(a fallback is a named option, logged once by its caller)."""

from __future__ import annotations

import os
from collections.abc import Mapping


def named_option(name: str, choices: tuple[str, str], environ: Mapping[str, str] = os.environ) -> str:
    """The value of `name` among `choices` (the first is the default); a ValueError naming the variable,
    what it may be and what it was otherwise."""
    asked = environ.get(name, choices[0])
    if asked not in choices:
        raise ValueError(f"{name}: expected {choices[0]} or {choices[1]}, got {asked!r}")
    return asked
