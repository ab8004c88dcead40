"""Where the bundled tiny model pair lives (made by scripts/make_tiny_pair.py, committed)."""

from __future__ import annotations

from pathlib import Path

from dflash_sglang.errors import UserError

TINY_PAIR_DIR = Path(__file__).resolve().parent / "tiny_pair"


def tiny_pair() -> tuple[Path, Path]:
    """(target dir, drafter dir) of the bundled pair."""
    target, drafter = TINY_PAIR_DIR / "target", TINY_PAIR_DIR / "drafter"
    for path in (target, drafter):
        if not (path / "config.json").is_file():
            raise UserError(f"the bundled tiny pair is missing {path / 'config.json'}; it ships with the repository (git checkout -- dflash_sglang/tiny_pair)")
    return target, drafter
