"""The DFlashConfig a server runs with: the drafter parsed against the target, at the server's block size
(`--speculative-num-draft-tokens` may differ from the checkpoint's), with target layers SGLang can capture.

Used in the launcher (start-up checks, one-line errors) and in the scheduler (the worker), so both refuse
the same things.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from dflash_sglang.config import DFlashConfig, invalid


def serving_config(drafter: Mapping[str, Any], target: Mapping[str, Any], block_size: int,
                   tokenizer=None) -> DFlashConfig:
    config = DFlashConfig.from_dicts(drafter, target, tokenizer)
    config = dataclasses.replace(config, block_size=int(block_size))  # re-validated by __post_init__
    last = config.target_num_layers - 1
    if max(config.target_layer_ids) >= last:
        # SGLang captures a layer's output as the input of the next layer; the last layer has none.
        raise invalid("dflash_config.target_layer_ids",
                      f"ids below {last} (SGLang cannot capture the target's last layer)", list(config.target_layer_ids))
    return config
