"""One order for SGLang's penalizers in every process: the additive ones (frequency, presence,
min_new_tokens), then the scaling one (repetition).

SGLang 0.5.23 builds its penalizer orchestrator from a *set* of classes, and without the overlap
scheduler it applies them in that set's iteration order, which follows the classes' addresses and so
differs between processes: one launch subtracts the frequency penalty before dividing by the repetition
penalty, the next after. Greedy output under combined penalties then depends on the launch (seen on the
bundled pair: 4 of 30 HumanEval prompts). The overlap scheduler and the speculative path sum the additive
penalties first and scale after (`update_penalties`, `apply(..., repeat=...)`), and so does our verify
step (spec/logit_processing.py); this hook gives the non-overlapped path that order too. It changes
nothing for a batch with at most one kind of penalty, and applies to every server the plugin loads in.
"""

from __future__ import annotations

from dflash_sglang.log import log_once

ORCHESTRATOR_INIT = "sglang.srt.sampling.penaltylib.orchestrator.BatchedPenalizerOrchestrator.__init__"


def ordered(penalizers) -> list:
    """Additive penalizers first, then multiplicative ones; by name within each."""
    return sorted(penalizers, key=lambda cls: (bool(getattr(cls, "is_multiplicative", False)), cls.__name__))


def around_init(original, self, vocab_size, batch, penalizers, *args, **kwargs):
    log_once("penalty-order", "SGLang penalizers applied in one order: additive (frequency, presence, "
             "min_new_tokens), then repetition (dflash-sglang: SGLang iterates a set whose order varies by process)")
    return original(self, vocab_size, batch, ordered(penalizers), *args, **kwargs)


def install() -> None:
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    HookRegistry.register(ORCHESTRATOR_INIT, around_init, HookType.AROUND)
