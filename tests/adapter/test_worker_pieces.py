"""The worker's small SGLang-side helpers, on hand-made tensors (no server)."""

from __future__ import annotations

import torch

from dflash_sglang.sglang_adapter.sampling import sampling_params
from dflash_sglang.sglang_adapter.step_models import block_slots
from dflash_sglang.sglang_adapter.worker import _extend_positions
from dflash_sglang.spec.posterior import filters_anything


def test_block_slots_are_the_reserved_slots_past_each_committed_length():
    req_to_token = torch.arange(3 * 20, dtype=torch.int32).view(3, 20) + 1000  # slot = 1000 + 20*req + col
    slots = block_slots(req_to_token, torch.tensor([2, 0]), torch.tensor([5, 0]), block_size=4)
    assert slots.tolist() == [[1045, 1046, 1047, 1048], [1000, 1001, 1002, 1003]]
    assert slots.dtype == torch.int64


def test_extend_positions_follow_each_requests_prefix():
    assert _extend_positions([3, 0], [2, 3], "cpu").tolist() == [3, 4, 0, 1, 2]


class _Info:  # the fields of SGLang's SamplingBatchInfo that we read
    temperatures = torch.tensor([[0.5], [1.0]])
    top_ks = torch.tensor([20, 1])
    top_ps = torch.tensor([0.75, 1.0])
    min_ps = torch.tensor([0.0, 0.125])
    is_all_greedy = False
    need_top_k_sampling, need_top_p_sampling, need_min_p_sampling = True, True, True


class _TemperatureOnly(_Info):
    top_ks, top_ps, min_ps = torch.tensor([1 << 30, 1 << 30]), torch.ones(2), torch.zeros(2)
    need_top_k_sampling, need_top_p_sampling, need_min_p_sampling = False, False, False


def test_sampling_params_from_sglang_batch_info():
    params = sampling_params(_Info(), 2)
    assert params.temperatures.tolist() == [0.5, 1.0] and params.top_ks.tolist() == [20, 1]
    assert params.top_ps.tolist() == [0.75, 1.0] and params.min_ps.tolist() == [0.0, 0.125]
    assert not params.all_greedy and params.may_filter
    assert sampling_params(None, 3).all_greedy


def test_sampling_params_take_the_filter_flags_from_the_host():
    """SGLang's host flags decide whether the vocabulary sort runs, so no step reads the tensors for it."""
    params = sampling_params(_TemperatureOnly(), 2)
    assert params.may_filter is False and not filters_anything(params, 4096)
    filtering = sampling_params(_Info(), 2)
    assert filters_anything(filtering, 4096)
