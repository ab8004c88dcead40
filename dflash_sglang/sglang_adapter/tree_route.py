"""Which step a decode batch runs: today's chain, or a tree of `budget` nodes per request.

Named chain fallbacks, each logged once:
- `features`: penalties, min_new_tokens, logit bias, custom processors or grammars process the
  target's logits along a chain (spec/logit_processing.py), so such batches stay on the chain;
- `logprobs`: the logprob writer reads chain-shaped logits;
- `kv-pool-full`: the allocator cannot give the tree's temporary slots this step.
Hybrid (recurrent) targets and tensor-parallel launches stay on the chain (`for_target`).
"""

from __future__ import annotations

from dflash_sglang.log import get_logger, log_once
from dflash_sglang.spec.step import StepInput, speculative_step
from dflash_sglang.spec.tree_budget import CHAIN, FIXED, TREE_BUDGET_FLAG, TreeBudget
from dflash_sglang.spec.tree_step import tree_step
from dflash_sglang.spec.types import Acceptance

TREE_LINE = "DFLASH verify: %s"
HYBRID_LINE = "DFLASH verify: %s %s asked for, but the launch has %s: the chain of %d tokens is used"


def for_target(budget: TreeBudget, target_model_config, block_size: int, server_args) -> TreeBudget:
    """The launch's fixed tree on this target (one start-up line); ValueError for what trees cannot serve.
    `auto` is the budget policy's (budget_auto.py) and passes through."""
    from sglang.srt.configs.hybrid_arch import mambaish_config

    if budget.mode != FIXED:
        return budget
    if mambaish_config(target_model_config) is not None:
        get_logger().info(HYBRID_LINE, TREE_BUDGET_FLAG, budget.tokens, "recurrent (GDN/Mamba) layers whose "
                          "state cannot branch yet", block_size)
        return TreeBudget(CHAIN, block_size)
    if int(getattr(server_args, "tp_size", 1) or 1) > 1:
        get_logger().info(HYBRID_LINE, TREE_BUDGET_FLAG, budget.tokens, "tensor parallelism, whose ranks do not "
                          "agree on tree walks yet", block_size)
        return TreeBudget(CHAIN, block_size)
    page_size = int(getattr(server_args, "page_size", 1) or 1)
    if page_size != 1:
        raise ValueError(f"{TREE_BUDGET_FLAG}: expected --page-size 1 (tree nodes take single KV slots), "
                         f"got {page_size}")
    get_logger().info(TREE_LINE, describe(budget, block_size))
    return budget


def describe(budget: TreeBudget, block_size: int) -> str:
    if budget.mode == CHAIN:
        return f"chain of {block_size} tokens (--speculative-num-draft-tokens)"
    if budget.mode == FIXED:
        return f"DDTree of {budget.tokens} tokens per request ({TREE_BUDGET_FLAG} {budget.tokens})"
    return f"per-step width up to {budget.tokens} tokens ({TREE_BUDGET_FLAG} auto)"


def chain_reason(batch, step: StepInput) -> str | None:
    if step.features is not None:
        return "features"
    if batch.return_logprob:
        return "logprobs"
    return None


def step_budget(budget: TreeBudget, batch, step: StepInput) -> int | None:
    """Tree nodes per request for this batch; None: the chain."""
    if budget.mode != FIXED:  # `auto` is decided per step by the budget policy (spec/budget*.py)
        return None
    reason = chain_reason(batch, step)
    if reason is not None:
        log_once(f"tree-chain-{reason}", "DFLASH tree: a batch with %s runs on the chain (%s)", reason,
                 "logit processing follows the chain" if reason == "features" else "chain-shaped logprobs")
        return None
    return budget.tokens


def run_step(models, step: StepInput, budget: int | None) -> Acceptance:
    """models: SGLangTreeModels. A tree of `budget` nodes, or the chain (budget None, or no KV slots)."""
    if budget is None:
        return speculative_step(models, step)
    if not models.reserve(budget):
        log_once("tree-chain-kv-pool-full", "DFLASH tree: the KV pool cannot hold a tree's temporary slots; "
                 "such steps run on the chain (kv-pool-full)")
        return speculative_step(models, step)
    try:
        return tree_step(models, step, budget)
    finally:
        models.release()  # commit released them already, unless the step raised
