"""Issues 4 and 10: a DFLASH launch with a bad draft or draft window ends start-up with one line naming the problem.

One launch per kind of check: a missing drafter and a window below the block (checked before SGLang reads the
draft config), a drafter that does not fit the target (checked after SGLang has resolved the block size). Every
message of the checks is tested in-process (tests/adapter/test_startup_checks.py, tests/adapter/test_draft_window.py):
a failing launch costs a whole SGLang import (~10-20 s of CPU each).
"""

from __future__ import annotations

import time

import pytest

from dflash_sglang.serving import launch
from helpers.drafter_copies import drafter_copy, hidden_size
from helpers.e2e import dflash_args

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def failed_launches(pair, tmp_path_factory) -> dict[str, str]:
    """All bad launches at once (each spends ~20 s importing SGLang before it fails)."""
    target, drafter = pair
    tmp = tmp_path_factory.mktemp("bad-drafters")
    cases = {
        "missing-path": dflash_args(tmp / "no-such-drafter"),
        "hidden-size": dflash_args(drafter_copy(drafter, tmp, "wide", hidden_size=2 * hidden_size(drafter))),
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


@pytest.mark.parametrize(
    ("case", "fragments"),
    [
        ("missing-path", ["--speculative-draft-model-path", "no-such-drafter", "does not exist"]),
        ("hidden-size", ["hidden_size", "the target's hidden_size"]),
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
