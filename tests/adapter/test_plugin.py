"""The entry point: registered for SGLang, logs its line, refuses an unsupported SGLang."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata

from dflash_sglang import __version__

PROBE = (
    "from sglang.srt.plugins.hook_registry import HookRegistry\n"
    "from dflash_sglang.sglang_adapter.plugin import register\n"
    "register(); register()\n"
    "print(sum(len(v) for v in HookRegistry._hooks.values()))\n"
)


def _run_register(extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          env={**os.environ, **(extra_env or {})}, timeout=300)


def test_entry_point_is_declared_for_sglang():
    eps = metadata.entry_points(group="sglang.srt.plugins")
    ours = [ep for ep in eps if ep.name == "dflash_sglang"]
    assert len(ours) == 1
    assert ours[0].load().__module__ == "dflash_sglang.sglang_adapter.plugin"


def test_register_logs_one_active_line_and_installs_hooks():
    result = _run_register()
    assert result.returncode == 0, result.stderr
    active = [line for line in result.stderr.splitlines() if "active: plugin loaded on SGLang" in line]
    assert len(active) == 1, result.stderr  # register() twice in one process still logs once
    assert f"dflash-sglang {__version__} active" in active[0] and "0.5.23" in active[0]


def test_register_refuses_to_patch_an_unsupported_sglang(fake_sglang_version):
    result = _run_register(fake_sglang_version("0.5.99"))
    assert result.returncode == 0, result.stderr
    refused = [line for line in result.stderr.splitlines() if "inactive, patching nothing" in line]
    assert len(refused) == 1 and "SGLang 0.5.99 is installed" in refused[0], result.stderr
    assert result.stdout.strip() == "0"  # no hook registered
