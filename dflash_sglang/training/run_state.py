"""What a training run needs to stop and resume: the budget, the learning-rate schedule and a state file.

A run ends when its step budget or its time budget is spent, whichever comes first; the learning rate
follows a linear warm-up then a cosine decay over the fraction of that budget used. With only a step
budget the schedule, the data order (a seeded `torch.Generator`) and therefore the run are
reproducible; a time budget trades that for a fixed wall time. `trainer_state.pt` holds the fp32
weights, the optimizer, the generator and the counters, so `--resume` continues the same run.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

STATE_FILE = "trainer_state.pt"


@dataclass(frozen=True)
class Budget:
    max_steps: int | None  # stop after this many optimizer steps
    time_budget: float | None  # seconds of training (evaluation and saving included)
    lr: float
    warmup_steps: int
    min_lr_ratio: float = 0.1  # the cosine ends at lr * min_lr_ratio

    def __post_init__(self) -> None:
        if self.max_steps is None and self.time_budget is None:
            raise ValueError("budget: expected max_steps or time_budget (or both), got neither")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps: expected an int >= 1, got {self.max_steps}")
        if self.time_budget is not None and self.time_budget <= 0:
            raise ValueError(f"time_budget: expected seconds > 0, got {self.time_budget}")
        if self.lr <= 0:
            raise ValueError(f"lr: expected > 0, got {self.lr}")

    def progress(self, step: int, elapsed: float) -> float:
        """Fraction of the budget used, in [0, 1]; the run stops at 1."""
        fractions = []
        if self.max_steps is not None:
            fractions.append(step / self.max_steps)
        if self.time_budget is not None:
            fractions.append(elapsed / self.time_budget)
        return min(1.0, max(fractions))

    def lr_at(self, step: int, elapsed: float) -> float:
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        cosine = 0.5 * (1.0 + math.cos(math.pi * self.progress(step, elapsed)))
        return self.lr * (self.min_lr_ratio + (1.0 - self.min_lr_ratio) * cosine)


@dataclass
class RunState:
    seed: int
    step: int = 0
    elapsed: float = 0.0  # seconds spent training so far, over all resumed segments


def save_state(
    directory: Path,
    run: RunState,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    state = {
        "run": asdict(run),
        "model": {name: t.detach().float().cpu() for name, t in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state(),
    }
    tmp = directory / (STATE_FILE + ".tmp")
    torch.save(state, tmp)
    tmp.replace(directory / STATE_FILE)  # a crash while saving keeps the previous state


def load_state(
    directory: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
) -> RunState:
    path = directory / STATE_FILE
    if not path.is_file():
        raise ValueError(f"--resume: expected a training state at {str(path)!r}, got no such file")
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"], strict=True)
    optimizer.load_state_dict(state["optimizer"])
    generator.set_state(state["generator"])
    return RunState(**state["run"])


def progress_bar(desc: str, budget: Budget, run: RunState):
    """A tqdm bar over the budget, in per mille (steps or seconds, whichever ends the run)."""
    from tqdm import tqdm

    return tqdm(total=1000, desc=desc, unit="‰", initial=int(1000 * budget.progress(run.step, run.elapsed)))


def advance_bar(bar, budget: Budget, run: RunState) -> None:
    bar.update(int(1000 * budget.progress(run.step, run.elapsed)) - bar.n)
