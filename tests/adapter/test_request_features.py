"""The SGLang-facing pieces of issue 11 on hand-built inputs: the per-position grammar walk over a toy
matcher with SGLang's packed int32 bitmask, stop-token sets, the O(1) feature check, the one refusal
left. The servers' behaviour is tests/e2e/test_dflash_request_features.py's."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from dflash_sglang.sglang_adapter.grammar_verify import fill_block_masks
from dflash_sglang.sglang_adapter.request_checks import unsupported_features
from dflash_sglang.sglang_adapter.request_features import needs_features, stop_token_ids

VOCAB = 40


class CountingGrammar:
    """Allows exactly the token (number of accepted tokens + 1) % VOCAB next; records its calls."""

    def __init__(self):
        self.accepted: list[int] = []
        self.rolled_back = 0
        self.finished = False

    def _next(self) -> int:
        return (len(self.accepted) + 1) % VOCAB

    def fill_vocab_mask(self, bitmask: torch.Tensor, idx: int) -> None:
        bitmask[idx] = 0
        token = self._next()
        bitmask[idx, token // 32] = 1 << (token % 32)

    def accept_token(self, token: int) -> None:
        assert token == self._next(), "the walk must not feed a token the mask forbids"
        self.accepted.append(token)

    def rollback(self, k: int) -> None:
        self.rolled_back += k
        del self.accepted[-k:]

    def is_terminated(self) -> bool:
        return False


def _bitmask(rows: int) -> torch.Tensor:
    return torch.full((rows, (VOCAB + 31) // 32), -1, dtype=torch.int32)


def _allowed(bitmask: torch.Tensor, row: int) -> list[int]:
    return [t for t in range(VOCAB) if (int(bitmask[row, t // 32]) >> (t % 32)) & 1]


def test_masks_follow_the_drafts_then_stop_at_the_first_forbidden_one_and_roll_back():
    grammar, bitmask = CountingGrammar(), _bitmask(5)
    taken = fill_block_masks(grammar, bitmask, 0, [7, 1, 2, 9, 4])  # anchor, then drafts 1, 2 allowed, 9 not
    assert taken == 2 and grammar.rolled_back == 2 and grammar.accepted == []
    assert [_allowed(bitmask, r) for r in range(3)] == [[1], [2], [3]]
    assert len(_allowed(bitmask, 3)) == VOCAB == len(_allowed(bitmask, 4))  # never read: the accept rule stops at 9


def test_rows_of_another_request_are_left_alone():
    grammar, bitmask = CountingGrammar(), _bitmask(6)
    fill_block_masks(grammar, bitmask, 3, [0, 1, 2])
    assert all(len(_allowed(bitmask, r)) == VOCAB for r in range(3))
    assert [_allowed(bitmask, r) for r in range(3, 6)] == [[1], [2], [3]]


def _req(**params):
    defaults = {"stop_token_ids": {5}, "json_schema": None, "regex": None, "ebnf": None, "structural_tag": None}
    tokenizer = SimpleNamespace(eos_token_id=2, additional_stop_token_ids={9})
    return SimpleNamespace(sampling_params=SimpleNamespace(**{**defaults, **params}), eos_token_ids={3},
                           tokenizer=tokenizer)


def test_stop_tokens_are_the_requests_the_eos_ids_and_the_tokenizers():
    assert stop_token_ids(_req()) == {2, 3, 5, 9}


def test_only_a_non_bitmask_grammar_backend_is_refused():
    assert unsupported_features(_req(json_schema="{}"), "xgrammar") == []
    assert unsupported_features(_req(regex="a+"), "llguidance") == []
    [message] = unsupported_features(_req(ebnf="root ::= 'a'"), "outlines")
    assert "outlines" in message and "xgrammar" in message
    assert unsupported_features(_req(), "outlines") == []
    assert unsupported_features(_req(json_schema="{}"), None) == []  # SGLang resolves None to xgrammar


def test_feature_check_is_off_for_plain_batches():
    plain = SimpleNamespace(acc_additive_penalties=None, acc_scaling_penalties=None, logit_bias=None,
                            has_custom_logit_processor=False)
    assert not needs_features(None, False) and not needs_features(plain, False)
    assert needs_features(SimpleNamespace(**{**vars(plain), "logit_bias": torch.zeros(1, 4)}), False)
    assert needs_features(plain, True)
