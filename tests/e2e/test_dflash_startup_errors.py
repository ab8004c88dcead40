"""Issues 4 and 10: a DFLASH launch with a bad draft or draft window ends start-up with one line naming the problem."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from dflash_sglang.serving import launch
from helpers.e2e import dflash_args

pytestmark = pytest.mark.e2e


def _drafter_copy(drafter: Path, tmp: Path, name: str, **changes) -> Path:
    out = tmp / name
    shutil.copytree(drafter, out)
    config = json.loads((out / "config.json").read_text())
    for key, value in changes.items():
        if key == "target_layer_ids":
            config["dflash_config"][key] = value
        else:
            config[key] = value
    (out / "config.json").write_text(json.dumps(config))
    return out


@pytest.fixture(scope="module")
def failed_launches(pair, tmp_path_factory) -> dict[str, str]:
    """All bad launches at once (each spends ~20 s importing SGLang before it fails)."""
    target, drafter = pair
    tmp = tmp_path_factory.mktemp("bad-drafters")
    cases = {
        "missing-path": dflash_args(tmp / "no-such-drafter"),
        "hidden-size": dflash_args(_drafter_copy(drafter, tmp, "wide", hidden_size=2 * _hidden(drafter))),
        "layer-ids": dflash_args(_drafter_copy(drafter, tmp, "deep", target_layer_ids=[1, 99])),
        "block-size-1": dflash_args(drafter, block_size=1),
        "window-0": dflash_args(drafter) + ("--speculative-draft-window-size", "0"),
        "window-below-block": dflash_args(drafter) + ("--speculative-draft-window-size", "4"),
    }
    servers = {name: launch(target, args, log_path=tmp / f"{name}.log") for name, args in cases.items()}
    deadline = time.monotonic() + 300
    for server in servers.values():
        while server.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        server.stop()
    return {name: server.log_text() for name, server in servers.items()} | {
        f"{name}:exit": str(server.process.returncode) for name, server in servers.items()}


def _hidden(drafter: Path) -> int:
    return json.loads((drafter / "config.json").read_text())["hidden_size"]


@pytest.mark.parametrize(
    ("case", "fragments"),
    [
        ("missing-path", ["--speculative-draft-model-path", "no-such-drafter", "does not exist"]),
        ("hidden-size", ["hidden_size", "the target's hidden_size"]),
        ("layer-ids", ["target_layer_ids", "99"]),
        ("block-size-1", ["--speculative-num-draft-tokens", "expected >= 2, got 1"]),
        ("window-0", ["--speculative-draft-window-size", "expected a positive number of tokens, got 0"]),
        ("window-below-block", ["--speculative-draft-window-size", "expected at least the block size", "got 4"]),
    ],
)
def test_bad_draft_ends_startup_with_one_line(failed_launches, case, fragments):
    log = failed_launches[case]
    assert failed_launches[f"{case}:exit"] not in ("0", "None"), log[-2000:]
    errors = [line for line in log.splitlines() if line.startswith("dflash-sglang: error:")]
    assert len(errors) == 1, log[-2000:]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    assert "Traceback" not in log
