"""The accept rule's environment option, and the builtin worker's torch sampling verify on CPU (no server)."""

from __future__ import annotations

import pytest
import torch

from dflash_sglang.sglang_adapter.cpu.builtin_sampling_verify import correct_drafts_and_bonus
from dflash_sglang.sglang_adapter.sampling import SAMPLING_RULE_ENV, sampling_rule


def test_sampling_rule_defaults_to_rejection_and_names_bad_values(monkeypatch):
    monkeypatch.delenv(SAMPLING_RULE_ENV, raising=False)
    assert sampling_rule() == "rejection"
    monkeypatch.setenv(SAMPLING_RULE_ENV, "point-mass")
    assert sampling_rule() == "point-mass"
    monkeypatch.setenv(SAMPLING_RULE_ENV, "greedy")
    with pytest.raises(ValueError, match="expected one of rejection, point-mass, got 'greedy'"):
        sampling_rule()


class _Info:  # the fields of SGLang's SamplingBatchInfo that we read: row 0 greedy, row 1 sampled
    temperatures = torch.tensor([[1.0], [1.0]])
    top_ks = torch.tensor([1, 1 << 30])
    top_ps = torch.tensor([1.0, 1.0])
    min_ps = torch.tensor([0.0, 0.0])
    is_all_greedy = False
    need_top_k_sampling, need_top_p_sampling, need_min_p_sampling = True, False, False  # row 0's top_k of 1


def test_builtin_sampling_verify_accepts_what_the_target_would_emit():
    vocab, blk = 6, 4
    candidates = torch.tensor([[9, 1, 2, 3], [9, 4, 5, 1]])  # [bs, blk] anchor, drafts
    logits = torch.zeros(2, blk, vocab)
    # Row 0 (greedy): the target's argmax agrees with the first two drafts, then says 0.
    logits[0, torch.arange(blk), torch.tensor([1, 2, 0, 5])] = 5.0
    # Row 1 (sampled): the target is all but certain of every draft, and of 2 after them.
    logits[1, torch.arange(blk), torch.tensor([4, 5, 1, 2])] = 50.0
    accepted, bonus = correct_drafts_and_bonus(candidates, logits.view(2 * blk, vocab), _Info())
    assert accepted.tolist() == [2, 3] and bonus.tolist() == [0, 2]


def test_builtin_hooks_reach_the_workers_names_and_take_its_call():
    """The hook targets resolve in SGLang's builtin worker module, its kernel is missing here, and a call shaped
    like the worker's (keywords, plus its top-k hints) reaches our verify."""
    import pkgutil

    from dflash_sglang.sglang_adapter.cpu import builtin_sampling_verify as verify

    real_available = pkgutil.resolve_name(verify.AVAILABLE)
    real_compute = pkgutil.resolve_name(verify.CORRECT_DRAFTS_AND_BONUS)
    assert not real_available() and not verify.sglang_kernel_available()  # why the stand-in exists
    assert verify.around_available(real_available) is True
    candidates = torch.tensor([[9, 1, 2, 3]])
    logits = torch.full((4, 6), -50.0)
    logits[torch.arange(4), torch.tensor([1, 2, 3, 4])] = 50.0
    info = type("Info", (), {"temperatures": torch.ones(1, 1), "top_ks": torch.tensor([1 << 30]),
                             "top_ps": torch.ones(1), "min_ps": torch.zeros(1), "is_all_greedy": False,
                             "need_top_k_sampling": False, "need_top_p_sampling": False,
                             "need_min_p_sampling": False})()
    accepted, bonus = verify.around_correct_drafts_and_bonus(
        real_compute, candidates=candidates, next_token_logits=logits, sampling_info=info, max_top_k=None,
        uniform_top_k_value=None)
    assert accepted.tolist() == [3] and bonus.tolist() == [4]


def test_kernel_check_ignores_the_hooked_availability(monkeypatch):
    """Guard: in a real server our AROUND hook makes `is_dflash_sampling_verify_available()` answer True;
    deciding from it sent the builtin's sampled requests to SGLang's missing kernel, and the server died."""
    from sglang.srt.speculative import dflash_utils

    from dflash_sglang.sglang_adapter.cpu import builtin_sampling_verify as verify

    monkeypatch.setattr(dflash_utils, "is_dflash_sampling_verify_available", lambda: True)
    assert verify.sglang_kernel_available() is False
