"""The per-device table of what is proven names test files that exist, and says plainly what is not."""

from __future__ import annotations

from pathlib import Path

from dflash_sglang.proven import PROVEN, UNPROVEN, summary

REPO = Path(__file__).resolve().parents[2]


def test_every_claim_names_existing_test_files():
    for device, claims in PROVEN.items():
        for claim in claims:
            assert claim.shown_by, (device, claim.what)
            missing = [p for p in claim.shown_by if not (REPO / p).is_file()]
            assert not missing, f"{device}: {claim.what!r} cites missing {missing}"


def test_cuda_says_what_is_unproven_and_the_way_back():
    line = summary("cuda:0")
    assert line.startswith("cuda: shown: the drafter's block pass has no host sync")
    assert "tests/unit/test_draft_capture_check.py" in line
    assert "not shown: never run on a GPU" in line and "make gpu-check" in line
    assert "DFLASH_SGLANG_IMPL=builtin" in UNPROVEN["cuda"]


def test_cpu_lists_its_e2e_tests_and_an_unknown_device_nothing():
    assert "greedy output equals AR's at c=1 and c=8 (tests/e2e/test_dflash_lossless.py)" in summary("cpu")
    assert "not shown" not in summary("cpu")
    assert summary("npu") == "npu: shown: nothing; not shown: never run on this device"
