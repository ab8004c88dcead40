"""Legacy flag spellings and the seeds' overlap env flags (the argv side; SGLang's parser is in
tests/adapter/test_seed_commands.py)."""

from __future__ import annotations

import logging

import pytest

from dflash_sglang import log
from dflash_sglang.sglang_adapter import legacy_args
from dflash_sglang.sglang_adapter.startup import StartupError

DFLASH = ["--model-path", "m", "--speculative-algorithm", "DFLASH"]
OVERLAP_ENV = legacy_args.OVERLAP_ENV


@pytest.fixture
def warnings(monkeypatch) -> list[str]:
    """Our logger's lines from a fresh process's point of view (nothing logged once yet)."""
    monkeypatch.setattr(log, "_logged_once", set())
    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    handler = Capture(level=logging.WARNING)
    log.get_logger().addHandler(handler)
    yield lines
    log.get_logger().removeHandler(handler)


@pytest.fixture(autouse=True)
def _no_overlap_env(monkeypatch):
    for name in OVERLAP_ENV:
        monkeypatch.delenv(name, raising=False)


def test_both_legacy_spellings_are_translated_with_one_warning_each(warnings):
    argv = ["--mamba-scheduler-strategy", "extra_buffer", "--speculative-dflash-draft-window-size=512", "--tp-size", "1"]
    assert legacy_args.translate_flags(argv) == [
        "--mamba-radix-cache-strategy", "extra_buffer", "--speculative-draft-window-size=512", "--tp-size", "1"]
    legacy_args.translate_flags(argv)  # a second parse in the same process says nothing new
    assert len(warnings) == 2
    for legacy, modern in (("--mamba-scheduler-strategy", "--mamba-radix-cache-strategy"),
                           ("--speculative-dflash-draft-window-size", "--speculative-draft-window-size")):
        assert sum(legacy in line and modern in line for line in warnings) == 1, warnings


def test_modern_spellings_pass_untouched(warnings):
    argv = ["--mamba-radix-cache-strategy", "auto", "--speculative-draft-window-size", "64"]
    assert legacy_args.translate_flags(argv) == argv
    assert warnings == []


@pytest.mark.parametrize("env, expected", [
    ({}, (None, None)),
    ({"SGLANG_ENABLE_SPEC_V2": ""}, (None, None)),
    ({"SGLANG_ENABLE_DFLASH_SPEC_V2": "1"}, (True, "SGLANG_ENABLE_DFLASH_SPEC_V2=1")),
    ({"SGLANG_ENABLE_SPEC_V2": "true", "SGLANG_ENABLE_OVERLAP_PLAN_STREAM": "1"}, (True, "SGLANG_ENABLE_SPEC_V2=true")),
    ({"SGLANG_ENABLE_SPEC_V2": "1", "SGLANG_ENABLE_OVERLAP_PLAN_STREAM": "0"},
     (False, "SGLANG_ENABLE_OVERLAP_PLAN_STREAM=0")),
])
def test_overlap_request_reads_the_three_switches(env, expected):
    assert legacy_args.overlap_request(env) == expected


def test_a_bad_switch_value_names_the_variable():
    with pytest.raises(ValueError, match=r"SGLANG_ENABLE_SPEC_V2: expected one of 1, true.*got 'maybe'"):
        legacy_args.overlap_request({"SGLANG_ENABLE_SPEC_V2": "maybe"})


def test_overlap_off_becomes_disable_overlap_schedule_for_dflash_only(monkeypatch):
    monkeypatch.setenv("SGLANG_ENABLE_SPEC_V2", "0")
    (argv,), _ = legacy_args.before_prepare_server_args(DFLASH)
    assert argv == DFLASH + ["--disable-overlap-schedule"]
    (again,), _ = legacy_args.before_prepare_server_args(argv)
    assert again.count("--disable-overlap-schedule") == 1
    ngram = ["--model-path", "m", "--speculative-algorithm=NGRAM"]
    assert legacy_args.before_prepare_server_args(ngram)[0][0] == ngram


def test_overlap_on_adds_nothing(monkeypatch):
    monkeypatch.setenv("SGLANG_ENABLE_SPEC_V2", "1")
    assert legacy_args.before_prepare_server_args(DFLASH)[0][0] == DFLASH


def test_a_bad_switch_value_ends_the_launch_with_one_line(monkeypatch):
    monkeypatch.setenv("SGLANG_ENABLE_DFLASH_SPEC_V2", "2")
    with pytest.raises(StartupError, match="dflash-sglang: error: SGLANG_ENABLE_DFLASH_SPEC_V2: expected one of"):
        legacy_args.before_prepare_server_args(DFLASH)


@pytest.mark.parametrize("argv, expected", [
    (["--speculative-algorithm", "dflash"], True),
    (["--speculative-algorithm=DFLASH"], True),
    (["--speculative-algorithm", "EAGLE"], False),
    (["--model-path", "DFLASH"], False),
    (["--speculative-algorithm", "NGRAM", "--speculative-algorithm", "DFLASH"], True),
])
def test_is_dflash_launch(argv, expected):
    assert legacy_args.is_dflash_launch(argv) is expected
