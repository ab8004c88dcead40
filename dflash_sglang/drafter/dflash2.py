"""DFlash2's additions: grouped dynamic causal convolutions along the block, and the candidate selector.

The convolution mixes each block token with the `kernel_size - 1` tokens before it (zeros before
the anchor), per channel group, with a fixed kernel plus a kernel predicted from the token itself.
One convolution wraps each sublayer: `prepare` before it, `finish` after it.

The selector turns per-position logits into a coherent chain: at each draft position it rescores
the `top_k` candidates with a low-rank bigram term between the previous chosen token (the anchor
first) and each candidate, modulated by the drafter's hidden state.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dflash_sglang.config import DFlashConfig


def grouped_dynamic_convolve(
    hidden: torch.Tensor,  # [bs, blk, hidden]
    dynamic: torch.Tensor,  # [bs, blk, kernel, groups]
    base: torch.Tensor,  # [kernel, hidden]
    group_size: int,
) -> torch.Tensor:
    """[bs, blk, hidden]: out[t] = sum_o (base[o] + dynamic[t, o]) * hidden[t - o], per group."""
    bs, blk, hidden_size = hidden.shape
    groups = hidden_size // group_size
    blocks = hidden.view(bs, blk, groups, group_size)  # [bs, blk, groups, group]
    dynamic = dynamic.reshape(bs, blk, base.shape[0], groups, 1)  # [bs, blk, kernel, groups, 1]
    out = torch.zeros_like(blocks)  # [bs, blk, groups, group]
    for offset in range(base.shape[0]):
        # The block shifted `offset` tokens later, zeros before the anchor: causal within the block.
        shifted = blocks if offset == 0 else F.pad(blocks[:, :-offset], (0, 0, 0, 0, offset, 0))
        kernel = base[offset].view(1, 1, groups, group_size).to(hidden.dtype)  # [1, 1, groups, group]
        out = out + kernel * shifted
        out = torch.addcmul(out, dynamic[:, :, offset], shifted)
    return out.view_as(hidden)


class GroupedDynamicCausalConv(nn.Module):
    def __init__(self, hidden_size: int, kernel_size: int, group_size: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.group_size = group_size
        self.groups = hidden_size // group_size
        # [0]: the kernel before the sublayer, [1]: after it.
        self.base_kernel = nn.Parameter(torch.zeros(2, kernel_size, hidden_size))  # [2, kernel, hidden]
        self.kernel_projection = nn.Linear(hidden_size, 2 * kernel_size * self.groups, bias=False)

    def prepare(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """hidden [bs, blk, hidden] -> (convolved [bs, blk, hidden], kernel for `finish` [bs, blk, kernel, groups])."""
        dynamic = self.kernel_projection(hidden).unflatten(-1, (2, self.kernel_size, self.groups))
        # dynamic: [bs, blk, 2, kernel, groups]
        before = grouped_dynamic_convolve(hidden, dynamic[..., 0, :, :], self.base_kernel[0], self.group_size)
        return before, dynamic[..., 1, :, :]

    def finish(self, hidden: torch.Tensor, dynamic: torch.Tensor) -> torch.Tensor:
        """hidden [bs, blk, hidden], dynamic [bs, blk, kernel, groups] -> [bs, blk, hidden]."""
        return grouped_dynamic_convolve(hidden, dynamic, self.base_kernel[1], self.group_size)


class CandidateSelector(nn.Module):
    def __init__(self, config: DFlashConfig) -> None:
        super().__init__()
        assert config.selector_rank is not None and config.selector_top_k is not None
        rank = config.selector_rank
        self.top_k = config.selector_top_k
        self.predecessor_codebook = nn.Embedding(config.vocab_size, rank)  # [vocab, rank]
        self.successor_codebook = nn.Embedding(config.vocab_size, rank)  # [vocab, rank]
        self.hidden_projection = nn.Linear(config.hidden_size, rank, bias=False)

    def candidate_scores(
        self,
        predecessor: torch.Tensor,  # [bs] the token chosen at the previous position
        hidden_rank: torch.Tensor,  # [bs, rank] this position's projected hidden state
        unary: torch.Tensor,  # [bs, top_k] this position's candidate logits
        candidates: torch.Tensor,  # [bs, top_k] their token ids
    ) -> torch.Tensor:
        """[bs, top_k]: the logit plus the low-rank bigram term."""
        query = self.predecessor_codebook(predecessor) * hidden_rank  # [bs, rank]
        return unary + torch.einsum("br,bkr->bk", query, self.successor_codebook(candidates))

    def select_greedy(
        self,
        hidden: torch.Tensor,  # [bs, n, hidden] drafter outputs at the draft positions
        logits: torch.Tensor,  # [bs, n, vocab]
        anchor_ids: torch.Tensor,  # [bs]
    ) -> torch.Tensor:
        """[bs, n] draft tokens, chosen left to right (each depends on the one before)."""
        unary, candidates = torch.topk(logits, self.top_k, dim=-1, sorted=False)  # [bs, n, top_k] each
        hidden_rank = self.hidden_projection(hidden)  # [bs, n, rank]
        predecessor = anchor_ids  # [bs]
        path = []
        for position in range(hidden.shape[1]):
            scores = self.candidate_scores(
                predecessor, hidden_rank[:, position], unary[:, position], candidates[:, position]
            )  # [bs, top_k]
            index = torch.argmax(scores, dim=-1)  # [bs]
            predecessor = candidates[:, position].gather(-1, index[:, None])[:, 0]  # [bs]
            path.append(predecessor)
        return torch.stack(path, dim=1)
