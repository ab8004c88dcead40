"""The TP pieces of our worker on hand-made shards (no server): the lm_head gather puts every row at its
vocabulary id, and rank 0's accept decision replaces a rank's own. The e2e proof is
tests/e2e/test_dflash_tensor_parallel.py."""

from __future__ import annotations

import pytest
import torch

from sglang.srt.layers.vocab_parallel_embedding import VocabParallelEmbedding, pad_vocab_size

from dflash_sglang.sglang_adapter.tensor_parallel import (
    SKIP_LM_HEAD_GATHER_ENV, RankAgreement, full_vocab_lm_head,
)
from dflash_sglang.spec.types import Acceptance

HIDDEN = 8


class TwoRankGroup:
    """Rank `rank` of a two-rank group whose peers' tensors are given up front."""

    world_size = 2

    def __init__(self, rank: int, peers: list[torch.Tensor] | None = None) -> None:
        self.rank_in_group = rank
        self.peers = peers

    def all_gather(self, tensor: torch.Tensor, dim: int = -1) -> torch.Tensor:
        assert torch.equal(tensor, self.peers[self.rank_in_group])
        return torch.cat(self.peers, dim=dim)

    def broadcast(self, tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
        if self.rank_in_group != src:
            tensor.copy_(self.peers[src])
        return tensor


class ShardedHead(torch.nn.Module):
    """Rank `rank`'s part of a [vocab, HIDDEN] head, laid out as SGLang's ParallelLMHead loads it."""

    def __init__(self, full: torch.Tensor, rank: int, tp: int = 2) -> None:
        super().__init__()
        vocab = full.shape[0]
        padded = pad_vocab_size(vocab)
        self.org_vocab_size = vocab
        self.shard_indices = VocabParallelEmbedding._get_indices(padded, padded, vocab, vocab, rank, tp)
        rows = torch.zeros(self.shard_indices.num_elements_padded, HIDDEN)  # padding rows stay 0
        idx = self.shard_indices
        rows[:idx.num_org_elements] = full[idx.org_vocab_start_index:idx.org_vocab_end_index]
        self.weight = torch.nn.Parameter(rows, requires_grad=False)


@pytest.mark.parametrize("vocab", [
    pytest.param(4096, id="vocab4096-bundled-pair"),
    pytest.param(4000, id="vocab4000-rank1-shard-padded"),  # padded to 4032: rank 1 holds 32 padding rows
])
def test_the_gathered_head_is_the_whole_head_on_every_rank(vocab):
    full = torch.randn(vocab, HIDDEN)
    heads = [ShardedHead(full, rank) for rank in range(2)]
    shards = [h.weight[:h.shard_indices.num_org_elements_padded] for h in heads]
    for rank, head in enumerate(heads):
        assert torch.equal(full_vocab_lm_head(head, TwoRankGroup(rank, shards)), full)


def test_the_test_switch_leaves_the_shard(monkeypatch):
    monkeypatch.setenv(SKIP_LM_HEAD_GATHER_ENV, "1")
    head = ShardedHead(torch.randn(4096, HIDDEN), rank=1)
    assert full_vocab_lm_head(head, TwoRankGroup(1)).shape == (2048, HIDDEN)


def test_every_rank_takes_rank_0s_accept_decision():
    rank0 = Acceptance.make_dummy(accepted=[3, 0], bonus=[11, 12], block_size=4)
    rank1 = Acceptance.make_dummy(accepted=[1, 2], bonus=[21, 22], block_size=4)
    packed0 = torch.cat([rank0.out_tokens, rank0.accepted[:, None], rank0.bonus[:, None]], dim=1)
    RankAgreement(TwoRankGroup(1, [packed0, None])).acceptance(rank1)
    for field in ("accepted", "bonus", "out_tokens"):
        assert torch.equal(getattr(rank1, field), getattr(rank0, field)), field


def test_every_rank_verifies_rank_0s_candidates():
    mine = torch.tensor([[5, 6, 7], [8, 9, 10]])
    rank0 = torch.tensor([[5, 6, 1], [8, 2, 3]])
    RankAgreement(TwoRankGroup(1, [rank0, None])).tokens(mine)
    assert torch.equal(mine, rank0)
