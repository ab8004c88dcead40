"""Plain steps' drafter context writes, deferred (sglang_adapter/deferred_context.py): the pool ends as if
every step had written its own, in the cases where slots change hands between requests."""

from __future__ import annotations

import pytest
import torch

from dflash_sglang.sglang_adapter.deferred_context import (
    CONTEXT_ENV,
    IMMEDIATE,
    DeferredContext,
    deferred_context_for,
)

FEAT = 3


class Pool:
    """A drafter KV pool stand-in: slot -> the features last written there."""

    def __init__(self, slots: int = 16) -> None:
        self.rows = torch.zeros(slots, FEAT)
        self.writes = 0

    def write(self, features: torch.Tensor, positions: torch.Tensor, slots: torch.Tensor) -> None:
        assert features.shape == (len(positions), FEAT) and len(slots) == len(positions)
        self.rows[slots] = features
        self.writes += 1


def _features(step: int, slots: list[int]) -> torch.Tensor:  # [n, FEAT], distinct per step and slot
    return torch.tensor([[step, s, step * 100 + s] for s in slots], dtype=torch.float32)


def _run(events, deferred: bool) -> Pool:
    """events: ("plain", requests, slots) writes one token per request; ("draft",) reads the pool;
    ("step", requests) starts a worker step (None: a prefill). The draft-like write of another request
    at the same step ("write", slots) lands after the step's start."""
    pool = Pool()
    context = DeferredContext(pool.write, max_steps=4) if deferred else None
    for step, event in enumerate(events):
        kind = event[0]
        if kind == "step" and context is not None:
            context.before_step(event[1])
        elif kind == "plain":
            _, requests, slots = event
            args = (_features(step, slots), torch.tensor(slots), torch.tensor(slots))
            context.defer(requests, *args) if context is not None else pool.write(*args)
        elif kind == "write":  # a prefill or a drafted commit: always written at once
            slots = event[1]
            pool.write(_features(step, slots), torch.tensor(slots), torch.tensor(slots))
        elif kind == "draft" and context is not None:
            context.flush()
    return pool


CASES = {
    # a plain stretch, then a draft of the same requests
    "plain then draft": [("step", ("a", "b")), ("plain", ("a", "b"), [0, 1]), ("step", ("a", "b")),
                         ("plain", ("a", "b"), [2, 3]), ("step", ("a", "b")), ("draft",), ("write", [4, 5])],
    # request b finishes; its slot 1 goes to c, whose prefill writes it: b's late write must come first
    "slot reused by a prefill": [("step", ("a", "b")), ("plain", ("a", "b"), [0, 1]), ("step", None),
                                 ("write", [1]), ("step", ("a", "c")), ("plain", ("a", "c"), [2, 3]), ("draft",)],
    # b leaves, and the slot it freed is a's next plain slot in the very next step
    "slot reused by a decode": [("step", ("a", "b")), ("plain", ("a", "b"), [0, 1]), ("step", ("a",)),
                                ("plain", ("a",), [1]), ("draft",)],
    # more plain steps than max_steps
    "long stretch": [e for i in range(10) for e in (("step", ("a",)), ("plain", ("a",), [i]))] + [("draft",)],
}


@pytest.mark.parametrize("name", CASES)
def test_deferred_writes_leave_the_pool_as_immediate_writes_do(name):
    immediate, deferred = _run(CASES[name], deferred=False), _run(CASES[name], deferred=True)
    assert torch.equal(deferred.rows, immediate.rows), name
    if name == "long stretch":
        assert deferred.writes == 3 and immediate.writes == 10  # every 4 steps, and the draft's flush


def test_a_batch_change_flushes_before_the_new_batch_writes():
    """Guard: with the start-of-step flush switched off, b's late write lands on c's slot after c's prefill."""
    events = CASES["slot reused by a prefill"]
    broken = [e for e in events if e[0] != "step"]
    immediate, deferred = _run(events, deferred=False), _run(broken, deferred=True)
    assert not torch.equal(deferred.rows, immediate.rows)


def test_the_named_option_turns_it_off(monkeypatch):
    monkeypatch.setenv(CONTEXT_ENV, IMMEDIATE)
    assert deferred_context_for(Pool().write) is None
    monkeypatch.setenv(CONTEXT_ENV, "later")
    with pytest.raises(ValueError, match=f"{CONTEXT_ENV}: expected deferred or immediate, got 'later'"):
        deferred_context_for(Pool().write)
    monkeypatch.delenv(CONTEXT_ENV)
    assert isinstance(deferred_context_for(Pool().write), DeferredContext)
