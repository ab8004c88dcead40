"""`TreeStepModels` over SGLang: the chain's draft pass, then the target verifies each request's tree
in one TARGET_VERIFY pass through SGLang's custom-mask path, and the commit moves the accepted path.

KV slots: the scheduler reserves only blk slots per request past seq_len, and a tree has n nodes, so
every node gets a temporary slot from the shared KV allocator (`reserve`, before the draft pass, so a
full pool can still fall back to the chain; cached prefixes are evicted for it first). After the walk
the path's target K/V moves to the request's own slots seq_len.. (the pool's `move_kv_cache`, every
layer), the drafter's context K/V is written there from the path's target features, and every
temporary slot is freed.

The mask is SGLang's full custom-mask layout, as EAGLE's tree verify passes it: per request, n rows
of (seq_len + n) booleans, True = may attend; the committed prefix, then the node's ancestors and itself.
"""

from __future__ import annotations

import torch

from sglang.srt.mem_cache.common import evict_from_tree_cache

from dflash_sglang.sglang_adapter.step_models import SGLangStepModels
from dflash_sglang.spec.step import TargetOutput
from dflash_sglang.spec.tree_commit import commit_plan
from dflash_sglang.spec.tree_types import DraftTree, TreeAcceptance


def full_custom_mask(ancestors: torch.Tensor, seq_lens: torch.Tensor) -> torch.Tensor:
    """ancestors [bs, n, n], seq_lens [bs] -> [sum_b n * (seq_len_b + n)] bool, request-major rows."""
    bs, n, _ = ancestors.shape
    width = seq_lens + n  # [bs] keys per row
    starts = torch.cumsum(n * width, 0) - n * width  # [bs] where each request's rows begin
    mask = torch.ones(int((n * width).sum()), dtype=torch.bool, device=ancestors.device)
    rows = torch.arange(n, device=ancestors.device)
    # element (b, i, j) of the tree part sits at start_b + i * width_b + seq_len_b + j
    index = (starts[:, None, None] + rows[None, :, None] * width[:, None, None]
             + seq_lens[:, None, None] + rows[None, None, :])  # [bs, n, n]
    mask[index.flatten()] = ancestors.flatten()
    return mask


class SGLangTreeModels(SGLangStepModels):
    def __init__(self, runners, batch) -> None:
        super().__init__(runners, batch)
        self.node_slots: torch.Tensor | None = None  # [bs, n] temporary KV slots, set by reserve()

    @property
    def _allocator(self):
        return self.r.target_worker.model_runner.token_to_kv_pool_allocator

    def reserve(self, num_nodes: int) -> bool:
        """Temporary slots for every node of every request; False (nothing taken) when the pool is short.
        Cached prefixes give way first, as they do for SGLang's own decode slots: the radix cache keeps every
        finished request's K/V until the pool is needed, and without eviction a warm server's pool looked full
        to the tree (16 HumanEval prompts x 96 tokens, a few rounds: c=8 steps fell back to the chain and tree
        16 reached tau 2.03 at T 0.7 against 2.19 at c=1, 2026-12-02)."""
        bs = self.batch.batch_size()
        evict_from_tree_cache(self.batch.tree_cache, bs * num_nodes)
        slots = self._allocator.alloc(bs * num_nodes)
        if slots is None:
            return False
        self.node_slots = slots.to(torch.int64).view(bs, num_nodes)
        return True

    def release(self) -> None:
        if self.node_slots is not None:
            self._allocator.free(self.node_slots.flatten())
            self.node_slots = None

    def verify_tree(self, tree: DraftTree) -> TargetOutput:
        bs, n = tree.tokens.shape
        assert self.node_slots is not None and self.node_slots.shape == (bs, n), "reserve() first"
        seq_lens = tree.positions[:, 0]  # [bs] the root sits at seq_len
        return self.target_pass(tree.tokens, tree.positions, self.node_slots,
                                custom_mask=full_custom_mask(tree.ancestors, seq_lens))

    def commit_tree(self, tree: DraftTree, walked: TreeAcceptance, target: TargetOutput) -> None:
        plan = commit_plan(walked, self.node_slots, self.slots, tree.positions[:, 0])
        self.r.target_worker.model_runner.token_to_kv_pool.move_kv_cache(plan.dst_slots, plan.src_slots)
        self.r.draft_model.write_context_kv(
            self.r.draft_runner.token_to_kv_pool,
            target.target_features.flatten(0, 1)[plan.path_nodes],  # [m, n_feat*hidden]
            plan.positions,  # [m]
            plan.dst_slots,  # [m]
        )
        self.release()
