"""Every SGLang attribute the adapter hooks or calls, pinned with the parameter names we rely on.

SGLang moves fast and our hooks fail quietly: `HookRegistry.apply_hooks` logs and swallows a target
that no longer resolves, and a renamed keyword surfaces only when the code path first runs. This
table lets `dflash-sglang doctor` find both up front. An entry maps a dotted path to the parameter
names we pass or receive (a subset of the real signature; for a dataclass, the fields we read or
set), or to None when we only need the attribute to exist. `tests/unit/test_hooked_api.py` keeps it
in step with the adapter's hook targets and `from sglang... import` lines.
"""

from __future__ import annotations

import inspect
import pkgutil

_SPEC = "sglang.srt.speculative"
_EXEC = "sglang.srt.model_executor"

HOOKED_API: dict[str, tuple[str, ...] | None] = {
    # plugin.py and every install(): the hook machinery itself.
    "sglang.srt.plugins.load_plugins": (),
    "sglang.srt.plugins.hook_registry.HookRegistry.register": ("target", "hook", "hook_type"),
    "sglang.srt.plugins.hook_registry.HookRegistry._hooks": None,
    "sglang.srt.plugins.hook_registry.HookRegistry._patched": None,
    "sglang.srt.plugins.hook_registry.HookType.AROUND": None,
    "sglang.srt.plugins.hook_registry.HookType.BEFORE": None,
    "sglang.srt.plugins.hook_registry.HookType.AFTER": None,
    # takeover.py
    f"{_SPEC}.spec_info.SpeculativeAlgorithm.create_worker": ("self", "server_args"),
    f"{_SPEC}.spec_info.SpeculativeAlgorithm.is_dflash": ("self",),
    f"{_SPEC}.spec_info.SpeculativeAlgorithm.DFLASH": None,
    # step_stats.py
    "sglang.srt.managers.scheduler_components.batch_result_processor.SchedulerBatchResultProcessor"
    "._maybe_collect_customized_info": ("self", "i", "req", "logits_output"),
    "sglang.srt.managers.tokenizer_manager.TokenizerManager._accumulate_request_meta_info":
        ("meta_info", "state", "key", "values"),
    "sglang.srt.managers.schedule_batch.Req.update_spec_correct_drafts_histogram": ("self", "num_correct_drafts"),
    # request_checks.py
    f"{_SPEC}.dflash_utils.validate_dflash_request": ("req", "enable_overlap"),
    "sglang.srt.runtime_context.get_server_args": (),
    # request_features.py, grammar_verify.py, spec_logprobs.py
    "sglang.srt.layers.sampler.apply_custom_logit_processor": ("logits", "sampling_batch_info", "num_tokens_in_batch"),
    "sglang.srt.layers.logprob_processor.compute_spec_logprobs": (
        "batch", "logits_output", "predict", "chain_stride"),
    # SamplingBatchInfo: one entry under sampling.py (a second key here was silently dropped by the dict)
    "sglang.srt.constrained.base_grammar_backend.BaseGrammarObject.accept_token": ("self", "token"),
    "sglang.srt.constrained.base_grammar_backend.BaseGrammarObject.rollback": ("self", "k"),
    "sglang.srt.constrained.base_grammar_backend.BaseGrammarObject.fill_vocab_mask": ("self", "vocab_mask", "idx"),
    "sglang.srt.constrained.base_grammar_backend.BaseGrammarObject.allocate_vocab_mask": (
        "self", "vocab_size", "batch_size", "device"),
    "sglang.srt.constrained.base_grammar_backend.BaseGrammarObject.apply_vocab_mask": ("logits", "vocab_mask"),
    # penalty_order.py
    "sglang.srt.sampling.penaltylib.orchestrator.BatchedPenalizerOrchestrator.__init__": (
        "self", "vocab_size", "batch", "penalizers"),
    # cpu/hybrid_args.py, cpu/gdn_patches.py
    "sglang.srt.arg_groups.mamba_hook._platform_supports_mamba_cache_extra_buffer": (),
    "sglang.srt.arg_groups.model_hook.handle_mamba_radix_cache": ("server_args", "hf_config"),
    "sglang.srt.configs.mamba_utils.mamba2_state_dtype": ("config",),
    "sglang.srt.arg_groups.overrides.declare_resolution": ("server_args", "source"),
    "sglang.srt.layers.attention.linear.kernels.gdn_triton": None,
    "sglang.kernels.ops.attention.fla.fused_norm_gate": None,
    # recurrent_state.py
    "sglang.srt.configs.hybrid_arch.mambaish_config": ("model_config",),
    f"{_SPEC}.spec_utils.commit_mamba_states_after_verify": (
        "target_worker", "batch", "accept_lens", "accept_index", "draft_token_num"),
    # startup.py, cpu/platform_guard.py
    "sglang.srt.arg_groups.speculative_hook.handle_speculative_decoding": ("server_args",),
    "sglang.srt.arg_groups.speculative_hook._handle_dflash": ("server_args",),
    "sglang.srt.arg_groups.speculative_hook.current_platform": None,
    "sglang.srt.arg_groups.model_override_base.resolving_view": ("server_args",),
    "sglang.srt.arg_groups.choices.DRAFT_ATTENTION_BACKEND_CHOICES": None,
    "sglang.srt.arg_groups.choices.add_draft_attention_backend_choices": ("iterable",),
    # legacy_args.py
    "sglang.srt.server_args.prepare_server_args": ("argv",),
    "sglang.srt.server_args.ServerArgs.resolve_once": ("self",),
    "sglang.srt.arg_groups.model_override_base.resolved_view": ("server_args",),
    # cpu/builtin_sampling_verify.py
    f"{_SPEC}.dflash_worker_v2.is_dflash_sampling_verify_available": (),
    f"{_SPEC}.dflash_worker_v2.compute_dflash_sampling_correct_drafts_and_bonus": (
        "candidates", "next_token_logits", "sampling_info"),
    f"{_SPEC}.dflash_utils._DFLASH_SAMPLING_VERIFY_AVAILABLE": None,
    # cpu/qk_norm_rope.py, cpu/input_embeds_dtype.py, cpu/verify_attention.py
    "sglang.srt.models.dflash.DFlashAttention.__init__": ("self", "config", "layer_id"),
    f"{_EXEC}.model_runner.ModelRunner._extend_forward_kwargs": ("self", "forward_batch"),
    "sglang.srt.layers.attention.torch_native_backend.TorchNativeAttnBackend.forward_extend": (
        "self", "q", "k", "v", "layer", "forward_batch", "save_kv_cache"),
    "sglang.srt.mem_cache.memory_pool.KVWriteLoc": ("loc", "swa_loc"),
    "sglang.srt.mem_cache.memory_pool.MHATokenToKVPool.set_kv_buffer": (
        "self", "layer", "loc_info", "cache_k", "cache_v"),
    "sglang.srt.mem_cache.memory_pool.MHATokenToKVPool.get_key_buffer": ("self", "layer_id"),
    "sglang.srt.mem_cache.memory_pool.MHATokenToKVPool.get_value_buffer": ("self", "layer_id"),
    # worker.py
    "sglang.srt.managers.utils.GenerationBatchResult": (
        "logits_output", "next_token_ids", "accept_lens", "new_seq_lens", "next_draft_input",
        "speculative_num_draft_tokens", "can_run_cuda_graph"),
    f"{_EXEC}.forward_batch_info.CaptureHiddenMode.FULL": None,
    f"{_EXEC}.forward_batch_info.CaptureHiddenMode.NULL": None,
    "sglang.srt.models.registry.ModelRegistry.register": ("package_name", "overwrite"),
    "sglang.srt.runtime_context.get_spec": (),
    f"{_SPEC}.base_spec_worker.BaseSpecWorker": (),
    f"{_SPEC}.dflash_info_v2.DFlashDraftInputV2": ("bonus_tokens", "new_seq_lens"),
    f"{_SPEC}.draft_worker_common.build_draft_tp_worker": (
        "server_args", "gpu_id", "nccl_port", "target_model_config", "algo_label"),
    f"{_SPEC}.draft_worker_common.make_draft_input_v2": ("bonus_tokens", "new_seq_lens"),
    "sglang.srt.managers.tp_worker.TpModelWorker.forward_batch_generation": (
        "self", "batch", "forward_batch", "is_verify", "capture_hidden_mode"),
    "sglang.srt.managers.schedule_batch.ScheduleBatch": (
        "forward_mode", "is_extend_in_batch", "prefix_lens", "extend_lens", "out_cache_loc", "seq_lens",
        "seq_lens_cpu", "seq_lens_sum", "req_pool_indices", "spec_info", "sampling_info",
        "reqs", "model_config"),  # plain_pass.py: a plain run's bounds from the requests
    "sglang.srt.managers.schedule_batch.ScheduleBatch.batch_size": ("self",),
    # draft_window.py
    "sglang.srt.mem_cache.memory_pool.ReqToTokenPool": ("size", "max_context_len", "device", "enable_memory_saver"),
    "sglang.srt.runtime_context.get_schedule": (),
    # draft_graphs.py
    f"{_EXEC}.cuda_graph_config.Backend.DISABLED": None,
    "sglang.srt.platforms.current_platform": None,
    "sglang.srt.runtime_context.get_exec": (),
    "sglang.srt.runtime_context.get_parallel": (),
    "sglang.srt.utils.common.get_available_gpu_memory": ("device", "gpu_id"),
    "sglang.srt.managers.tp_worker.TpModelWorker.init_cuda_graphs": ("self", "capture_decode_cuda_graph"),
    # sampling.py; request_features.py, grammar_verify.py, spec_logprobs.py
    "sglang.srt.sampling.sampling_batch_info.SamplingBatchInfo": (
        "temperatures", "top_ps", "top_ks", "min_ps", "is_all_greedy", "need_top_k_sampling", "need_top_p_sampling",
        "need_min_p_sampling", "vocab_size", "grammars", "acc_additive_penalties", "acc_scaling_penalties",
        "logit_bias", "has_custom_logit_processor"),
    # step_models.py
    f"{_EXEC}.forward_batch_info.ForwardBatch": (
        "forward_mode", "batch_size", "input_ids", "req_pool_indices", "seq_lens", "out_cache_loc",
        "seq_lens_sum", "seq_lens_cpu", "positions", "input_embeds", "spec_algorithm", "spec_info",
        "capture_hidden_mode", "global_num_token_non_padded_cpu"),
    f"{_EXEC}.forward_batch_info.ForwardMode.TARGET_VERIFY": None,
    f"{_EXEC}.forward_batch_info.ForwardMode.is_target_verify": ("self",),
    f"{_EXEC}.forward_batch_info.ForwardMode.is_extend": ("self",),
    f"{_EXEC}.forward_batch_info.ForwardMode.is_idle": ("self",),
    f"{_EXEC}.model_runner.ModelRunner.forward": ("self", "forward_batch"),
    f"{_SPEC}.dflash_info.DFlashVerifyInput": (
        "draft_token", "positions", "draft_token_num", "custom_mask", "capture_hidden_mode"),
    f"{_SPEC}.dflash_info.DFlashVerifyInput.prepare_for_verify": ("self", "batch", "target_worker"),
    # models/dflash_drafter.py
    "sglang.srt.configs.draft_parallel.DraftParallelSpec": ("tp_execution",),
    "sglang.srt.configs.draft_parallel.DraftTPExecution.SINGLE_GROUP": None,
    "sglang.srt.layers.logits_processor.LogitsProcessorOutput": (
        "next_token_logits", "hidden_states", "customized_info"),
    "sglang.srt.layers.radix_attention.RadixAttention": (
        "num_heads", "head_dim", "scaling", "num_kv_heads", "layer_id", "sliding_window_size", "attn_type"),
    "sglang.srt.layers.radix_attention.AttentionType.DECODER": None,
    "sglang.srt.layers.radix_attention.AttentionType.ENCODER_ONLY": None,
    # tree_models.py: cached prefixes give way to the tree's temporary slots
    "sglang.srt.mem_cache.common.evict_from_tree_cache": ("tree_cache", "num_tokens"),
    # tree_args.py
    "sglang.srt.server_args.ServerArgs.add_cli_args": ("parser",),
    "sglang.srt.server_args.ServerArgs.from_cli_args": ("args",),
    # tensor_parallel.py
    "sglang.srt.configs.draft_parallel.DraftParallelLayout": None,
    f"{_SPEC}.spec_utils.draft_tp_context": ("layout",),
    f"{_SPEC}.spec_utils.draft_pp_context": (),
    "sglang.srt.distributed.parallel_state.get_attn_tp_group": (),
    "sglang.srt.distributed.parallel_state.get_self_pp_group": (),
    "sglang.srt.distributed.parallel_state.get_tp_group": (),
}


def _parameters(obj) -> list[str] | None:
    """Parameter names of a callable (a class: its constructor's); None when it has no signature."""
    try:
        return list(inspect.signature(obj).parameters)
    except (TypeError, ValueError):
        return None


def problem(path: str, expected: tuple[str, ...] | None) -> str | None:
    """One line naming what is wrong with `path`, or None when it matches."""
    try:
        obj = pkgutil.resolve_name(path)
    except (ImportError, AttributeError) as err:
        return f"{path}: expected it to exist, got {type(err).__name__}: {err}"
    if expected is None:
        return None
    got = _parameters(obj)
    if got is None:
        return f"{path}: expected a callable with parameters {list(expected)}, got a {type(obj).__name__}"
    missing = [name for name in expected if name not in got]
    if missing:
        return f"{path}: expected parameters {list(expected)}, got {got} (missing {missing})"
    return None


def problems(table: dict[str, tuple[str, ...] | None] = HOOKED_API) -> list[str]:
    """Every mismatch between `table` and the SGLang installed here, in table order."""
    found = (problem(path, expected) for path, expected in table.items())
    return [line for line in found if line is not None]


def our_hooks() -> tuple[list[str], list[str]]:
    """Load SGLang's plugins as its launcher does: (targets we registered, those left unpatched, which
    `apply_hooks` logged and skipped)."""
    from sglang.srt.plugins import load_plugins
    from sglang.srt.plugins.hook_registry import HookRegistry

    load_plugins()
    ours = sorted(target for target, hooks in HookRegistry._hooks.items()
                  if any(getattr(hook, "__module__", "").startswith("dflash_sglang") for _, hook, _ in hooks))
    return ours, [target for target in ours if target not in HookRegistry._patched]
