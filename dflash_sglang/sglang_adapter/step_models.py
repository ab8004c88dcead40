"""`StepModels` over SGLang: the drafter's block pass on the draft runner, the target's verify pass on
the target runner, and the commit of target features into the draft KV pool.

One instance serves one decode batch. Both KV pools share slot ids: the block's slots are the ones
the scheduler reserved past each request's committed length (`req_to_token[req, seq_len:+blk]`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from sglang.srt.configs.draft_parallel import DraftParallelLayout
from sglang.srt.model_executor.forward_batch_info import CaptureHiddenMode, ForwardBatch, ForwardMode
from sglang.srt.speculative.dflash_info import DFlashVerifyInput
from sglang.srt.speculative.spec_info import SpeculativeAlgorithm
from sglang.srt.speculative.spec_utils import draft_tp_context

from dflash_sglang.sglang_adapter.deferred_context import DeferredContext, batch_requests
from dflash_sglang.sglang_adapter.draft_window import DraftWindow
from dflash_sglang.sglang_adapter.plain_pass import VERIFY
from dflash_sglang.sglang_adapter.recurrent_state import no_recurrent_state
from dflash_sglang.sglang_adapter.tensor_parallel import RankAgreement
from dflash_sglang.spec.step import TargetOutput
from dflash_sglang.spec.types import Acceptance, Candidates, DraftBlock


@dataclass
class Runners:
    """What every step needs from the worker, resolved once at start-up."""

    target_worker: object  # TpModelWorker
    draft_runner: object  # ModelRunner of the drafter
    draft_model: object  # our DFlashDraftModel
    embed: torch.nn.Module  # the target's input embedding
    lm_head_weight: torch.Tensor  # [vocab, hidden] the target's output head
    input_embedding_scale: float
    draft_window: DraftWindow | None = None  # --speculative-draft-window-size; None: the whole context
    # hybrid targets: the recurrent state after exactly the committed tokens (recurrent_state.py)
    commit_recurrent_state: Callable[[object, torch.Tensor], None] = no_recurrent_state
    # under TP (tensor_parallel.py): the replicated drafter's own group, and rank 0's decisions on every rank
    draft_layout: DraftParallelLayout = DraftParallelLayout(tp_group=None, attn_tp_size=1)
    ranks: RankAgreement | None = None
    plain_pass: str = VERIFY  # `auto`'s width-1 steps: SGLang's DECODE or TARGET_VERIFY forward (plain_pass.py)
    plain_run: int = 1  # `auto`'s width-1 steps: target passes per scheduler step (spec/plain_run.py)
    deferred_context: DeferredContext | None = None  # `auto`'s width-1 steps: their drafter context, written late


def block_slots(req_to_token: torch.Tensor, req_pool_indices: torch.Tensor, seq_lens: torch.Tensor,
                block_size: int) -> torch.Tensor:
    """[bs, blk] KV slots of each request's block, reserved by the scheduler past seq_len."""
    columns = seq_lens[:, None] + torch.arange(block_size, device=seq_lens.device)[None, :]  # [bs, blk]
    return req_to_token[req_pool_indices[:, None], columns].to(torch.int64)


class SGLangStepModels:
    def __init__(self, runners: Runners, batch) -> None:
        self.r = runners
        self.batch = batch  # ScheduleBatch in DECODE mode
        self.slots: torch.Tensor | None = None  # [bs, blk], set by draft()
        self.seq_lens_cpu: torch.Tensor | None = None  # [bs] committed lengths on the host, set by draft()
        self.logits_output = None  # the target's verify output, set by verify(); the worker returns it
        self.verify_ran_graph = False  # whether SGLang replayed a TARGET_VERIFY graph for it, set by verify()
        self.target_logits = None  # [bs, blk, vocab] processed (what was sampled from), set by commit(): logprobs

    def draft(self, block: DraftBlock) -> Candidates:
        if self.r.deferred_context is not None:
            self.r.deferred_context.flush()  # the block attends to every committed token's context
        bs, blk = block.block_ids.shape
        req_to_token = self.r.target_worker.model_runner.req_to_token_pool.req_to_token
        self.slots = block_slots(req_to_token, self.batch.req_pool_indices, block.seq_lens, blk)
        self.seq_lens_cpu = block.seq_lens.cpu()  # one host copy per step, for both forward batches
        embeds = self.r.embed(block.block_ids.flatten()) * self.r.input_embedding_scale  # [bs*blk, hidden]
        forward_batch = self._draft_forward_batch(block, embeds)
        with torch.inference_mode(), draft_tp_context(self.r.draft_layout):
            out = self.r.draft_runner.forward(forward_batch).logits_output
        hidden = out.hidden_states.view(bs, blk, -1)  # [bs, blk, hidden]
        drafts, logits = self.r.draft_model.propose_with_logits(
            hidden, block.block_ids[:, 0], self.r.lm_head_weight)  # [bs, blk-1], [bs, blk-1, vocab]
        tokens = torch.cat([block.block_ids[:, :1], drafts.to(block.block_ids.dtype)], dim=1)  # [bs, blk]
        vocab = self.r.target_worker.model_runner.model_config.vocab_size  # lm_head rows may be padded past it
        return Candidates(tokens=tokens, positions=block.positions, draft_logits=logits[..., :vocab])

    def _draft_forward_batch(self, block: DraftBlock, embeds: torch.Tensor) -> ForwardBatch:
        bs, blk = block.block_ids.shape
        seq_lens, seq_lens_cpu = self._draft_seq_lens(block)
        forward_batch = ForwardBatch(
            forward_mode=ForwardMode.TARGET_VERIFY,
            batch_size=bs,
            input_ids=block.block_ids.flatten(),
            req_pool_indices=self.batch.req_pool_indices,
            seq_lens=seq_lens,
            out_cache_loc=self.slots.flatten(),
            seq_lens_sum=int(seq_lens_cpu.sum()),
            seq_lens_cpu=seq_lens_cpu,
            positions=block.positions.flatten(),
            input_embeds=embeds,
            spec_algorithm=SpeculativeAlgorithm.DFLASH,
            spec_info=DFlashVerifyInput(
                draft_token=block.block_ids.flatten(), positions=block.positions.flatten(),
                draft_token_num=blk, capture_hidden_mode=CaptureHiddenMode.NULL,
            ),
            capture_hidden_mode=CaptureHiddenMode.NULL,
            global_num_token_non_padded_cpu=bs * blk,
        )
        self.r.draft_runner.kv_index_translator.bind_own_plan(forward_batch)
        return forward_batch

    def _draft_seq_lens(self, block: DraftBlock) -> tuple[torch.Tensor, torch.Tensor]:
        """[bs] context tokens the draft pass reads (device, host): all, or the window (draft_window.py)."""
        window = self.r.draft_window
        if window is None:
            return block.seq_lens, self.seq_lens_cpu
        return window.compact(self.r.draft_runner.req_to_token_pool.req_to_token,
                              self.r.target_worker.model_runner.req_to_token_pool.req_to_token,
                              self.batch.req_pool_indices, block.seq_lens, self.seq_lens_cpu)

    def verify(self, candidates: Candidates) -> TargetOutput:
        if self.r.ranks is not None:
            self.r.ranks.tokens(candidates.tokens)  # the target's embedding all-reduce needs one input on all ranks
        return self.target_pass(candidates.tokens, candidates.positions, self.slots, custom_mask=None)

    def target_pass(self, tokens: torch.Tensor, positions: torch.Tensor, slots: torch.Tensor,
                    custom_mask: torch.Tensor | None) -> TargetOutput:
        """The target's verify forward over n tokens per request (a block, or a tree with its mask)."""
        bs, n = tokens.shape  # tokens, positions, slots: [bs, n]
        verify_input = DFlashVerifyInput(
            draft_token=tokens.flatten(), positions=positions.flatten(), draft_token_num=n,
            custom_mask=custom_mask, capture_hidden_mode=CaptureHiddenMode.FULL,
        )
        batch = self.batch
        batch.out_cache_loc = slots.flatten()
        saved = batch.seq_lens_cpu, batch.seq_lens_sum
        batch.seq_lens_cpu = self.seq_lens_cpu + n  # host bound on what attention reads: prefix + verified tokens
        batch.seq_lens_sum = int(batch.seq_lens_cpu.sum())
        try:
            forward_batch, _ = verify_input.prepare_for_verify(batch, self.r.target_worker)
        finally:
            batch.seq_lens_cpu, batch.seq_lens_sum = saved
        out = self.r.target_worker.forward_batch_generation(batch=None, forward_batch=forward_batch, is_verify=True)
        self.logits_output = out.logits_output
        self.verify_ran_graph = bool(out.can_run_cuda_graph)
        logits = out.logits_output.next_token_logits.view(bs, n, -1)  # [bs, n, vocab]
        features = out.logits_output.hidden_states.view(bs, n, -1)  # [bs, n, n_feat*hidden]
        return TargetOutput(logits=logits, target_features=features)

    def commit(self, candidates: Candidates, acceptance: Acceptance, target: TargetOutput) -> None:
        """Target KV: the committed prefix of the block is valid once seq_lens advance (the scheduler
        does that from the acceptance lengths). Draft KV: write it here from the target features.
        Recurrent target layers: their state after the committed tokens replaces the live state."""
        if self.r.ranks is not None:
            self.r.ranks.acceptance(acceptance)  # in place: the worker returns rank 0's decision on every rank
        self.target_logits = target.logits
        if candidates.tokens.shape[1] == 1 and self.r.deferred_context is not None:
            # plain decoding commits every row's anchor; written when a draft needs it, so the features are
            # copied out of a buffer the next forward may reuse
            self.r.deferred_context.defer(batch_requests(self.batch), target.target_features[:, 0].clone(),
                                          candidates.positions[:, 0], self.slots[:, 0])
        else:
            self.r.draft_model.write_context_kv(self.r.draft_runner.token_to_kv_pool, *_committed(
                candidates, acceptance, target, self.slots))
        self.r.commit_recurrent_state(self.batch, acceptance.acceptance_lengths)


def _committed(candidates: Candidates, acceptance: Acceptance, target: TargetOutput,
               slots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The committed tokens' target features [n, n_feat*hidden], positions [n] and slots [n]: each row's
    anchor and accepted drafts."""
    columns = torch.arange(candidates.tokens.shape[1], device=candidates.tokens.device)[None, :]  # [1, blk]
    keep = columns < acceptance.acceptance_lengths[:, None]  # [bs, blk]
    return target.target_features[keep], candidates.positions[keep], slots[keep]
