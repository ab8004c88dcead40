"""How each decode step verifies, chosen once at start-up from `--speculative-dflash-tree-budget`:

- `FixedVerify`: the chain of blk tokens, or a DDTree of N nodes per request (tree_route.py names the
  batches that stay on the chain);
- `AutoVerify`: a width per step, from plain decoding to the largest tree (budget_auto.py).

Both return the step's models (the worker reads their logits) and its acceptance, so the worker's
decode step has one path whatever the flag says.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from dflash_sglang.sglang_adapter import tree_route
from dflash_sglang.sglang_adapter.budget_auto import AutoBudget
from dflash_sglang.sglang_adapter.budget_models import BudgetStepModels
from dflash_sglang.sglang_adapter.plain_pass import first_tokens_streamed, max_lengths
from dflash_sglang.sglang_adapter.step_models import Runners, SGLangStepModels
from dflash_sglang.sglang_adapter.tree_models import SGLangTreeModels
from dflash_sglang.spec.step import StepInput
from dflash_sglang.spec.tree_budget import TreeBudget
from dflash_sglang.spec.types import Acceptance


class VerifyPolicy(Protocol):
    def step(self, runners: Runners, batch, step: StepInput) -> tuple[SGLangStepModels, Acceptance]: ...

    def step_info(self, batch_size: int) -> dict[str, list[int]]: ...  # extra meta_info per request


class FixedVerify:
    def __init__(self, budget: TreeBudget) -> None:
        self.budget = budget

    def step(self, runners: Runners, batch, step: StepInput) -> tuple[SGLangStepModels, Acceptance]:
        models = SGLangTreeModels(runners, batch)  # the chain's models, plus the tree's verify and commit
        return models, tree_route.run_step(models, step, tree_route.step_budget(self.budget, batch, step))

    def step_info(self, batch_size: int) -> dict[str, list[int]]:
        return {}


class AutoVerify:
    def __init__(self, auto: AutoBudget) -> None:
        self.auto = auto

    def step(self, runners: Runners, batch, step: StepInput) -> tuple[SGLangStepModels, Acceptance]:
        models = BudgetStepModels(runners, batch)
        run = runners.plain_run if first_tokens_streamed(batch) else 1
        if run > 1:
            step = replace(step, max_lengths=max_lengths(batch))
        return models, self.auto.step(models, step, bool(batch.return_logprob), run)

    def step_info(self, batch_size: int) -> dict[str, list[int]]:
        return self.auto.step_info(batch_size)
