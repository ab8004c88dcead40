"""`--speculative-dflash-tree-budget auto` in the worker: one budgeted step per decode batch
(spec/budget_step.py), its width reported per request in `meta_info` and counted in Prometheus.

- `meta_info["dflash_verify_widths"]`: the verify width of every step of the request, aligned with
  `meta_info["dflash_acceptance_lengths"]` (step_stats.py); 1 is a plain decoding step.
- `sglang:dflash_verify_width_steps_total{width="W"}` (with `--enable-metrics`): decode steps run at
  width W. A prometheus_client Counter made in the scheduler process: SGLang's launcher sets
  PROMETHEUS_MULTIPROC_DIR before it starts the schedulers, and its /metrics merges every process's.

The scheduler's own spec gauges (`sglang:spec_accept_length`, ...) still count a step as one block
of proposals; the width metric says how many of them were verified.
"""

from __future__ import annotations

import time

import torch

from dflash_sglang.log import get_logger, log_once
from dflash_sglang.sglang_adapter.step_stats import ACCEPTANCE_KEY, WIDTH_KEY
from dflash_sglang.spec.budget_controller import PLAIN_WIDTH, BudgetController, BudgetSettings
from dflash_sglang.spec.budget_step import BudgetedStep, BudgetedStepper
from dflash_sglang.spec.step import StepInput
from dflash_sglang.spec.types import PLACEHOLDER_TOKEN_ID, Acceptance

WIDTH_METRIC = "sglang:dflash_verify_width_steps"
IDLE_GAP_SECONDS = 1.0  # a longer pause between decode steps is idle time, not scheduler work
STARTED_LINE = "DFLASH verify budget: auto, one width per batch step among %s (1 = plain decoding)"
STATE_EVERY = 256  # steps between two state lines (DFLASH_SGLANG_LOG_LEVEL=DEBUG)
STATE_LINE = ("DFLASH verify budget after %d steps: widths {%s}; plans {%s}; %s; "
              "greedy calibration (score->rate(n)) %s; chain realisation (width:factor) %s; tree gains %s")
FIRST_RUN_LINE = "DFLASH verify budget: first plain run, %d target passes in one scheduler step"
KEPT_LINE = "DFLASH verify budget: auto asked for, but the launch has %s: the chain of %d tokens is used"


class WidthMetrics:
    def __init__(self) -> None:
        from prometheus_client import Counter  # after the launcher has set PROMETHEUS_MULTIPROC_DIR

        self.counter = Counter(WIDTH_METRIC, "DFLASH decode steps by verify width (tokens per request; "
                                             "1 = plain decoding)", labelnames=["width"])

    def observe(self, width: int, passes: int = 1) -> None:
        self.counter.labels(width=str(width)).inc(passes)  # a plain run counts each of its passes


def step_clock(device: str):
    """The host clock; on CUDA after the device's queued work has run (kernels launch asynchronously, so
    the clock alone would time their launch). Three synchronisations per step: the price of measuring."""
    if not str(device).startswith("cuda"):
        return time.perf_counter

    def synced() -> float:
        torch.cuda.synchronize()
        return time.perf_counter()

    return synced


def pad_acceptance(acceptance: Acceptance, block_size: int) -> Acceptance:
    """out_tokens [bs, width] -> [bs, blk]: the scheduler reads rows of the block's stride."""
    bs, width = acceptance.out_tokens.shape
    if width >= block_size:
        return acceptance
    pad = acceptance.out_tokens.new_full((bs, block_size - width), PLACEHOLDER_TOKEN_ID)
    return Acceptance(acceptance.accepted, acceptance.bonus, torch.cat([acceptance.out_tokens, pad], dim=1))


def pad_positions(logits: torch.Tensor, block_size: int) -> torch.Tensor:
    """[bs, width, vocab] -> [bs, blk, vocab] for the logprob layout (rows past a width are never read)."""
    bs, width, vocab = logits.shape
    if width >= block_size:
        return logits
    return torch.cat([logits, logits.new_zeros(bs, block_size - width, vocab)], dim=1)


class AutoBudget:
    def __init__(self, block_size: int, tree_widths: tuple[int, ...] = (), enable_metrics: bool = False,
                 device: str = "cpu") -> None:
        self.block_size = block_size
        self.settings = BudgetSettings(block_size, tree_widths)
        self.stepper = BudgetedStepper(BudgetController(self.settings), clock=step_clock(device))
        self.metrics = WidthMetrics() if enable_metrics else None
        self.last: BudgetedStep | None = None
        self._last_end: float | None = None
        self.steps = 0
        self.width_counts: dict[int, int] = {}  # since the last state line
        self.plan_counts: dict[str, int] = {}  # scheduler steps by plan reason, since the last state line
        get_logger().info(STARTED_LINE, list(self.settings.widths))

    def step(self, models, step: StepInput, return_logprob: bool = False, plain_run: int = 1) -> Acceptance:
        """One decode batch; `models` is a BudgetStepModels. The acceptance comes back in the block's
        layout, and with `return_logprob` the processed logits too (`models.target_logits`). `plain_run`:
        target passes of a plain step (spec/plain_run.py); one with logprobs, which cover one token."""
        start = time.perf_counter()
        if self._last_end is not None and start - self._last_end < IDLE_GAP_SECONDS:
            self.stepper.controller.observe_between(start - self._last_end)
        # the tree's verify reads no chain-shaped logits for logprobs (tree_route.py)
        self.last = self.stepper.step(models, step, trees=not return_logprob,
                                      plain_run_length=1 if return_logprob else plain_run)
        self.width_counts[self.last.width] = self.width_counts.get(self.last.width, 0) + self.last.passes
        reason = self.last.plan.reason
        self.plan_counts[reason] = self.plan_counts.get(reason, 0) + 1
        self._last_end = time.perf_counter()
        if self.metrics is not None:
            self.metrics.observe(self.last.width, self.last.passes)
        self.steps += 1
        if self.steps % STATE_EVERY == 0:
            self._log_state(step.anchors.shape[0])
        log_once("auto-budget-first-step", "DFLASH verify budget: first step at width %d (%s)",
                 self.last.width, self.last.plan.reason)
        if self.last.passes > 1:
            log_once("auto-budget-first-run", FIRST_RUN_LINE, self.last.passes)
        if return_logprob:
            models.target_logits = pad_positions(models.target_logits, self.block_size)
        return pad_acceptance(self.last.acceptance, self.block_size)

    def _log_state(self, batch_size: int) -> None:
        widths = ", ".join(f"{w}: {n}" for w, n in sorted(self.width_counts.items()))
        plans = ", ".join(f"{r}: {n}" for r, n in sorted(self.plan_counts.items()))
        self.width_counts.clear()
        self.plan_counts.clear()
        stepper = self.stepper
        get_logger().debug(STATE_LINE, self.steps, widths, plans, stepper.controller.describe(batch_size),
                           stepper.calibration.greedy.describe(), stepper.realisation.describe(),
                           stepper.tree_gain.gain)

    def step_info(self, batch_size: int) -> dict[str, list]:
        """The last step's width for each request, for `customized_info` (step_stats.py). A plain run
        reports each of its passes as a step of width 1 that committed one token: its tokens came from
        as many target forwards, and a length of `passes` would read as accepted drafts."""
        assert self.last is not None
        if self.last.passes == 1:
            return {WIDTH_KEY: [self.last.width] * batch_size}
        ones = [PLAIN_WIDTH] * self.last.passes
        return {ACCEPTANCE_KEY: [ones] * batch_size, WIDTH_KEY: [ones] * batch_size}


def tree_widths(max_tokens: int, block_size: int, page_size: int) -> tuple[int, ...]:
    """The trees `auto` may verify: 16, 32, 64 ... up to the budget's bound, past the block; none with
    pages larger than one token (tree nodes take single KV slots, tree_route.py)."""
    if page_size != 1:
        return ()
    widths, w = [], 16
    while w <= max_tokens:
        if w > block_size:
            widths.append(w)
        w *= 2
    return tuple(widths)


def auto_budget_for(server_args, block_size: int, target_model_config) -> AutoBudget | None:
    """The worker's AutoBudget when the launch asked for `auto`; None otherwise (one start-up line why).
    Hybrid targets keep the full chain: their recurrent-state commit reads verify buffers laid out by the
    block (recurrent_state.py). Tensor-parallel ranks would each measure and choose on their own."""
    from sglang.srt.configs.hybrid_arch import mambaish_config

    from dflash_sglang.sglang_adapter.tree_args import tree_budget_of
    from dflash_sglang.spec.tree_budget import AUTO

    budget = tree_budget_of(server_args, block_size)
    if budget.mode != AUTO:
        return None
    if mambaish_config(target_model_config) is not None:
        get_logger().info(KEPT_LINE, "a hybrid (recurrent) target", block_size)
        return None
    if int(getattr(server_args, "tp_size", 1) or 1) > 1:
        get_logger().info(KEPT_LINE, "tensor parallelism (the ranks would choose widths apart)", block_size)
        return None
    trees = tree_widths(budget.tokens, block_size, int(getattr(server_args, "page_size", 1) or 1))
    return AutoBudget(block_size, trees, enable_metrics=bool(getattr(server_args, "enable_metrics", False)),
                      device=str(getattr(server_args, "device", "cpu") or "cpu"))
