"""The launcher's start-up checks (sglang_adapter/startup.py), called in-process on the bundled pair: each bad
drafter or block size ends with one `dflash-sglang: error:` line naming what was expected and what was got.
tests/e2e/test_dflash_startup_errors.py launches real servers for one check of each stage."""

from __future__ import annotations

import pytest

from dflash_sglang.bundled import tiny_pair
from dflash_sglang.sglang_adapter.startup import StartupError, fitted_config, local_paths
from helpers.drafter_copies import drafter_copy, hidden_size


@pytest.mark.parametrize(
    ("changes", "block_size", "fragments"),
    [
        (lambda drafter: {"hidden_size": 2 * hidden_size(drafter)}, 8, ["hidden_size", "the target's hidden_size"]),
        (lambda drafter: {"target_layer_ids": [1, 99]}, 8, ["target_layer_ids", "99"]),
        (lambda drafter: {}, 1, ["--speculative-num-draft-tokens", "expected >= 2, got 1"]),
    ],
    ids=["hidden-size", "layer-ids", "block-size-1"],
)
def test_a_drafter_that_does_not_fit_ends_with_one_line(tmp_path, changes, block_size, fragments):
    """`changes(drafter)`: the config fields of the bad copy."""
    target, drafter = tiny_pair()
    bad = drafter_copy(drafter, tmp_path, "bad", **changes(drafter))
    with pytest.raises(StartupError) as raised:
        fitted_config(str(target), str(bad), block_size)
    message = str(raised.value)
    assert message.startswith("dflash-sglang: error:") and "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message


def test_the_bundled_pair_fits_and_a_missing_drafter_is_named(tmp_path):
    target, drafter = tiny_pair()
    assert fitted_config(str(target), str(drafter), 8).block_size == 8
    assert local_paths(str(target), str(drafter))
    with pytest.raises(StartupError, match="--speculative-draft-model-path: expected a model directory"):
        local_paths(str(target), str(tmp_path / "no-such-drafter"))
