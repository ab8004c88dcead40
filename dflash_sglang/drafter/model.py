"""The drafter: target features become context K/V in every layer; a block of `[anchor, MASK...]` is
denoised in one pass; the target's `lm_head` turns the outputs into draft tokens.

Plain torch. `forward` reproduces z-lab's `DFlashDraftModel.forward` for a batch of requests with
different context lengths, and incrementally (context K/V kept in a `ContextKV` across steps). The
smaller methods (`project_target_features`, `context_kv`, `qkv`, each layer's `attend` callback) are
the pieces an SGLang model reuses with its own KV cache and attention.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from dflash_sglang.config import DFlashConfig, LayerAttention
from dflash_sglang.drafter.attention import attention_core, visible_keys
from dflash_sglang.drafter.context import ContextKV
from dflash_sglang.drafter.dflash2 import CandidateSelector
from dflash_sglang.drafter.finite import finite_draft_logits
from dflash_sglang.drafter.layer import DecoderLayer
from dflash_sglang.drafter.norm_rope import RMSNorm, RotaryEmbedding


class Drafter(nn.Module):
    def __init__(self, config: DFlashConfig) -> None:
        super().__init__()
        self.config = config
        self.layers = nn.ModuleList(DecoderLayer(config, i) for i in range(config.num_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.fc = nn.Linear(config.num_features * config.hidden_size, config.hidden_size, bias=False)
        self.hidden_norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.candidate_selector = CandidateSelector(config) if config.is_dflash2 else None
        self.rotary = RotaryEmbedding(config.rope, config.head_dim)

    @property
    def dtype(self) -> torch.dtype:
        return self.fc.weight.dtype

    def embed_block(self, block_ids: torch.Tensor, embed_weight: torch.Tensor) -> torch.Tensor:
        """block_ids [bs, blk] through the target's embedding [vocab, hidden] -> [bs, blk, hidden]."""
        return F.embedding(block_ids, embed_weight) * self.config.input_embedding_scale

    def project_target_features(self, features: torch.Tensor) -> torch.Tensor:
        """Target features [..., n_feat * hidden] -> the context's hidden states [..., hidden]."""
        return self.hidden_norm(self.fc(features))

    def rope(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """positions [...] -> cos, sin [..., head_dim] in the model's dtype."""
        return self.rotary(positions, self.dtype)

    def context_kv(
        self, layer: int, ctx_hidden: torch.Tensor, positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """ctx_hidden [..., n, hidden] (projected), positions [..., n] -> k, v [..., n, kv_heads, head_dim]."""
        return self.layers[layer].self_attn.context_kv(ctx_hidden, *self.rope(positions))

    def qkv(
        self, layer: int, block_hidden: torch.Tensor, positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The layer's attention input [..., blk, hidden] (after `input_layernorm` and any DFlash2
        convolution) -> q [..., blk, heads, head_dim], k, v [..., blk, kv_heads, head_dim]."""
        return self.layers[layer].self_attn.qkv(block_hidden, *self.rope(positions))

    def new_context(self, batch_size: int) -> ContextKV:
        c = self.config
        return ContextKV.empty(c.num_layers, batch_size, c.num_kv_heads, c.head_dim, self.dtype, self.fc.weight.device)

    @torch.no_grad()
    def extend_context(
        self,
        context: ContextKV,
        features: torch.Tensor,  # [bs, n, n_feat * hidden] target features of newly verified tokens
        positions: torch.Tensor,  # [bs, n]
        num_new: torch.Tensor | None = None,  # [bs] real tokens per request (padding after); all n if None
    ) -> None:
        """Append these tokens' K/V to every layer's context."""
        if num_new is None:
            num_new = torch.full((features.shape[0],), features.shape[1], dtype=torch.int64, device=features.device)
        ctx_hidden = self.project_target_features(features)  # [bs, n, hidden]
        layer_kv = [self.context_kv(i, ctx_hidden, positions) for i in range(len(self.layers))]
        context.append(layer_kv, positions, num_new)

    @torch.no_grad()
    def forward(
        self,
        block_embeds: torch.Tensor,  # [bs, blk, hidden] the block `[anchor, MASK...]`, embedded
        block_positions: torch.Tensor,  # [bs, blk] absolute positions
        context: ContextKV,
    ) -> torch.Tensor:
        """[bs, blk, hidden]: the final-normed hidden states of the whole block (the anchor's included)."""
        cos, sin = self.rope(block_positions)  # [bs, blk, head_dim] each
        bs, blk = block_positions.shape
        key_positions = torch.cat([context.positions, block_positions], dim=1)  # [bs, cap + blk]
        block_valid = torch.ones(bs, blk, dtype=torch.bool, device=block_positions.device)
        key_valid = torch.cat([context.valid(), block_valid], dim=1)  # [bs, cap + blk]
        masks: dict[LayerAttention, torch.Tensor] = {}
        hidden = block_embeds
        for i, layer in enumerate(self.layers):
            kind = layer.attention_kind
            if kind not in masks:
                masks[kind] = visible_keys(block_positions, key_positions, key_valid, kind)  # [bs, blk, cap + blk]
            attend = partial(_attend_with_context, context.keys[i], context.values[i], masks[kind])
            hidden = layer(hidden, cos, sin, attend)
        return self.norm(hidden)

    def compute_logits(self, hidden: torch.Tensor, lm_head_weight: torch.Tensor) -> torch.Tensor:
        """hidden [..., hidden] through the target's `lm_head` [vocab, hidden] -> [..., vocab]."""
        logits = F.linear(hidden, lm_head_weight) * self.config.output_multiplier
        softcap = self.config.final_logit_softcapping
        if softcap is not None:
            logits = torch.tanh(logits / softcap) * softcap
        return logits

    @torch.no_grad()
    def propose(self, hidden: torch.Tensor, anchor_ids: torch.Tensor, lm_head_weight: torch.Tensor) -> torch.Tensor:
        """Greedy draft tokens [bs, blk - 1] from `forward`'s output [bs, blk, hidden] and the anchors [bs]."""
        return self.propose_with_logits(hidden, anchor_ids, lm_head_weight)[0]

    @torch.no_grad()
    def propose_with_logits(self, hidden: torch.Tensor, anchor_ids: torch.Tensor,
                            lm_head_weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(greedy draft tokens [bs, blk - 1], their logits [bs, blk - 1, vocab]); sampled requests draw
        their drafts from these logits, at no extra cost to greedy ones."""
        draft_hidden = hidden[:, 1:]  # [bs, blk - 1, hidden]; the anchor's own output predicts nothing
        # non-finite rows (a broken drafter) become uniform: the target still decides (finite.py)
        logits = finite_draft_logits(self.compute_logits(draft_hidden, lm_head_weight))  # [bs, blk - 1, vocab]
        if self.candidate_selector is None:
            return torch.argmax(logits, dim=-1), logits
        return self.candidate_selector.select_greedy(draft_hidden, logits, anchor_ids), logits


def _attend_with_context(
    ctx_k: torch.Tensor,  # [bs, cap, kv_heads, head_dim]
    ctx_v: torch.Tensor,  # [bs, cap, kv_heads, head_dim]
    visible: torch.Tensor,  # [bs, blk, cap + blk]
    q: torch.Tensor,  # [bs, blk, heads, head_dim]
    k: torch.Tensor,  # [bs, blk, kv_heads, head_dim]
    v: torch.Tensor,  # [bs, blk, kv_heads, head_dim]
) -> torch.Tensor:
    """Keys are the context then the block, as in z-lab's `cat([k_ctx, k_noise])`."""
    keys = torch.cat([ctx_k, k], dim=1)  # [bs, cap + blk, kv_heads, head_dim]
    values = torch.cat([ctx_v, v], dim=1)  # [bs, cap + blk, kv_heads, head_dim]
    return attention_core(q, keys, values, visible)
