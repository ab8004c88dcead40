"""Issue 6: each seed's launch command, verbatim but for the tiny pair's paths and the CPU flags, goes through
SGLang 0.5.23's own parser and argument resolution with our plugin loaded, and means what the card meant.

Everything runs in one subprocess under the CPU harness (importing SGLang costs ~30 s, each command ~0.1 s):
`prepare_server_args` is the parse entry of `python -m sglang.launch_server`, and `resolve_once()` the
resolution it runs before starting anything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dflash_sglang import harness, serving
from dflash_sglang.bundled import tiny_pair
from dflash_sglang.sglang_adapter.legacy_args import OVERLAP_LINE
from helpers import seed_commands
from helpers.seed_commands import flag_value, for_tiny_pair, without_flag

WINDOW = 64  # a WINDOW_SIZE for the tips: SGLang wants it >= the block size (16)
FIELDS = ("model_path", "speculative_draft_model_path", "speculative_algorithm", "speculative_num_draft_tokens",
          "speculative_draft_window_size", "mamba_radix_cache_strategy", "attention_backend",
          "speculative_draft_attention_backend", "tp_size", "mem_fraction_static", "dtype", "trust_remote_code",
          "device", "disable_overlap_schedule")
PROBE = r"""
import json, logging, os, sys
from sglang.srt.plugins import load_plugins
load_plugins()
from sglang.srt import server_args as sa_mod
from sglang.srt.arg_groups.model_override_base import resolved_view
from dflash_sglang import log as our_log

class Capture(logging.Handler):
    lines = []
    def emit(self, record):
        self.lines.append(record.getMessage())

our_log.get_logger().addHandler(Capture())
cases, fields = json.load(sys.stdin)

def run(case):
    our_log._logged_once.clear()  # each command as in a fresh launcher
    Capture.lines.clear()
    saved = dict(os.environ)
    os.environ.update(case["env"])
    out = {}
    try:
        parse = sa_mod.prepare_server_args.__wrapped__ if case["unhooked"] else sa_mod.prepare_server_args
        args = parse(case["argv"])
        out["raw"] = {f: getattr(args, f) for f in fields}
        args.resolve_once()
        out["resolved"] = {f: getattr(resolved_view(args), f) for f in fields}
    except SystemExit as err:
        out["parse_exit"] = err.code
    except (ValueError, AssertionError) as err:
        out["resolve_error"] = str(err)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    out["log"] = list(Capture.lines)
    return out

print("RESULTS " + json.dumps({case["id"]: run(case) for case in cases}))
"""

COMMANDS = seed_commands.load()
MAMBA = "--mamba-scheduler-strategy"
OVERLAP_ENV_OFF = {"SGLANG_ENABLE_SPEC_V2": "0"}


def _case(case_id: str, argv: list[str], env: dict, unhooked: bool = False) -> dict:
    return {"id": case_id, "argv": argv, "env": env, "unhooked": unhooked}


def _cases() -> list[dict]:
    target, drafter = tiny_pair()
    cases = []
    for command in COMMANDS:
        cases.append(_case(f"{command.id}-card", for_tiny_pair(command.argv, target, drafter), command.env))
        # The tiny target has no mamba state, so the hybrid cards' strategy is refused; the rest must resolve.
        resolvable = without_flag(command.argv, MAMBA)
        for flag in command.tip_flags:
            resolvable += [flag, str(WINDOW)]
        cases.append(_case(f"{command.id}-resolvable", for_tiny_pair(resolvable, target, drafter), command.env))
        if command.optional_env:
            env = {**command.env, **command.optional_env}
            cases.append(_case(f"{command.id}-optional-env", for_tiny_pair(resolvable, target, drafter), env))
    plain = next(c for c in COMMANDS if MAMBA not in c.argv)  # a card that resolves as it is
    cases.append(_case("overlap-env-off", for_tiny_pair(plain.argv, target, drafter), OVERLAP_ENV_OFF))
    legacy = next(c for c in COMMANDS if MAMBA in c.argv)
    cases.append(_case("without-plugin", for_tiny_pair(legacy.argv, target, drafter), {}, unhooked=True))
    return cases


@pytest.fixture(scope="module")
def results() -> dict[str, dict]:
    env = {**os.environ, **harness.environment()}
    for name in ("SGLANG_ENABLE_SPEC_V2", "SGLANG_ENABLE_DFLASH_SPEC_V2", "SGLANG_ENABLE_OVERLAP_PLAN_STREAM"):
        env.pop(name, None)
    proc = subprocess.run([sys.executable, "-c", PROBE], input=json.dumps([_cases(), FIELDS]),
                          capture_output=True, text=True, env=env, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULTS ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("RESULTS "))


def _cpu_value(flag: str) -> str:
    return flag_value(serving.cpu_args(), flag)


def _check_parsed(raw: dict, command: seed_commands.SeedCommand) -> None:
    """The parsed arguments hold the card's values, except where the CPU flags replace them."""
    target, drafter = tiny_pair()
    block = flag_value(command.argv, "--speculative-num-draft-tokens")
    assert raw["model_path"] == str(target) and raw["speculative_draft_model_path"] == str(drafter)
    assert raw["speculative_algorithm"] == flag_value(command.argv, "--speculative-algorithm") == "DFLASH"
    assert raw["speculative_num_draft_tokens"] == (int(block) if block else None)
    assert raw["tp_size"] == int(flag_value(command.argv, "--tp-size"))
    assert raw["dtype"] == (flag_value(command.argv, "--dtype") or "auto")
    assert raw["trust_remote_code"] is ("--trust-remote-code" in command.argv)
    assert raw["attention_backend"] == _cpu_value("--attention-backend")
    assert raw["mem_fraction_static"] == float(_cpu_value("--mem-fraction-static"))
    assert raw["device"] == "cpu"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.id)
def test_card_parses_with_the_legacy_spellings_translated(results, command):
    result = results[f"{command.id}-card"]
    assert "parse_exit" not in result, result
    _check_parsed(result["raw"], command)
    strategy = flag_value(command.argv, MAMBA)
    assert result["raw"]["mamba_radix_cache_strategy"] == (strategy or "auto")
    if command.seed.startswith("002"):  # the card's fa4 draft backend cannot run here
        assert result["raw"]["speculative_draft_attention_backend"] == "torch_native"
    warnings = [line for line in result["log"] if MAMBA in line]
    assert len(warnings) == (1 if strategy else 0), result["log"]
    if strategy:
        assert "--mamba-radix-cache-strategy" in warnings[0]
        # SGLang's resolution got the translated strategy and refuses it only because the tiny target is not hybrid.
        assert result["resolve_error"] == f"--mamba-radix-cache-strategy {strategy} needs mamba state, got Qwen3ForCausalLM."


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.id)
def test_card_resolves_to_the_intended_server_args(results, command):
    result = results[f"{command.id}-resolvable"]
    assert "resolve_error" not in result and "parse_exit" not in result, result
    _check_parsed(result["raw"], command)
    resolved = result["resolved"]
    block = flag_value(command.argv, "--speculative-num-draft-tokens")
    if block is None:  # the card leaves it to the drafter's config.json, as SGLang does
        block = json.loads((tiny_pair()[1] / "config.json").read_text())["block_size"]
    assert resolved["speculative_num_draft_tokens"] == int(block)
    assert resolved["speculative_draft_window_size"] == (WINDOW if command.tip_flags else None)
    assert resolved["attention_backend"] == resolved["speculative_draft_attention_backend"] == "torch_native"
    assert resolved["mamba_radix_cache_strategy"] == "auto"
    for flag in command.tip_flags:
        translated = [line for line in result["log"] if flag in line]
        assert len(translated) == 1 and "--speculative-draft-window-size" in translated[0], result["log"]
    # SGLang 0.5.23 keeps overlap on for DFLASH on CPU (it turns it off for EAGLE and NGRAM only).
    assert resolved["disable_overlap_schedule"] is False
    lines = [line for line in result["log"] if line.startswith(OVERLAP_LINE.split("%s")[0])]
    assert len(lines) == 1 and lines[0].startswith("DFLASH overlap schedule: on ("), result["log"]
    assert "on CPU it turns overlap off for EAGLE and NGRAM, not for DFLASH" in lines[0]
    if command.env.get("SGLANG_ENABLE_SPEC_V2") == "1":
        assert "SGLANG_ENABLE_SPEC_V2=1 asks for it" in lines[0]


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.optional_env], ids=lambda c: c.id)
def test_card_optional_overlap_switches_are_honoured(results, command):
    result = results[f"{command.id}-optional-env"]
    assert result["resolved"]["disable_overlap_schedule"] is False
    assert any("DFLASH overlap schedule: on (SGLANG_ENABLE_SPEC_V2=1 asks for it" in line for line in result["log"])


def test_overlap_env_set_off_disables_overlap(results):
    result = results["overlap-env-off"]
    assert result["raw"]["disable_overlap_schedule"] is True
    assert result["resolved"]["disable_overlap_schedule"] is True
    assert "DFLASH overlap schedule: off (SGLANG_ENABLE_SPEC_V2=0, passed on as --disable-overlap-schedule)" \
        in result["log"], result["log"]


def test_without_our_plugin_the_card_does_not_parse(results):
    """The control: SGLang 0.5.23's parser alone rejects the card (exit 2, unrecognized arguments)."""
    assert results["without-plugin"]["parse_exit"] == 2
