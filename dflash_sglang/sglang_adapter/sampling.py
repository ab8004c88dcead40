"""SGLang's per-batch sampling state -> our plain `SamplingParams`."""

from __future__ import annotations

import torch

from dflash_sglang.spec.posterior import SamplingParams


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
    )
