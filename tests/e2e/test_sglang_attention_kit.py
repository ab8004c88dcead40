"""Our TARGET_VERIFY path for `torch_native`, checked by SGLang's own attention test kit (shipped in the
wheel: `sglang/test/kits/attention_unittest`), whose reference is a per-query masked softmax.

The kit drives a real `TorchNativeAttnBackend`, `MHATokenToKVPool` (whose init calls our
`copy_all_layer_kv_cache_cpu`) and `RadixAttention` in TARGET_VERIFY mode, after SGLang's plugin loader
has installed our CPU enablement. No server: it needs the CPU harness env (sgl_kernel must import).
"""

from __future__ import annotations

import unittest

import pytest
import torch

from helpers.e2e import in_process_sglang_marks

pytestmark = in_process_sglang_marks()


@pytest.fixture(scope="module")
def kit():
    """Load plugins the way every SGLang process does (that registers the GDN ops the kit's imports read),
    then import the kit."""
    from sglang.srt.plugins import load_plugins

    load_plugins()
    from sglang.test.kits.attention_unittest.attention_methods import dense_attention
    from sglang.test.kits.attention_unittest.runner_modes import speculative_target_verify_runner

    return dense_attention, speculative_target_verify_runner


def make_case(kit, name, prefix_lens, q_len, window=None):
    from sglang.srt.model_executor.forward_batch_info import ForwardMode

    dense, _ = kit
    return dense.DenseAttentionCase(
        name=name, backend="torch_native", forward_mode=ForwardMode.TARGET_VERIFY,
        num_heads=4, num_kv_heads=2,  # GQA
        page_size=1, prefix_lens=prefix_lens, extend_lens=(q_len,) * len(prefix_lens),
        sliding_window_size=window)


@pytest.mark.parametrize("prefix_lens, q_len, window", [
    pytest.param((5, 0, 9), 8, None, id="bs3-blk8-ragged-prefix-with-empty"),
    pytest.param((1,), 1, None, id="bs1-blk1"),
    pytest.param((12, 3), 8, 4, id="bs2-blk8-window4"),  # the window cuts into prefix and block
])
def test_dflash_verify_block_matches_kit_reference(kit, prefix_lens, q_len, window):
    _, runner = kit
    case = make_case(kit, "dflash", prefix_lens, q_len, window)
    with torch.no_grad():  # the kit fills KV buffers outside no_grad
        runner.run_dense_spec_verify_case(unittest.TestCase(), case, topk=1, spec_kind="dflash",
                                          dtype=torch.float32, device="cpu")


def test_ngram_tree_full_mask_matches_kit_reference(kit):
    _, runner = kit
    case = make_case(kit, "ngram-tree", (6, 2), 3)  # the kit's tree: root with two branches
    with torch.no_grad():
        runner.run_dense_spec_verify_case(unittest.TestCase(), case, topk=3, spec_kind="ngram",
                                          dtype=torch.float32, device="cpu")


def run_with_mask(kit, case, *, topk, spec_kind, rewrite):
    """The kit's `run_dense_spec_verify_case`, with a hook to rewrite the mask the backend sees and the
    per-request masks the reference uses: for layouts and layer types the kit does not generate."""
    dense, runner = kit
    fixture = dense.build_dense_attention_fixture(unittest.TestCase(), case, dtype=torch.float32,
                                                  device="cpu")
    runner._prepare_target_verify_batch(fixture.forward_batch, case, "cpu")
    masks_by_req, full_mask = runner._make_custom_masks(case, topk=topk, device="cpu")
    spec_info = runner._make_spec_verify_input(case, fixture.forward_batch, topk=topk, device="cpu",
                                               spec_kind=spec_kind)
    assert torch.equal(spec_info.custom_mask, full_mask)
    spec_info.custom_mask, masks_by_req = rewrite(fixture, masks_by_req)
    fixture.forward_batch.spec_info = spec_info
    inputs = dense.dense_fixture_inputs(fixture)
    expected = dense.dense_attention_reference_with_custom_mask(
        fixture.reference_module, case, inputs["prefix_hidden"], inputs["input_hidden"], masks_by_req)
    from sglang.srt.model_executor.forward_context import ForwardContext, forward_context

    with torch.no_grad(), forward_context(ForwardContext(attn_backend=fixture.backend)):
        fixture.backend.init_forward_metadata(fixture.forward_batch)
        actual = dense.run_dense_forward(fixture, fixture.forward_batch, inputs)
    torch.testing.assert_close(actual, expected, atol=dense.DENSE_ATOL, rtol=dense.DENSE_RTOL)


def test_ngram_tree_qlen_mask_matches_kit_reference(kit):
    """NGRAM on CPU sends the QLEN layout [bs * q * q]: only the block part, the prefix all visible."""
    case = make_case(kit, "ngram-qlen", (6, 2, 4), 3)

    def to_qlen(fixture, masks_by_req):
        prefixes = case.prefix_lens
        qlen = torch.cat([m[:, p:].reshape(-1) for m, p in zip(masks_by_req, prefixes)])  # [bs * q * q]
        return qlen, masks_by_req

    with torch.no_grad():
        run_with_mask(kit, case, topk=3, spec_kind="ngram", rewrite=to_qlen)


def test_encoder_only_block_sees_the_whole_block(kit):
    """The drafter's block is non-causal (ENCODER_ONLY): every block token sees prefix + whole block,
    whatever custom mask the batch carries."""
    from sglang.srt.layers.radix_attention import AttentionType

    case = make_case(kit, "drafter-block", (7, 0, 3), 8)

    def non_causal(fixture, masks_by_req):
        fixture.actual_module.attn.attn_type = AttentionType.ENCODER_ONLY
        full = [torch.ones_like(m) for m in masks_by_req]
        return None, full

    with torch.no_grad():
        run_with_mask(kit, case, topk=1, spec_kind="dflash", rewrite=non_causal)


def test_stock_torch_native_has_no_target_verify(kit):
    """Why this path exists: unwrapped, stock torch_native fails on a TARGET_VERIFY batch (in the server
    on `extend_prefix_lens is None`; here, where the kit fills them, on the prefix-only `seq_lens`)."""
    from sglang.srt.layers.attention.torch_native_backend import TorchNativeAttnBackend

    hooked = TorchNativeAttnBackend.forward_extend
    assert hasattr(hooked, "__wrapped__"), "our AROUND hook is not installed"
    case = make_case(kit, "stock", (3,), 4)
    TorchNativeAttnBackend.forward_extend = hooked.__wrapped__
    try:
        with torch.no_grad(), pytest.raises((AttributeError, RuntimeError)):
            kit[1].run_dense_spec_verify_case(unittest.TestCase(), case, topk=1, spec_kind="dflash",
                                              dtype=torch.float32, device="cpu")
    finally:
        TorchNativeAttnBackend.forward_extend = hooked
