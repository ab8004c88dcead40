"""The drafter context K/V of plain decoding steps, written late and together.

Every committed token's target features become drafter context K/V (`fc`, `hidden_norm`, the K and V
projections), which only the next draft pass reads. During a stretch of plain decoding (`auto`, width 1)
nothing drafts, and writing one token per request per step was 5.6 % of the scheduler's time at c=1
(py-spy, 2026-12-01: 121 of 2,158 samples; the whole plain step ran at 0.87-0.96x AR's). So plain steps
hand their writes here, and one write covers many steps.

The writes must land before anything reads or reuses their slots:
- before a draft pass (`flush` in the models' `draft`);
- before a step over other requests: a request that left may have freed slots the scheduler hands to
  another request, whose own writes in that step must come after ours; and a prefill may reuse a
  finished request's slots through the radix cache, whose drafter context must then be written;
- after `max_steps` deferred steps, so that the held features stay small.
"""

from __future__ import annotations

from typing import Callable

import torch

from dflash_sglang.log import get_logger
from dflash_sglang.named_option import named_option

CONTEXT_ENV = "DFLASH_SGLANG_PLAIN_CONTEXT"
DEFERRED, IMMEDIATE = "deferred", "immediate"
MAX_PENDING_STEPS = 32
CHOSEN_LINE = "DFLASH drafter context of plain decoding steps: %s"

# (features [n, n_feat*hidden], positions [n], slots [n]) -> None: the drafter's context K/V write
Write = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], None]


class DeferredContext:
    def __init__(self, write: Write, max_steps: int = MAX_PENDING_STEPS) -> None:
        assert max_steps >= 1, max_steps
        self.write, self.max_steps = write, max_steps
        self.pending: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.requests: tuple | None = None  # the batch the pending writes came from (its request ids)

    def defer(self, requests: tuple, features: torch.Tensor, positions: torch.Tensor, slots: torch.Tensor) -> None:
        """One plain step's writes: features [n, n_feat*hidden] (not a view of a reused buffer), positions
        [n], slots [n]."""
        self.before_step(requests)
        self.requests = requests
        self.pending.append((features, positions, slots))
        if len(self.pending) >= self.max_steps:
            self.flush()

    def before_step(self, requests: tuple | None) -> None:
        """At the start of every worker step: `requests` are the decode batch's ids, None for any other."""
        if requests is None or requests != self.requests:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            features, positions, slots = (torch.cat(parts) for parts in zip(*self.pending))
            self.write(features, positions, slots)
        self.pending.clear()
        self.requests = None


def deferred_context_for(write: Write) -> DeferredContext | None:
    """The named option, once at start-up with one line: None means every step writes its own."""
    if named_option(CONTEXT_ENV, (DEFERRED, IMMEDIATE)) == IMMEDIATE:
        get_logger().info(CHOSEN_LINE, f"written every step ({CONTEXT_ENV}={IMMEDIATE})")
        return None
    get_logger().info(CHOSEN_LINE, f"written before the next draft pass, a change of batch or every "
                                   f"{MAX_PENDING_STEPS} steps ({CONTEXT_ENV}={IMMEDIATE} writes every step)")
    return DeferredContext(write)


def batch_requests(batch) -> tuple:
    """The ids of a ScheduleBatch's requests, on the host."""
    return tuple(req.rid for req in batch.reqs)
