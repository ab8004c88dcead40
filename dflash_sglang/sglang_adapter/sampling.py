"""SGLang's per-batch sampling state -> our plain `SamplingParams`; the accept rule for sampled requests."""

from __future__ import annotations

import os

import torch

from dflash_sglang.log import get_logger
from dflash_sglang.spec.posterior import SamplingParams
from dflash_sglang.spec.rules import REJECTION, SAMPLING_RULES

# For benchmarks only: `point-mass` brings back the rule that drafts the drafter's argmax and accepts
# it iff it equals a sample of the target, to measure what the drafter's distribution buys.
SAMPLING_RULE_ENV = "DFLASH_SGLANG_SAMPLING_RULE"


def sampling_rule() -> str:
    """The rule named by DFLASH_SGLANG_SAMPLING_RULE (default `rejection`); logged when not the default."""
    rule = os.environ.get(SAMPLING_RULE_ENV, REJECTION)
    if rule not in SAMPLING_RULES:
        raise ValueError(f"{SAMPLING_RULE_ENV}: expected one of {', '.join(SAMPLING_RULES)}, got {rule!r}")
    if rule != REJECTION:
        get_logger().info("%s=%s: sampled requests use the %s accept rule (a benchmark option)",
                          SAMPLING_RULE_ENV, rule, rule)
    return rule


def sampling_params(sampling_info, batch_size: int) -> SamplingParams:
    if sampling_info is None:  # no sampling state: greedy
        ones = torch.ones(batch_size)
        return SamplingParams(ones, torch.ones(batch_size, dtype=torch.int64), ones, torch.zeros(batch_size), True)
    return SamplingParams(
        temperatures=sampling_info.temperatures.view(-1),  # [bs]
        top_ks=sampling_info.top_ks.view(-1),  # [bs]
        top_ps=sampling_info.top_ps.view(-1),  # [bs]
        min_ps=sampling_info.min_ps.view(-1),  # [bs]
        all_greedy=bool(sampling_info.is_all_greedy),
        # host flags, kept as the batch changes (OR-ed on merge, never cleared on filter: at worst a sort for nothing)
        may_filter=bool(sampling_info.need_top_k_sampling or sampling_info.need_top_p_sampling
                        or sampling_info.need_min_p_sampling),
    )
