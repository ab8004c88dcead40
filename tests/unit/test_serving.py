"""The server launcher stops a whole process group by PID (SGLang spawns schedulers as children)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from dflash_sglang.errors import UserError
from dflash_sglang.serving import group_members, launch, stop_process_group

TREE = "import subprocess, time; subprocess.Popen(['sleep', '300']); time.sleep(300)"


def test_stop_kills_the_leader_and_its_children():
    process = subprocess.Popen([sys.executable, "-c", TREE], start_new_session=True)
    deadline = time.monotonic() + 30
    while len(group_members(process.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(group_members(process.pid)) == 2  # leader + child sleeping
    stop_process_group(process, grace=5)
    assert group_members(process.pid) == []
    assert process.returncode is not None


def test_launch_refuses_a_missing_model_path(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        launch(tmp_path / "missing", log_path=tmp_path / "log")
