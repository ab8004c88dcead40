"""What a step costs, measured online: time as a linear function of the tokens a pass runs.

A forward pass over n tokens costs about a + b*n: a fixed part (weights read, kernel launches, the
per-step Python) and a part that grows with the tokens. Each pass gets a `LinearCost`: a decayed mean
of the seconds at every token count seen (a bucket), and a least-squares line through the buckets,
each weighted by how recently it was seen. Buckets, not raw observations, because the widths are not
sampled evenly over time: during a stretch of plain decoding only n = bs is measured, and if the
host's load drops meanwhile, raw observations would make the other widths look dearer than they are
and keep the controller where it is. With only one token count seen, the slope is unknown and the
cost is flat, which is why the controller explores other widths at the start and now and then.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Line:
    intercept: float  # seconds
    slope: float  # seconds per token

    def __call__(self, tokens: float) -> float:
        return self.intercept + self.slope * tokens

    def __str__(self) -> str:
        return f"{1e3 * self.intercept:.2f}ms + {1e3 * self.slope:.3f}ms/token"


class LinearCost:
    """Seconds for a pass over n tokens (see the module docstring). On a shared host a pass is now and
    then descheduled for many times its length: an observation counts for at most `clip` times its
    bucket's mean, so one stall bends the fit a little, a lasting slowdown fully."""

    def __init__(self, decay: float = 0.98, clip: float = 2.0, bucket_decay: float = 0.75) -> None:
        assert 0.0 < decay <= 1.0 and clip > 1.0 and 0.0 <= bucket_decay < 1.0, (decay, clip, bucket_decay)
        self.decay, self.clip, self.bucket_decay = decay, clip, bucket_decay
        self.buckets: dict[float, tuple[float, int]] = {}  # tokens -> (decayed mean seconds, when last seen)
        self.count = 0  # observations so far

    @property
    def observed(self) -> bool:
        return bool(self.buckets)

    def observe(self, tokens: float, seconds: float) -> None:
        old = self.buckets.get(tokens)
        if old is not None:
            seconds = min(seconds, self.clip * old[0])
        mean = seconds if old is None else self.bucket_decay * old[0] + (1.0 - self.bucket_decay) * seconds
        self.count += 1
        self.buckets[tokens] = (mean, self.count)

    def line(self) -> Line:
        assert self.observed, "no observation yet"
        w = wn = wnn = wt = wnt = 0.0
        for n, (t, seen) in self.buckets.items():
            weight = self.decay ** (self.count - seen)
            w, wn, wnn, wt, wnt = w + weight, wn + weight * n, wnn + weight * n * n, wt + weight * t, wnt + weight * n * t
        mean_n, mean_t = wn / w, wt / w
        var_n = wnn / w - mean_n * mean_n
        # below this spread of n (in tokens^2) the slope is noise: stay flat
        if var_n <= 1e-6 * max(1.0, mean_n * mean_n):
            return Line(mean_t, 0.0)
        slope = max((wnt / w - mean_n * mean_t) / var_n, 0.0)  # more tokens never cost less
        return Line(max(mean_t - slope * mean_n, 0.0), slope)

    def __call__(self, tokens: float) -> float:
        return self.line()(tokens)


class Ema:
    def __init__(self, decay: float = 0.9) -> None:
        self.decay = decay
        self.value: float | None = None

    def observe(self, x: float) -> None:
        self.value = x if self.value is None else self.decay * self.value + (1.0 - self.decay) * x


@dataclass(frozen=True)
class StepTiming:
    """One decode step as measured by the budgeted step."""

    batch_size: int
    width: int  # verify tokens per request
    drafted: bool  # whether the drafter's block pass ran
    draft_seconds: float  # the block pass (0 when not drafted)
    verify_seconds: float  # the target's verify pass, accept and commit

    @staticmethod
    def make_dummy(batch_size: int = 1, width: int = 4, drafted: bool = True) -> "StepTiming":
        return StepTiming(batch_size, width, drafted, 0.01 if drafted else 0.0, 0.02)


class StepCosts:
    """Draft pass (by batch size), verify pass (by the batch's verify tokens) and the time between steps.
    Trees (widths past the block) have their own verify fit: building the tree, its mask and the move of
    the accepted path's K/V cost more per token than a chain does."""

    def __init__(self, block_size: int, decay: float = 0.98) -> None:
        self.block_size = block_size
        self.draft = LinearCost(decay)  # n = requests (each drafts a whole block)
        self.verify = LinearCost(decay)  # n = requests * width
        self.tree_verify = LinearCost(decay)  # the same, for trees
        self.between = Ema()  # scheduler time outside the worker, per step

    def _verify(self, width: int) -> LinearCost:
        # a tree never measured yet is priced like a chain of its width
        tree = width > self.block_size and self.tree_verify.observed
        return self.tree_verify if tree else self.verify

    @property
    def ready(self) -> bool:
        return self.draft.observed and self.verify.observed

    def observe(self, timing: StepTiming) -> None:
        if timing.drafted:
            self.draft.observe(timing.batch_size, timing.draft_seconds)
        fit = self.tree_verify if timing.width > self.block_size else self.verify
        fit.observe(timing.batch_size * timing.width, timing.verify_seconds)

    def observe_between(self, seconds: float) -> None:
        self.between.observe(seconds)

    def seconds(self, batch_size: int, width: int, drafted: bool) -> float:
        """Predicted wall time of a step (needs `ready`)."""
        draft = self.draft(batch_size) if drafted else 0.0
        return (self.between.value or 0.0) + draft + self._verify(width)(batch_size * width)
