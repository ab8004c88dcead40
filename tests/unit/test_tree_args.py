"""`--speculative-dflash-tree-budget`: the parse rules, and the two parser hooks on a plain argparse
parser (the real SGLang parser carries it in tests/e2e/test_dflash_tree.py's server)."""

from __future__ import annotations

import argparse
import pickle

import pytest

from dflash_sglang.sglang_adapter import tree_args
from dflash_sglang.sglang_adapter.startup import StartupError
from dflash_sglang.spec.tree_budget import AUTO, CHAIN, FIXED, MAX_TREE_BUDGET, TreeBudget, parse_tree_budget


@pytest.mark.parametrize("raw,expected", [
    (None, TreeBudget(CHAIN, 8)),
    ("32", TreeBudget(FIXED, 32)),
    (" AUTO ", TreeBudget(AUTO, 64)),
    ("2", TreeBudget(FIXED, 2)),
    (str(MAX_TREE_BUDGET), TreeBudget(FIXED, MAX_TREE_BUDGET)),
])
def test_parse(raw, expected):
    assert parse_tree_budget(raw, block_size=8) == expected


@pytest.mark.parametrize("raw", ["1", "0", "-4", str(MAX_TREE_BUDGET + 1), "tree", "3.5"])
def test_parse_rejects_with_expected_and_got(raw):
    with pytest.raises(ValueError, match=r"--speculative-dflash-tree-budget: expected an integer from 2 to .* got"):
        parse_tree_budget(raw, block_size=8)


class Record:  # stands in for ServerArgs: picklable, bookkeeping attributes allowed
    @classmethod
    def from_cli_args(cls, args):
        return cls()


def _parse(argv: list[str]):
    parser = argparse.ArgumentParser()
    tree_args.around_add_cli_args(lambda p: None, parser)
    return tree_args.around_from_cli_args(lambda cls, a: cls.from_cli_args(a), Record, parser.parse_args(argv))


def test_flag_rides_on_the_record_through_pickling():
    record = pickle.loads(pickle.dumps(_parse(["--speculative-dflash-tree-budget", "16"])))
    assert tree_args.tree_budget_of(record, block_size=8) == TreeBudget(FIXED, 16)
    assert tree_args.tree_budget_of(_parse([]), block_size=8) == TreeBudget(CHAIN, 8)


def test_bad_flag_ends_the_launcher_with_one_line():
    with pytest.raises(StartupError, match="expected an integer from 2"):
        _parse(["--speculative-dflash-tree-budget", "1"])
