"""`SGLangStepModels` for steps whose verify width changes (`--speculative-dflash-tree-budget auto`).

The scheduler reserves a whole block of KV slots per request every step, whatever the width. A step
of width W verifies into the first W of them and commits from those; the rest stay unused, exactly as
the slots of rejected drafts do (the scheduler advances `seq_lens` by the acceptance lengths only).
A plain decoding step (W = 1) skips the draft pass but still needs the block's slots: `reserve_block`;
its target pass is SGLang's DECODE forward where that is safe (plain_pass.py), and a plain run's k-th
pass takes the block's k-th slot (`verify_plain`, spec/plain_run.py).
Widths past the block are trees: `SGLangTreeModels`' temporary slots, verify and commit (tree_models.py).
"""

from __future__ import annotations

import torch

from dflash_sglang.sglang_adapter.plain_pass import DECODE, decode_pass
from dflash_sglang.sglang_adapter.step_models import block_slots
from dflash_sglang.sglang_adapter.tree_models import SGLangTreeModels
from dflash_sglang.spec.step import TargetOutput
from dflash_sglang.spec.types import Candidates, DraftBlock


class BudgetStepModels(SGLangTreeModels):
    reserved: torch.Tensor | None = None  # [bs, blk] the block's slots, set by reserve_block()

    def reserve_block(self, block: DraftBlock) -> None:
        """What `draft` prepares for `verify` and `commit`, without running the drafter."""
        req_to_token = self.r.target_worker.model_runner.req_to_token_pool.req_to_token
        self.reserved = block_slots(req_to_token, self.batch.req_pool_indices, block.seq_lens, block.block_size)
        self.slots = self.reserved
        self.seq_lens_cpu = block.seq_lens.cpu()

    def verify(self, candidates: Candidates) -> TargetOutput:
        assert self.slots is not None, "draft() or reserve_block() first"
        width = candidates.tokens.shape[1]
        self.slots = self.slots[:, :width]  # [bs, blk] -> [bs, width]: verify and commit use these
        if width == 1 and self.r.plain_pass == DECODE:  # a drafted step may verify the anchor alone too
            return self._decode_pass(candidates, column=0)
        return super().verify(candidates)

    def verify_plain(self, candidates: Candidates, column: int) -> TargetOutput:
        """The anchor alone at the block's `column` (spec/plain_run.py). A TARGET_VERIFY pass reads the
        prefix from the scheduler's seq_lens, so only SGLang's DECODE pass runs past column 0."""
        assert self.reserved is not None, "reserve_block() first"
        self.slots = self.reserved[:, column : column + 1]  # [bs, 1] verify and commit use these
        if self.r.plain_pass != DECODE:
            assert column == 0, "plain runs need the DECODE pass (plain_pass.plain_run_length)"
            return super().verify(candidates)
        return self._decode_pass(candidates, column)

    def _decode_pass(self, candidates: Candidates, column: int) -> TargetOutput:
        out = decode_pass(self.r.target_worker, self.batch, candidates.tokens[:, 0], self.slots[:, 0],
                          self.seq_lens_cpu, column)
        self.logits_output, self.verify_ran_graph = out.logits_output, out.ran_graph
        return TargetOutput(logits=out.logits, target_features=out.target_features)
