"""`--speculative-dflash-tree-budget N|auto`: how many verify tokens (tree nodes, root included) each
request's step may use. No flag: today's chain of `blk` tokens. `N`: a fixed DDTree of N nodes.
`auto`: the step picks its width per batch (spec/budget*.py), at most `tokens`.

Torch-free: the flag is parsed in the launcher and checked again in the scheduler process.
"""

from __future__ import annotations

from dataclasses import dataclass

TREE_BUDGET_FLAG = "--speculative-dflash-tree-budget"
CHAIN, FIXED, AUTO = "chain", "fixed", "auto"
MODES = (CHAIN, FIXED, AUTO)
MIN_TREE_BUDGET = 2  # the root and one draft: anything smaller drafts nothing
MAX_TREE_BUDGET = 512  # verify tokens per request; the temporary KV slots and the mask grow with it
AUTO_MAX_TOKENS = 64  # `auto`'s widest tree


@dataclass(frozen=True)
class TreeBudget:
    mode: str  # one of MODES
    tokens: int  # verify tokens per request: blk for chain, N for fixed, the upper bound for auto

    def __post_init__(self) -> None:
        assert self.mode in MODES, self.mode
        assert self.tokens >= 1, self.tokens

    @property
    def is_chain(self) -> bool:
        return self.mode == CHAIN

    @staticmethod
    def make_dummy(mode: str = FIXED, tokens: int = 16) -> "TreeBudget":
        return TreeBudget(mode=mode, tokens=tokens)


def parse_tree_budget(raw: str | int | None, block_size: int) -> TreeBudget:
    """The flag's value -> TreeBudget; ValueError naming the flag, what is expected and what was got."""
    if raw is None:
        return TreeBudget(CHAIN, block_size)
    text = str(raw).strip().lower()
    if text == AUTO:
        return TreeBudget(AUTO, max(AUTO_MAX_TOKENS, block_size))
    expected = f"an integer from {MIN_TREE_BUDGET} to {MAX_TREE_BUDGET} (verify tokens per request) or 'auto'"
    try:
        tokens = int(text)
    except ValueError:
        raise ValueError(f"{TREE_BUDGET_FLAG}: expected {expected}, got {raw!r}") from None
    if not MIN_TREE_BUDGET <= tokens <= MAX_TREE_BUDGET:
        raise ValueError(f"{TREE_BUDGET_FLAG}: expected {expected}, got {tokens}")
    return TreeBudget(FIXED, tokens)
