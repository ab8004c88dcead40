"""penalty_order.py: SGLang's penalizer orchestrator applies the additive penalizers before the repetition
penalty whatever order it is handed them in. SGLang hands it a set whose order varies by process, so the
probe hands it the worst order (repetition first) as a list; without the hook (the guard case) that order
stands and combined penalties would be applied in another order than the overlap and speculative paths use."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import pytest

from dflash_sglang.sglang_adapter.penalty_order import ordered

PROBE = """
import sys
from sglang.srt.sampling import penaltylib as p
from sglang.srt.sampling.penaltylib.orchestrator import BatchedPenalizerOrchestrator
if sys.argv[1] == "on":
    from sglang.srt.plugins.hook_registry import HookRegistry
    from dflash_sglang.sglang_adapter import penalty_order
    penalty_order.install()
    HookRegistry.apply_hooks()

class Batch:  # what the orchestrator reads of a ScheduleBatch when no request needs a penalty
    device, reqs = "cpu", []

batch = Batch()
worst = [p.BatchedRepetitionPenalizer, p.BatchedFrequencyPenalizer, p.BatchedPresencePenalizer,
         p.BatchedMinNewTokensPenalizer]
orchestrator = BatchedPenalizerOrchestrator(vocab_size=16, batch=batch, penalizers=worst)
print(",".join(cls.__name__ for cls in orchestrator.penalizers))
"""


class Frequency:
    is_multiplicative = False


class Presence:
    is_multiplicative = False


class Repetition:
    is_multiplicative = True


@pytest.mark.parametrize("order", list(itertools.permutations([Frequency, Presence, Repetition])))
def test_additive_penalizers_come_first_in_any_given_order(order):
    assert ordered(set(order)) == ordered(order) == [Frequency, Presence, Repetition]


@pytest.mark.parametrize("hook, repetition_last", [("on", True), ("off", False)])
def test_sglangs_orchestrator_applies_repetition_last(hook, repetition_last):
    result = subprocess.run([sys.executable, "-c", PROBE, hook], capture_output=True, text=True, timeout=300,
                            env=os.environ.copy())
    assert result.returncode == 0, result.stderr[-3000:]
    names = result.stdout.strip().splitlines()[-1].split(",")
    assert len(names) == 4, names
    assert (names[-1] == "BatchedRepetitionPenalizer") == repetition_last, names
