"""The load-aware verify budget (`--speculative-dflash-tree-budget auto`): one verify width per batch step,
the one that maximises expected committed tokens per second.

    rate(W) = E_batch(W) / (t_between + t_draft(bs) + t_verify(bs * W))

E_batch(W) is the batch's expected committed tokens at width W (budget_estimate.py: the drafter's
probabilities, calibrated on what the target accepted), the times are online fits (budget_cost.py).
Width 1 is plain decoding: no draft pass, one verify token per request, one committed token each.

A step decides in two stages, because the drafter's probabilities exist only after it has run:
- `plan(bs)`, before drafting: plain decoding, or draft. It compares plain decoding with the best width
  at the expected tokens of recent drafted steps (per request, decayed).
- `choose(expected, bs)`, after drafting: the width for this batch, from this block's probabilities.
One width serves the whole batch: the verify pass is one forward whose cost depends on its total
tokens, and a ragged batch of widths would need a varlen verify; the batch's expected total decides.

Exploration keeps the estimates honest. The first steps try every width in turn (the cost fits need
several token counts); then a step now and then takes the next width in turn, at most `explore_share`
of the time (a tree at high load costs several ordinary steps); and
during plain decoding one step now and then drafts and verifies the full chain (a probe), so that plain
decoding ends when the drafter's acceptance comes back. Probes may *lose* at most `probe_share` of the
time: a probe is priced at the share of its time it lost against plain decoding of the tokens it committed
(decayed over recent probes; before the first one, a probe committing only its bonus tokens). Greedy text alternates
easy stretches, where a chain commits a block, with hard ones, where it commits about two tokens for two
plain passes' time: there a probe loses little, probes come often, and the drafter is back soon after
the text turns easy. Priced at their whole cost, probes came after 9-39 times their cost in plain
decoding (2-10 plain runs at c=1), and greedy `auto` at c=1 spent 149 plain passes on tokens the chain
verified in 49 steps (2026-12-01; 95 passes for 47 steps since). On a flat sampled target at 8 requests
a probe commits 15 tokens where plain runs commit 37 in its time, and is priced near its cost.
Each probe or exploration after which plain decoding still wins halves both shares, down to
1/`max_backoff` of them: when the drafter keeps losing (sampled requests on a flat target), probing and
exploring at the full shares cost up to 15 % of the time for nothing. A step that drafts by choice and
commits its tokens faster than plain decoding would have restores them; one that lost does not (on
sampled requests at 8 requests the drafter is chosen after a prefill, where plain decoding runs one pass,
and half of those steps lost: restoring the shares on each brought exploration back to its full share).
Exploration's turn at width 1 is a plain step ("explore-plain"): it keeps the plain fit measured at the
batch sizes where chains win, and a drafted step verifying the anchor alone paid the draft pass for nothing
(36 ms lost against a plain run at 8 requests, 2026-12-01). Warm-up drafts at width 1 once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from dflash_sglang.spec.budget_cost import Ema, StepCosts, StepTiming

PLAIN_WIDTH = 1
PRICED_REASONS = ("probe", "chosen")  # plans whose committed tokens `observe` prices (_observe_drafted)


@dataclass(frozen=True)
class BudgetSettings:
    block_size: int  # the chain's full width (anchor + blk-1 drafts)
    tree_widths: tuple[int, ...] = ()  # verify budgets past the chain (trees), in tokens per request
    explore_share: float = 0.05  # of the decoding time, at most this goes to trying the next width in turn
    probe_share: float = 0.05  # of the time spent decoding plainly, probes lose at most this (module docstring)
    cost_decay: float = 0.98  # per observation, for the cost fits
    expected_decay: float = 0.8  # per drafted step, for the expected tokens `plan` reads
    max_backoff: float = 4.0  # probes and exploration shrink to 1/max_backoff of their shares while they fail

    def __post_init__(self) -> None:
        assert self.block_size >= 2, self.block_size  # config.py: a block is the anchor and at least one draft
        assert all(w > self.block_size for w in self.tree_widths), (self.tree_widths, self.block_size)
        assert 0.0 < self.explore_share < 1.0 and 0.0 < self.probe_share < 1.0, (self.explore_share, self.probe_share)
        assert self.max_backoff >= 1.0, self.max_backoff

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(range(1, self.block_size + 1)) + tuple(sorted(self.tree_widths))


@dataclass(frozen=True)
class Plan:
    """`plan`'s answer: whether to draft, and the width if it is decided already (None: `choose`)."""

    drafted: bool
    width: int | None
    reason: str  # warm-up | explore | explore-plain | probe | plain | chosen

    @staticmethod
    def make_dummy(drafted: bool = True, width: int | None = None) -> "Plan":
        return Plan(drafted, width, "chosen" if width is None else "explore")


class BudgetController:
    def __init__(self, settings: BudgetSettings) -> None:
        self.settings = settings
        self.costs = StepCosts(settings.block_size, settings.cost_decay)
        self.expected: dict[int, Ema] = {w: Ema(settings.expected_decay) for w in settings.widths}  # per request
        self.drafted_steps = 0
        self.plain_seconds = 0.0  # spent decoding plainly since the last drafted step
        self._turn = 0  # round-robin position over the widths, for warm-up and exploration
        self.since_explore = 0.0  # seconds of steps since the last warm-up or exploration step
        self.backoff = 1.0  # divides explore_share and probe_share (module docstring)
        self.probe_loss = Ema(0.5)  # share of a probe's time lost against plain decoding of its tokens
        self._plain_run = 1  # passes of a plain step at the last plan
        self._last_reason = ""
        self._trees = True  # whether the batch being planned may verify a tree (`plan`)

    def _peek_turn(self) -> int:
        return self._turns()[0]

    def _turns(self) -> tuple[int, int]:
        """(the next width in turn, turns it takes): tree widths are passed over for a batch without trees."""
        widths = self.settings.widths
        # warm-up starts with the full chain: the first steps behave as a fixed-width server does
        order = (self.settings.block_size,) + tuple(w for w in widths if w != self.settings.block_size)
        for turns in range(1, len(order) + 1):
            width = order[(self._turn + turns - 1) % len(order)]
            if self._offered(width):
                return width, turns
        raise AssertionError(order)  # the chain's widths are always in turn

    def _offered(self, width: int) -> bool:
        """Whether the batch being planned may take `width`: a tree only where `plan` was told trees are."""
        return self._trees or width <= self.settings.block_size

    def _warming_up(self) -> bool:
        return self.drafted_steps < len(self.settings.widths) or not self.costs.ready

    def _next_turn(self) -> int:
        width, turns = self._turns()
        self._turn += turns
        self.since_explore = 0.0
        return width

    def _explore_due(self, batch_size: int) -> bool:
        width = self._peek_turn()
        cost = self.costs.seconds(batch_size, width, drafted=width != PLAIN_WIDTH)
        share = self.settings.explore_share / self.backoff
        return self.since_explore * share >= cost * (1.0 - share)

    def plan(self, batch_size: int, plain_run: int = 1, trees: bool = True) -> Plan:
        """`plain_run`: target passes a plain step of this batch would run (spec/plain_run.py). `trees`: whether
        this batch may verify a tree and show what it gains (greedy rows; budget_step.py). Without, warm-up and
        exploration pass over the tree widths, and their expectations, from other batches, do not count."""
        self._plain_run, self._trees = plain_run, trees
        plan = self._plan(batch_size, plain_run)
        if plan.reason == "plain" and self._last_reason in ("probe", "explore"):
            self.backoff = min(2.0 * self.backoff, self.settings.max_backoff)
        self._last_reason = plan.reason
        return plan

    def _plan(self, batch_size: int, plain_run: int) -> Plan:
        if self._warming_up():
            return Plan(True, self._next_turn(), "warm-up")
        if self._explore_due(batch_size):
            width = self._next_turn()
            return Plan(True, width, "explore") if width != PLAIN_WIDTH else Plan(False, width, "explore-plain")
        if self._probe_due(batch_size):
            return Plan(True, self.settings.block_size, "probe")
        plain = batch_size * plain_run / self.costs.seconds(batch_size, PLAIN_WIDTH, drafted=False, passes=plain_run)
        known = {w: e.value * batch_size for w, e in self.expected.items() if e.value is not None and self._offered(w)}
        if known and plain >= max(self._rates(known, batch_size).values()):
            return Plan(False, PLAIN_WIDTH, "plain")
        return Plan(True, None, "chosen")

    def _probe_due(self, batch_size: int) -> bool:
        if self.plain_seconds <= 0.0:  # probes are for plain stretches: one that lost nothing was due at every step
            return False
        probe = self.costs.seconds(batch_size, self.settings.block_size, drafted=True)
        lost = self.probe_loss.value
        if lost is None:  # no probe yet: one that commits only the bonus tokens
            lost = max(0.0, 1.0 - batch_size * self._plain_seconds_per_token(batch_size) / probe)
        share = self.settings.probe_share / self.backoff
        return self.plain_seconds * share >= lost * probe * (1.0 - share)

    def _plain_seconds_per_token(self, batch_size: int) -> float:
        run = self._plain_run
        return self.costs.seconds(batch_size, PLAIN_WIDTH, drafted=False, passes=run) / (batch_size * run)

    def _lost_share(self, timing: StepTiming) -> float:
        """The share of the drafted step just run that was lost against plain runs committing the same tokens
        (negative: it won)."""
        took = timing.draft_seconds + timing.verify_seconds + (self.costs.between.value or 0.0)
        return 1.0 - timing.committed * self._plain_seconds_per_token(timing.batch_size) / took

    def _observe_drafted(self, timing: StepTiming) -> None:
        """Probes are priced by their lost share: a share, not seconds, because the batch size changes between
        probes (seconds measured at 8 requests made probes at 1 request rare). A chosen step that won restores
        the probe and exploration shares (module docstring)."""
        lost = self._lost_share(timing)
        if self._last_reason == "probe":
            self.probe_loss.observe(max(0.0, lost))
        elif self._last_reason == "chosen" and lost <= 0.0:
            self.backoff = 1.0

    def _rates(self, expected: Mapping[int, float], batch_size: int) -> dict[int, float]:
        return {w: e / self.costs.seconds(batch_size, w, drafted=True) for w, e in expected.items()}

    def choose(self, expected: Mapping[int, float], batch_size: int, plan: Plan) -> int:
        """The width for a drafted step. `expected`: width -> the batch's expected committed tokens."""
        assert plan.drafted, plan
        # A probe or exploration out of plain decoding is the first look at the drafter in a while, and the
        # traffic may have changed since (sampled requests gone, greedy ones come): its block replaces the
        # decayed history instead of moving it a fifth of the way, which at a backed-off probe share took
        # about 1,000 plain steps at 8 requests to notice a drafter accepting 95 % of its drafts.
        fresh = self.plain_seconds > 0.0
        for w, e in expected.items():
            self.expected[w].observe(e / batch_size, restart=fresh)
        if plan.width is not None:
            return plan.width
        rates = self._rates(expected, batch_size)
        return max(rates, key=lambda w: (rates[w], w))

    def observe(self, timing: StepTiming) -> None:
        self.costs.observe(timing)
        if timing.drafted and timing.committed is not None and self.costs.plain.observed:
            self._observe_drafted(timing)
        self.since_explore += timing.draft_seconds + timing.verify_seconds + (self.costs.between.value or 0.0)
        if timing.drafted:
            self.drafted_steps += 1
            self.plain_seconds = 0.0
        else:
            self.plain_seconds += timing.verify_seconds + (self.costs.between.value or 0.0)

    def describe(self, batch_size: int) -> str:
        """One line of the controller's state, for the worker's periodic log."""
        costs, parts = self.costs, []
        if costs.ready:
            parts.append(f"draft {costs.draft.line()}, verify {costs.verify.plane()}"
                         + (f", tree verify {costs.tree_verify.plane()}" if costs.tree_verify.observed else "")
                         + (f", plain {costs.plain.plane()}" if costs.plain.observed else "")
                         + f", between {costs.between.value or 0.0:.4f}s")
            measured = {int(n) // batch_size: round(1e3 * t, 2) for (b, n), (t, _) in
                        sorted(costs.verify.batch_buckets.items()) if b == batch_size}
            parts.append(f"verify ms by width at this bs {measured}")  # the buckets the fit runs through
        known = {w: round(e.value, 2) for w, e in self.expected.items() if e.value is not None}
        parts.append(f"expected tokens per request {known}")
        return f"bs {batch_size}: " + "; ".join(parts)

    def observe_between(self, seconds: float) -> None:
        """Wall time from the end of one decode step to the start of the next (the scheduler's share)."""
        self.costs.observe_between(seconds)
