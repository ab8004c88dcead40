"""The config a server runs with: the block size from the server, and only capturable target layers."""

from __future__ import annotations

import json

import pytest

from dflash_sglang.bundled import tiny_pair
from dflash_sglang.sglang_adapter.serving_config import serving_config


def _configs():
    target, drafter = tiny_pair()
    return json.loads((drafter / "config.json").read_text()), json.loads((target / "config.json").read_text())


def test_the_servers_block_size_wins():
    drafter, target = _configs()
    assert serving_config(drafter, target, 16).block_size == 16
    with pytest.raises(ValueError, match="block_size: expected an int >= 2, got 1"):
        serving_config(drafter, target, 1)


def test_the_targets_last_layer_is_refused():
    drafter, target = _configs()
    last = target["num_hidden_layers"] - 1
    drafter["dflash_config"] = {**drafter["dflash_config"], "target_layer_ids": [last]}
    with pytest.raises(ValueError, match=rf"target_layer_ids: expected ids below {last} .*got \[{last}\]"):
        serving_config(drafter, target, 8)
