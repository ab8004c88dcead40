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


MAX_BATCH_BUCKETS = 128  # (bs, tokens) buckets kept by a BatchCost; the fit runs over all of them every step


@dataclass(frozen=True)
class Plane:
    intercept: float  # seconds
    per_request: float  # seconds per request of the batch
    per_token: float  # seconds per verify token

    def __call__(self, batch_size: float, tokens: float) -> float:
        return self.intercept + self.per_request * batch_size + self.per_token * tokens

    def __str__(self) -> str:
        return f"{1e3 * self.intercept:.2f}ms + {1e3 * self.per_request:.3f}ms/request + {1e3 * self.per_token:.3f}ms/token"


class BatchCost(LinearCost):
    """Seconds for a verify pass of `batch_size` requests over `tokens` tokens: a + b*bs + c*tokens.

    A pass has costs per request as well as per token (each request's attention over its own context, its
    KV slots, its row of the logit processing), so 32 requests verifying one token each cost more than 4
    requests verifying 8 each. A line in the tokens alone priced both alike, and at c=32 plain decoding
    (32 tokens, priced from small batches' chains) looked cheaper than it was: `auto` decoded plainly in
    80 % of the steps where the full chain paid 1.45x (2026-11-30 sweep). Buckets are (bs, tokens); where
    they do not separate the two (one batch size, or one width), the fit is LinearCost's line in tokens.
    The fit is cached until the next observation: the controller prices every width at every step."""

    def __init__(self, decay: float = 0.98, clip: float = 2.0, bucket_decay: float = 0.75) -> None:
        super().__init__(decay, clip, bucket_decay)
        self.batch_buckets: dict[tuple[float, float], tuple[float, int]] = {}  # (bs, tokens) -> (mean s, seen)
        self._plane: Plane | None = None

    def observe_batch(self, batch_size: float, tokens: float, seconds: float) -> None:
        old = self.batch_buckets.get((batch_size, tokens))
        if old is not None:
            seconds = min(seconds, self.clip * old[0])
        self.observe(tokens, seconds)
        mean = seconds if old is None else self.bucket_decay * old[0] + (1.0 - self.bucket_decay) * seconds
        self.batch_buckets[(batch_size, tokens)] = (mean, self.count)
        self._plane = None
        if len(self.batch_buckets) > MAX_BATCH_BUCKETS:  # forget buckets whose weight has decayed away
            oldest = sorted(self.batch_buckets, key=lambda key: self.batch_buckets[key][1])
            for key in oldest[: len(oldest) - MAX_BATCH_BUCKETS // 2]:
                del self.batch_buckets[key]

    def plane(self) -> Plane:
        if self._plane is None:
            self._plane = self._fit()
        return self._plane

    def _fit(self) -> Plane:
        """Weighted least squares over the (bs, tokens) buckets, slopes never negative."""
        assert self.observed, "no observation yet"
        rows = [(b, n, t, self.decay ** (self.count - seen)) for (b, n), (t, seen) in self.batch_buckets.items()]
        total = sum(w for *_, w in rows)

        def mean(f) -> float:
            return sum(f(b, n, t) * w for b, n, t, w in rows) / total

        mb, mn, mt = mean(lambda b, n, t: b), mean(lambda b, n, t: n), mean(lambda b, n, t: t)
        sbb, snn = mean(lambda b, n, t: (b - mb) ** 2), mean(lambda b, n, t: (n - mn) ** 2)
        sbn = mean(lambda b, n, t: (b - mb) * (n - mn))
        sbt, snt = mean(lambda b, n, t: (b - mb) * (t - mt)), mean(lambda b, n, t: (n - mn) * (t - mt))
        det = sbb * snn - sbn * sbn
        if det > 1e-3 * sbb * snn > 0.0:  # bs and tokens vary apart from each other
            per_request, per_token = (sbt * snn - snt * sbn) / det, (snt * sbb - sbt * sbn) / det
            if per_request >= 0.0 and per_token >= 0.0:
                return Plane(max(mt - per_request * mb - per_token * mn, 0.0), per_request, per_token)
        line = self.line()
        return Plane(line.intercept, 0.0, line.slope)


class Ema:
    def __init__(self, decay: float = 0.9) -> None:
        self.decay = decay
        self.value: float | None = None

    def observe(self, x: float, restart: bool = False) -> None:
        self.value = x if self.value is None or restart else self.decay * self.value + (1.0 - self.decay) * x


@dataclass(frozen=True)
class StepTiming:
    """One decode step as measured by the budgeted step."""

    batch_size: int
    width: int  # verify tokens per request
    drafted: bool  # whether the drafter's block pass ran
    draft_seconds: float  # the block pass (0 when not drafted)
    verify_seconds: float  # the target's verify pass, accept and commit (all passes of a plain run)
    passes: int = 1  # target passes: a plain run's length (spec/plain_run.py), else 1
    committed: float | None = None  # tokens the batch committed (None: not counted; probes need it)

    @staticmethod
    def make_dummy(batch_size: int = 1, width: int = 4, drafted: bool = True, passes: int = 1) -> "StepTiming":
        return StepTiming(batch_size, width, drafted, 0.01 if drafted else 0.0, 0.02 * passes, passes)


class StepCosts:
    """Draft pass (by batch size), verify pass (by the batch's verify tokens) and the time between steps.
    Trees (widths past the block) have their own verify fit: building the tree, its mask and the move of
    the accepted path's K/V cost more per token than a chain does. So does plain decoding (width 1): it
    is SGLang's DECODE forward and a bare sample, not a verify pass and an accept rule, and one line
    through it and the chains took that difference for a cost per token. With the controller's recent
    steps at widths 1 and 3 the line ran through those two (2026-11-30, c=1, T 0.7: 8.2 ms + 1.8 ms per
    token), priced the full chain at 23 ms and kept `auto` on short chains and plain decoding."""

    def __init__(self, block_size: int, decay: float = 0.98) -> None:
        self.block_size = block_size
        self.draft = LinearCost(decay)  # n = requests (each drafts a whole block)
        self.verify = BatchCost(decay)  # chains of 2 .. blk: requests, and n = requests * width
        self.tree_verify = BatchCost(decay)  # the same, for trees
        self.plain = BatchCost(decay)  # width 1
        self.between = Ema()  # scheduler time outside the worker, per step

    def _fit(self, width: int) -> BatchCost:
        if width == 1:
            return self.plain
        return self.tree_verify if width > self.block_size else self.verify

    def _verify(self, width: int) -> BatchCost:
        fit = self._fit(width)  # a width never measured yet is priced like a chain of its width
        return fit if fit.observed else self.verify

    @property
    def ready(self) -> bool:
        return self.draft.observed and self.verify.observed

    def observe(self, timing: StepTiming) -> None:
        if timing.drafted:
            self.draft.observe(timing.batch_size, timing.draft_seconds)
        tokens = timing.batch_size * timing.width
        self._fit(timing.width).observe_batch(timing.batch_size, tokens, timing.verify_seconds / timing.passes)

    def observe_between(self, seconds: float) -> None:
        self.between.observe(seconds)

    def seconds(self, batch_size: int, width: int, drafted: bool, passes: int = 1) -> float:
        """Predicted wall time of a step (needs `ready`); `passes` > 1: a plain run of that many target
        passes, which shares one stretch of scheduler time between them."""
        draft = self.draft(batch_size) if drafted else 0.0
        verify = self._verify(width).plane()(batch_size, batch_size * width)
        return (self.between.value or 0.0) + draft + passes * verify
