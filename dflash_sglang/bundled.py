"""Where the bundled tiny model pairs live (made by scripts/make_tiny_pair.py, trained, committed)."""

from __future__ import annotations

from pathlib import Path

from dflash_sglang.errors import UserError

TINY_PAIR_DIR = Path(__file__).resolve().parent / "tiny_pair"
# dense: a Qwen3 target; hybrid: a Qwen3Next one (Gated DeltaNet + full attention, MoE MLPs).
TINY_PAIR_DIRS = {"dense": TINY_PAIR_DIR, "hybrid": Path(__file__).resolve().parent / "tiny_pair_hybrid"}
TINY_PAIR_KINDS = tuple(TINY_PAIR_DIRS)


def tiny_pair(kind: str = "dense") -> tuple[Path, Path]:
    """(target dir, drafter dir) of the bundled pair of this kind."""
    if kind not in TINY_PAIR_DIRS:
        raise UserError(f"tiny pair kind: expected one of {', '.join(TINY_PAIR_KINDS)}, got {kind!r}")
    root = TINY_PAIR_DIRS[kind]
    target, drafter = root / "target", root / "drafter"
    for path in (target, drafter):
        if not (path / "config.json").is_file():
            raise UserError(f"the bundled tiny pair is missing {path / 'config.json'}; it ships with the repository (git checkout -- {root.relative_to(root.parents[1])})")
    return target, drafter
