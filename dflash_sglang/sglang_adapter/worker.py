"""Our DFLASH worker inside SGLang's scheduler (spec-v2 schema, synchronous or overlapped).

The scheduler calls `forward_batch_generation` once per batch:
- EXTEND (prefill): the target runs with its DFlash feature capture on, samples the first token,
  and the prompt's target features become the drafter's context K/V at the prompt's slots.
- DECODE: one speculative step (`spec.step.speculative_step`) per batch.
- IDLE: nothing to run.
It returns a GenerationBatchResult whose rows are each request's accepted drafts and bonus token.
"""

from __future__ import annotations

from functools import partial

import torch

from sglang.srt.managers.utils import GenerationBatchResult
from sglang.srt.model_executor.forward_batch_info import CaptureHiddenMode
from sglang.srt.models.registry import ModelRegistry
from sglang.srt.runtime_context import get_spec
from sglang.srt.speculative.base_spec_worker import BaseSpecWorker
from sglang.srt.speculative.dflash_info_v2 import DFlashDraftInputV2
from sglang.srt.speculative.draft_worker_common import build_draft_tp_worker, make_draft_input_v2
from sglang.srt.speculative.spec_utils import draft_tp_context

from dflash_sglang import __version__
from dflash_sglang.config import DFlashConfig
from dflash_sglang.log import get_logger
from dflash_sglang.sglang_adapter import draft_window
from dflash_sglang.sglang_adapter.deferred_context import batch_requests, deferred_context_for
from dflash_sglang.sglang_adapter.draft_graphs import init_draft_cuda_graphs, read_settings
from dflash_sglang.sglang_adapter.drafter_config import drafter_config_scope
from dflash_sglang.sglang_adapter.plain_pass import plain_pass_mode, plain_run_length
from dflash_sglang.sglang_adapter.recurrent_state import RecurrentStateCommit
from dflash_sglang.sglang_adapter.request_features import logit_features, remember_step
from dflash_sglang.sglang_adapter.sampling import sampling_params, sampling_rule
from dflash_sglang.sglang_adapter.serving_config import serving_config
from dflash_sglang.sglang_adapter.spec_logprobs import write_spec_logprobs
from dflash_sglang.sglang_adapter import tree_route
from dflash_sglang.sglang_adapter.step_models import Runners
from dflash_sglang.sglang_adapter.budget_auto import auto_budget_for
from dflash_sglang.sglang_adapter.startup_hint import startup_stage
from dflash_sglang.sglang_adapter.step_stats import ACCEPTANCE_KEY
from dflash_sglang.sglang_adapter.tensor_parallel import (
    RankAgreement, draft_build_scope, full_vocab_lm_head, replicated_draft_layout,
)
from dflash_sglang.sglang_adapter.tree_args import tree_budget_of
from dflash_sglang.sglang_adapter.verify_policy import AutoVerify, FixedVerify, VerifyPolicy
from dflash_sglang.spec.step import StepInput

CONSTRUCTED_LINE = ("dflash-sglang %s DFLASH worker: block %d, target layers %s, mask token %d, drafter %s on %s, "
                    "%s")


class DFlashWorker(BaseSpecWorker):
    @startup_stage("construction")
    def __init__(self, server_args, gpu_id: int, nccl_port: int, target_worker) -> None:
        super().__init__()
        self.server_args = server_args
        self._target_worker = target_worker
        self.model_runner = target_worker.model_runner
        self.device = target_worker.device
        self.block_size = int(get_spec().speculative_num_draft_tokens)
        self.config = _parse_config(target_worker, self.block_size)
        self.sampling_rule = sampling_rule()
        ModelRegistry.register("dflash_sglang.sglang_adapter.models", overwrite=True)
        # Read by the scheduler too: it sizes the target's pool budget for the drafter's KV (tensor_parallel.py).
        self.draft_parallel_layout = replicated_draft_layout()
        with drafter_config_scope(self.config), draft_build_scope(self.draft_parallel_layout):
            bundle = build_draft_tp_worker(
                server_args=server_args, gpu_id=gpu_id, nccl_port=nccl_port,
                target_model_config=target_worker.model_runner.model_config, algo_label="DFLASH",
            )
        self._draft_worker = bundle.draft_worker
        self.draft_runner = bundle.draft_model_runner
        self.draft_window = draft_window.from_server_args(self.block_size)
        self.runners = _resolve_runners(target_worker, bundle, self.config, self.draft_window,
                                        self.draft_parallel_layout)
        get_logger().info(CONSTRUCTED_LINE, __version__, self.block_size, list(self.config.target_layer_ids),
                          self.config.mask_token_id, self.config.architecture, self.device,
                          draft_window.describe(self.draft_window))

    def alloc_memory_pool(self, memory_pool_config=None, req_to_token_pool=None, token_to_kv_pool_allocator=None):
        """With a draft window the drafter gets its own compact req-to-token table (draft_window.py)."""
        draft_pool = req_to_token_pool
        if self.draft_window is not None and req_to_token_pool is not None:
            draft_pool = self.draft_window.make_pool(req_to_token_pool)
        with draft_tp_context(self.draft_parallel_layout):  # under TP: a pool with all the drafter's KV heads
            self._draft_worker.alloc_memory_pool(memory_pool_config=memory_pool_config, req_to_token_pool=draft_pool,
                                                 token_to_kv_pool_allocator=token_to_kv_pool_allocator)
        self.req_to_token_pool = req_to_token_pool
        self.token_to_kv_pool_allocator = token_to_kv_pool_allocator

    @startup_stage("attention backends")
    def init_attention_backends(self) -> None:
        with draft_build_scope(self.draft_parallel_layout):
            super().init_attention_backends()
        # SGLang sets up the target's feature capture with its attention backends: check it now.
        _check_feature_capture(self.model_runner.model, self.config)
        self.runners.commit_recurrent_state = RecurrentStateCommit.for_target(self._target_worker, self.block_size)
        self.verify = self._verify_policy()

    def _verify_policy(self) -> VerifyPolicy:
        """--speculative-dflash-tree-budget: `auto` picks a width per step (budget_auto.py); otherwise the
        chain, or a fixed tree where this target can verify one (tree_route.py)."""
        auto = auto_budget_for(self.server_args, self.block_size, self.model_runner.model_config)
        if auto is not None:
            return AutoVerify(auto)
        budget = tree_budget_of(self.server_args, self.block_size)
        return FixedVerify(tree_route.for_target(budget, self.model_runner.model_config, self.block_size,
                                                 self.server_args))

    @startup_stage("drafter CUDA-graph capture")
    def init_cuda_graphs(self) -> None:
        """The drafter's block pass per batch size, as SGLang's builtin does (draft_graphs.py); the
        target's graphs (decode and TARGET_VERIFY) are captured by SGLang itself."""
        settings = read_settings(str(self.device), self._target_worker.gpu_id)
        with draft_build_scope(self.draft_parallel_layout):
            self.draft_graphs = init_draft_cuda_graphs(self._draft_worker, self.draft_runner, settings)
        if isinstance(self.verify, AutoVerify):  # after the target's own graphs, which decide it
            self.runners.plain_pass = plain_pass_mode(self.model_runner)
            self.runners.plain_run = plain_run_length(self.runners.plain_pass, self.block_size)
            self.runners.deferred_context = deferred_context_for(
                partial(self.runners.draft_model.write_context_kv, self.draft_runner.token_to_kv_pool))

    @property
    def spec_v2_attn_backends(self) -> tuple:
        return (self.model_runner.attn_backend, self.draft_runner.attn_backend)

    def forward_batch_generation(self, batch, on_publish=None, grammar_barrier=None, pp_proxy_tensors=None):
        prefill = batch.forward_mode.is_extend() or batch.is_extend_in_batch
        idle = not prefill and batch.forward_mode.is_idle()
        if self.runners.deferred_context is not None:  # plain steps' context, before anyone reuses its slots
            self.runners.deferred_context.before_step(None if prefill or idle else batch_requests(batch))
        if prefill:
            result = self._prefill(batch)
        elif idle:
            result = self._idle()
        else:
            result = self._decode(batch, grammar_barrier)
        if on_publish is not None:
            on_publish(result.new_seq_lens)
        return result

    def _prefill(self, batch) -> GenerationBatchResult:
        result = self._target_worker.forward_batch_generation(batch, capture_hidden_mode=CaptureHiddenMode.FULL)
        self.runners.ranks.tokens(result.next_token_ids)  # [bs] sampled first tokens: rank 0's on every rank
        features = result.logits_output.hidden_states  # [num_tokens, n_feat*hidden]
        positions = _extend_positions(batch.prefix_lens, batch.extend_lens, features.device)  # [num_tokens]
        self.runners.draft_model.write_context_kv(
            self.draft_runner.token_to_kv_pool, features, positions, batch.out_cache_loc.to(torch.int64))
        result.logits_output.hidden_states = None
        result.new_seq_lens = batch.seq_lens
        result.next_draft_input = make_draft_input_v2(bonus_tokens=result.next_token_ids, new_seq_lens=batch.seq_lens)
        return result

    def _decode(self, batch, grammar_barrier=None) -> GenerationBatchResult:
        draft_input = batch.spec_info
        if grammar_barrier is not None:  # overlap: grammars advanced over the previous, unprocessed result
            grammar_barrier()
        assert isinstance(draft_input, DFlashDraftInputV2), type(draft_input)
        step = StepInput(
            anchors=draft_input.bonus_tokens.to(torch.int64),  # [bs]
            seq_lens=batch.seq_lens.to(torch.int64),  # [bs]
            sampling=sampling_params(batch.sampling_info, batch.batch_size()),
            block_size=self.block_size,
            mask_token_id=self.config.mask_token_id,
            rule=self.sampling_rule,
            features=logit_features(batch, self.block_size),  # None unless a request needs them
        )
        models, acceptance = self.verify.step(self.runners, batch, step)
        lengths = acceptance.acceptance_lengths  # [bs] tokens committed per request
        if step.features is not None:
            remember_step(batch.reqs, acceptance.out_tokens, lengths)
        new_seq_lens = step.seq_lens + lengths
        logits_output = models.logits_output
        logits_output.hidden_states = None
        logits_output.customized_info = {ACCEPTANCE_KEY: lengths.tolist(), **self.verify.step_info(len(lengths))}
        if batch.return_logprob:
            write_spec_logprobs(batch, logits_output, models.target_logits, acceptance.out_tokens)
        return GenerationBatchResult(
            logits_output=logits_output,
            next_token_ids=acceptance.out_tokens.flatten(),  # [bs*blk]
            accept_lens=lengths.to(torch.int32),
            new_seq_lens=new_seq_lens,
            next_draft_input=make_draft_input_v2(bonus_tokens=acceptance.bonus, new_seq_lens=new_seq_lens),
            speculative_num_draft_tokens=self.block_size,
            can_run_cuda_graph=models.verify_ran_graph,  # what SGLang's metrics report, as for the builtin
        )

    def _idle(self) -> GenerationBatchResult:
        empty = torch.empty((0,), dtype=torch.int64, device=self.device)
        return GenerationBatchResult(
            logits_output=None, next_token_ids=empty, accept_lens=empty.to(torch.int32), new_seq_lens=empty,
            next_draft_input=make_draft_input_v2(bonus_tokens=empty, new_seq_lens=empty),
            speculative_num_draft_tokens=self.block_size, can_run_cuda_graph=False,
        )


def _parse_config(target_worker, block_size: int) -> DFlashConfig:
    runner = target_worker.model_runner
    drafter_hf = runner.spec_aux_config.draft_model_config.hf_config
    return serving_config(drafter_hf.to_dict(), runner.model_config.hf_config.to_dict(), block_size,
                          getattr(target_worker, "tokenizer", None))


def _check_feature_capture(target_model, config: DFlashConfig) -> None:
    """SGLang configures the target's capture from its own reading of the drafter config; the drafter's
    `fc` expects ours. SGLang captures a layer's output as the next layer's input, hence the +1."""
    inner = getattr(target_model, "model", target_model)
    captured = list(getattr(inner, "layers_to_capture", []) or [])
    expected = [i + 1 for i in config.target_layer_ids]
    if captured != expected:
        raise ValueError(f"target feature capture: expected layer inputs {expected} (target_layer_ids "
                         f"{list(config.target_layer_ids)}), got {captured} from SGLang's configuration")


def _resolve_runners(target_worker, bundle, config: DFlashConfig, window, draft_layout) -> Runners:
    target_model = target_worker.model_runner.model
    return Runners(
        target_worker=target_worker,
        draft_runner=bundle.draft_model_runner,
        draft_model=bundle.draft_model,
        embed=target_model.get_input_embeddings(),  # vocab-parallel, all-reduced: full rows on every rank
        lm_head_weight=full_vocab_lm_head(target_model.lm_head),  # gathered once under TP
        input_embedding_scale=config.input_embedding_scale,
        draft_window=window,
        draft_layout=draft_layout,
        ranks=RankAgreement.for_target(),
    )


def _extend_positions(prefix_lens: list[int], extend_lens: list[int], device) -> torch.Tensor:
    """[num_tokens] absolute positions of the extended tokens, request after request."""
    return torch.cat([torch.arange(p, p + n, device=device) for p, n in zip(prefix_lens, extend_lens)])
