"""The CPU enablement wired into a real SGLang (no server): after SGLang's own plugin loader ran, every hook
is in place, the ops answer through SGLang's call sites, and installing twice changes nothing.

Needs the CPU harness env (sgl_kernel must import); the servers in test_builtin_baselines.py prove the rest.
"""

from __future__ import annotations

import pkgutil
from types import SimpleNamespace

import pytest
import torch

from helpers.e2e import in_process_sglang_marks

pytestmark = in_process_sglang_marks()


@pytest.fixture(scope="module")
def cpu():
    from sglang.srt.plugins import load_plugins

    load_plugins()
    from dflash_sglang.sglang_adapter import cpu

    return cpu


def hook_targets(cpu) -> list[str]:
    from dflash_sglang.sglang_adapter.cpu import (
        input_embeds_dtype, platform_guard, qk_norm_rope, streams, verify_attention)

    return [platform_guard.HANDLE_DFLASH, streams.RECORD_STREAM, qk_norm_rope.DFLASH_ATTENTION_INIT,
            verify_attention.FORWARD_EXTEND, input_embeds_dtype.EXTEND_FORWARD_KWARGS]


def test_every_hook_is_applied_and_install_is_idempotent(cpu):
    from sglang.srt.plugins.hook_registry import HookRegistry

    from dflash_sglang.sglang_adapter.cpu import ops

    targets = hook_targets(cpu)
    for target in targets:
        assert hasattr(pkgutil.resolve_name(target), "__wrapped__"), f"{target} is not hooked"
    def ours() -> dict[str, int]:
        return {t: sum(hook.__module__.startswith(cpu.__name__) for _, hook, _ in HookRegistry._hooks[t])
                for t in targets}

    assert set(ours().values()) == {1}, ours()
    cpu.install()
    assert ops.register_missing(ops.SPEC_OPS) == []  # all registered already
    assert all(ops.has_cpu_kernel(name) for name, _, _ in ops.SPEC_OPS)
    assert set(ours().values()) == {1}, ours()


def test_torch_native_is_an_allowed_draft_backend(cpu):
    from sglang.srt.arg_groups.choices import DRAFT_ATTENTION_BACKEND_CHOICES

    assert DRAFT_ATTENTION_BACKEND_CHOICES.count("torch_native") == 1


def test_dflash_guard_sees_the_proxy_only_during_the_call_and_only_for_cpu(cpu):
    from sglang.srt.arg_groups import speculative_hook

    from dflash_sglang.sglang_adapter.cpu import platform_guard

    real = speculative_hook.current_platform
    seen = []

    def original(server_args):
        platform = speculative_hook.current_platform
        seen.append((server_args.device, platform.is_out_of_tree(), platform.supports_speculative_algorithm(
            "DFLASH"), platform.supports_speculative_draft_attention_backend("DFLASH", "torch_native")))
        raise ValueError("stop")  # the real platform must come back even when the call fails

    for device in ("cpu", "cuda"):
        with pytest.raises(ValueError, match="stop"):
            platform_guard.around_handle_dflash(original, SimpleNamespace(device=device))
        assert speculative_hook.current_platform is real
    assert seen[0] == ("cpu", True, True, True)
    assert seen[1][0] == "cuda" and not seen[1][1]  # off CPU SGLang's own platform answers


def test_ops_answer_through_sglang_call_sites(cpu):
    """SGLang's own wrappers (the `_is_cpu` branches) reach our ops with matching schemas."""
    from sglang.kernels.ops.speculative.cache_locs import assign_extend_cache_locs_func
    from sglang.kernels.ops.speculative.eagle import fill_accept_out_cache_loc_func
    from sglang.srt.mem_cache.allocation import assign_req_to_token_pool_func

    req_pool_indices = torch.tensor([2, 0], dtype=torch.int64)  # [bs]
    start, end = torch.tensor([3, 0]), torch.tensor([6, 3])  # [bs] 3 slots each
    out_cache_loc = torch.tensor([10, 11, 12, 20, 21, 22])  # [bs * 3]
    req_to_token = torch.zeros(3, 16, dtype=torch.int32)  # [rows, pool_len]
    assign_req_to_token_pool_func(req_pool_indices, req_to_token, start, end, out_cache_loc, 2)
    assert req_to_token[2, 3:6].tolist() == [10, 11, 12] and req_to_token[0, :3].tolist() == [20, 21, 22]
    back = assign_extend_cache_locs_func(req_pool_indices=req_pool_indices, req_to_token=req_to_token,
                                         start_offset=start, end_offset=end, batch_size=2, draft_token_num=3,
                                         device="cpu")
    assert back.tolist() == out_cache_loc.tolist()
    packed = torch.full((6,), -1, dtype=torch.int64)
    fill_accept_out_cache_loc_func(torch.tensor([[0, 1, -1], [3, -1, -1]], dtype=torch.int32), out_cache_loc,
                                   packed, 6)
    assert packed.tolist()[:3] == [10, 11, 20]


def test_tree_ops_answer_through_sglang_call_sites(cpu):
    from sglang.kernels.ops.speculative.reconstruct_tree import reconstruct_indices_from_tree_mask_func
    from sglang.kernels.ops.speculative.spec_tree import verify_tree_greedy_func

    n = 3  # root 0 with children 1 and 2
    tree_mask = torch.tensor([[1, 0, 0], [1, 1, 0], [1, 0, 1]], dtype=torch.bool).reshape(-1)  # [n * n]
    positions = torch.empty(n, dtype=torch.int64)
    index, next_token, next_sibling = (torch.empty(1, n, dtype=torch.int64) for _ in range(3))
    reconstruct_indices_from_tree_mask_func(tree_mask, torch.tensor([5]), positions, index, next_token,
                                            next_sibling, 1, n)
    assert positions.tolist() == [5, 6, 6] and next_token.tolist() == [[1, -1, -1]]
    assert next_sibling.tolist() == [[-1, 2, -1]]
    predicts = torch.full((n,), -1, dtype=torch.int32)
    accept_index = torch.full((1, 2), -1, dtype=torch.int32)
    accept_num = torch.zeros(1, dtype=torch.int32)
    verify_tree_greedy_func(predicts, accept_index, accept_num, torch.tensor([[7, 8, 9]]), index, next_token,
                            next_sibling, torch.tensor([[9, 0, 4]]))  # the target says 9: branch 2
    assert accept_index.tolist() == [[0, 2]] and accept_num.tolist() == [1]
    assert predicts.tolist() == [9, -1, 4]  # the target's token after each accepted node; 4 is the bonus
