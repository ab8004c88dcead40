"""The drafter's block pass can be captured in a CUDA graph: no host sync, no data-dependent shape.

Checked on CPU (meta tensors + a full-graph Dynamo trace, see `drafter/capture_check.py`) for the plain
DFlash drafter and DFlash2 (sliding layers, convolutions, selector), ragged contexts, bs 1 and 3.
Guards: the same check fails once an `.item()`, a boolean-mask index or a `.cpu()` is put in the pass.
"""

from __future__ import annotations

import pytest
import torch

from dflash_sglang.config import DFlashConfig
from dflash_sglang.drafter import Drafter
from dflash_sglang.drafter.capture_check import NotCapturableError, block_pass, check_capturable
from unit.drafter_pairs import HIDDEN, TARGET, VOCAB, dflash2_dict, drafter_dict

BLOCK = 16


def _inputs(config: dict, context_lens: list[int]) -> tuple:
    torch.manual_seed(0)
    drafter = Drafter(DFlashConfig.from_dicts(config, TARGET)).eval()
    bs, cap = len(context_lens), max(context_lens)
    context = drafter.new_context(bs)
    features = torch.randn(bs, cap, drafter.config.num_features * HIDDEN)  # [bs, cap, n_feat*hidden]
    drafter.extend_context(context, features, torch.arange(cap).repeat(bs, 1), torch.tensor(context_lens))
    positions = context.lens[:, None] + torch.arange(BLOCK)[None, :]  # [bs, blk]
    embeds = torch.randn(bs, BLOCK, HIDDEN)  # [bs, blk, hidden]
    anchors = torch.randint(0, VOCAB, (bs,))  # [bs]
    return drafter, embeds, positions, context, anchors, torch.randn(VOCAB, HIDDEN)


CASES = [
    pytest.param(drafter_dict(), [9], id="dflash-bs1"),
    pytest.param(drafter_dict(), [9, 4, 1], id="dflash-bs3-ragged"),  # padding hidden by the mask, not by slicing
    pytest.param(dflash2_dict(), [9, 4, 1], id="dflash2-bs3-ragged"),  # conv, selector top-k, sliding windows
]


@pytest.mark.parametrize(("config", "context_lens"), CASES)
def test_block_pass_is_capturable_and_the_traced_run_matches_eager(config, context_lens):
    args = _inputs(config, context_lens)
    traced = check_capturable(block_pass, *args)
    assert torch.equal(traced, block_pass(*args))
    assert traced.shape == (len(context_lens), BLOCK - 1)


class _After(torch.nn.Module):
    """The drafter's final norm, then `wrap`: a module, so the meta copy carries it along."""

    def __init__(self, norm: torch.nn.Module, wrap) -> None:
        super().__init__()
        self.norm, self.wrap = norm, wrap

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.wrap(self.norm(x))


def _with_norm(drafter: Drafter, wrap) -> Drafter:
    drafter.norm = _After(drafter.norm, wrap)
    return drafter


@pytest.mark.parametrize(("wrap", "message"), [
    # Dynamo alone would keep this `.item()` in its graph: the meta run catches it.
    pytest.param(lambda h: h * h.sum().item(), r"item\(\) cannot be called", id="item"),
    pytest.param(lambda h: h[h[..., 0] > 0].sum() + h, "nonzero", id="boolean-mask"),  # a data-dependent shape
    pytest.param(lambda h: h.cpu() + h, "Cannot copy out of meta", id="cpu-copy"),
    pytest.param(lambda h: h if bool(h.sum() > 0) else -h, r"item\(\) cannot be called", id="branch-on-data"),
])
def test_guard_the_check_fails_once_the_pass_syncs_with_the_host(wrap, message):
    drafter, *rest = _inputs(drafter_dict(), [9, 4])
    with pytest.raises(NotCapturableError, match=f"fails without device data .*: .*{message}"):
        check_capturable(block_pass, _with_norm(drafter, wrap), *rest)


def test_the_guards_wrapper_alone_passes():
    drafter, *rest = _inputs(drafter_dict(), [9, 4])
    check_capturable(block_pass, _with_norm(drafter, lambda h: h), *rest)


def test_guard_a_python_level_graph_break_fails_the_trace():
    drafter, *rest = _inputs(drafter_dict(), [5])

    def breaks(h):
        torch._dynamo.graph_break()
        return h

    with pytest.raises(NotCapturableError, match="breaks the graph"):
        check_capturable(block_pass, _with_norm(drafter, breaks), *rest)
