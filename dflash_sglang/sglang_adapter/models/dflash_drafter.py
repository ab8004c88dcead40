"""The drafter as an SGLang model: our plain-torch `Drafter` with SGLang's `RadixAttention` as the
attention core, so SGLang's attention backends, KV pool and graph runners apply.

Two entry points, both over the draft KV pool (same slot ids as the target's):
- `forward`: the block pass. Run by the draft model runner in TARGET_VERIFY mode; each layer's block
  K/V go to the block's slots and its queries attend to the context K/V at req_to_token[:seq_len]
  plus the whole block (ENCODER_ONLY: non-causal), or causally within a window for sliding layers.
- `write_context_kv`: KV injection. Target features of committed tokens become every layer's
  context K/V at those tokens' slots.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

import torch
from torch import nn

from sglang.srt.configs.draft_parallel import DraftParallelSpec, DraftTPExecution
from sglang.srt.layers.logits_processor import LogitsProcessorOutput
from sglang.srt.layers.radix_attention import AttentionType, RadixAttention
from sglang.srt.model_executor.forward_batch_info import ForwardBatch

from dflash_sglang.config import LayerAttention
from dflash_sglang.drafter.finite import nonfinite_parameters
from dflash_sglang.drafter.model import Drafter
from dflash_sglang.drafter.weights import load_state
from dflash_sglang.log import get_logger
from dflash_sglang.sglang_adapter.drafter_config import current_drafter_config

NONFINITE_WEIGHTS_LINE = ("the draft checkpoint has NaN or Inf in %d tensors (%s): its drafts will mostly be "
                          "rejected; the target still decides every token, so the output is unchanged but slower")


def radix_attention(kind: LayerAttention, layer_id: int, config) -> RadixAttention:
    """SGLang's window counts the keys *behind* the query: HF window w -> w - 1."""
    return RadixAttention(
        num_heads=config.num_heads,
        head_dim=config.head_dim,
        scaling=config.head_dim**-0.5,
        num_kv_heads=config.num_kv_heads,
        layer_id=layer_id,
        sliding_window_size=-1 if kind.window is None else kind.window - 1,
        attn_type=AttentionType.DECODER if kind.causal else AttentionType.ENCODER_ONLY,
    )


class DFlashDraftModel(nn.Module):
    draft_parallel_spec = DraftParallelSpec(tp_execution=DraftTPExecution.SINGLE_GROUP)

    def __init__(self, config, quant_config=None, prefix: str = "") -> None:
        super().__init__()
        self.config = config  # the HF config SGLang passed; ours is `dflash_config`
        self.dflash_config = current_drafter_config()
        self.drafter = Drafter(self.dflash_config)
        self.attn = nn.ModuleList(
            radix_attention(kind, i, self.dflash_config) for i, kind in enumerate(self.dflash_config.layer_attention)
        )

    @torch.no_grad()
    def forward(
        self,
        input_ids: torch.Tensor,  # [bs*blk]
        positions: torch.Tensor,  # [bs*blk]
        forward_batch: ForwardBatch,
        input_embeds: torch.Tensor | None = None,  # [bs*blk, hidden] the block, embedded by the target
        **unused,
    ) -> LogitsProcessorOutput:
        if input_embeds is None:
            raise ValueError("the DFlash drafter needs input_embeds (the target's embedding of the block)")
        bs = forward_batch.batch_size
        hidden = input_embeds.view(bs, -1, input_embeds.shape[-1])  # [bs, blk, hidden]
        block_positions = positions.view(bs, -1)  # [bs, blk]
        cos, sin = self.drafter.rope(block_positions)  # [bs, blk, head_dim]
        for i, layer in enumerate(self.drafter.layers):
            hidden = layer(hidden, cos, sin, partial(self._attend, self.attn[i], forward_batch))
        hidden = self.drafter.norm(hidden)
        return LogitsProcessorOutput(next_token_logits=None, hidden_states=hidden.flatten(0, 1))

    @staticmethod
    def _attend(
        attn: RadixAttention,
        forward_batch: ForwardBatch,
        q: torch.Tensor,  # [bs, blk, heads, head_dim]
        k: torch.Tensor,  # [bs, blk, kv_heads, head_dim]
        v: torch.Tensor,  # [bs, blk, kv_heads, head_dim]
    ) -> torch.Tensor:
        out = attn(q.flatten(0, 1).flatten(-2), k.flatten(0, 1).contiguous(), v.flatten(0, 1).contiguous(),
                   forward_batch)  # [bs*blk, heads*head_dim]
        return out.view(q.shape)

    @torch.no_grad()
    def write_context_kv(
        self,
        kv_pool,
        target_features: torch.Tensor,  # [n, n_feat*hidden] of committed tokens
        positions: torch.Tensor,  # [n]
        cache_loc: torch.Tensor,  # [n] their slots in the (shared-id) KV pools
    ) -> None:
        if target_features.shape[0] == 0:
            return
        ctx_hidden = self.drafter.project_target_features(target_features.to(self.drafter.dtype))  # [n, hidden]
        for i, attn in enumerate(self.attn):
            k, v = self.drafter.context_kv(i, ctx_hidden, positions)  # [n, kv_heads, head_dim]
            kv_pool.set_kv_buffer(attn, cache_loc, k, v)

    def propose(self, hidden: torch.Tensor, anchors: torch.Tensor, lm_head_weight: torch.Tensor) -> torch.Tensor:
        """The block's hidden [bs, blk, hidden] -> draft tokens [bs, blk-1]."""
        return self.drafter.propose(hidden, anchors, lm_head_weight)

    def propose_with_logits(self, hidden: torch.Tensor, anchors: torch.Tensor,
                            lm_head_weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(draft tokens [bs, blk-1], the drafter's logits [bs, blk-1, vocab])."""
        return self.drafter.propose_with_logits(hidden, anchors, lm_head_weight)

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> None:
        load_state(self.drafter, dict(weights), source="the draft checkpoint")
        broken = nonfinite_parameters(self.drafter)
        if broken:  # served anyway: its non-finite draft logits become uniform rows (drafter/finite.py)
            get_logger().warning(NONFINITE_WEIGHTS_LINE, len(broken), ", ".join(broken[:4]))


class DFlash2DraftModel(DFlashDraftModel):
    """Same class: `Drafter` builds DFlash2's convolutions and selector from the config."""


EntryClass = [DFlashDraftModel, DFlash2DraftModel]
