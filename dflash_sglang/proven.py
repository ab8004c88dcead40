"""What has been shown on which device, and by which test: one table for `doctor` and the README.

A device is proven only by tests that ran on it. The CUDA entries are what can be shown without a GPU;
`make gpu-check` is the command that proves the rest on the first GPU this project gets.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Claim:
    what: str
    shown_by: tuple[str, ...]  # test files, relative to the repository


PROVEN: dict[str, tuple[Claim, ...]] = {
    "cpu": (
        Claim("greedy output equals AR's at c=1 and c=8", ("tests/e2e/test_dflash_lossless.py",)),
        Claim("sampling keeps the target's distribution", ("tests/e2e/test_dflash_sampling.py",)),
        Claim("z-lab's per-step acceptance lengths", ("tests/e2e/test_dflash_vs_reference.py",)),
        Claim("stop/EOS/max_tokens/abort/streaming/errors", ("tests/e2e/test_dflash_requests.py",)),
    ),
    "cuda": (
        Claim("the drafter's block pass has no host sync and no data-dependent shape (checked on CPU)",
              ("tests/unit/test_draft_capture_check.py",)),
        Claim("the drafter's graph-capture decision and the start-up fallback hint (checked on CPU)",
              ("tests/adapter/test_draft_graphs.py",)),
    ),
}

UNPROVEN: dict[str, str] = {
    "cuda": ("never run on a GPU: serving, losslessness, CUDA graphs and the fa3/flashinfer/triton/trtllm_mha "
             "backends are unproven until `make gpu-check` passes there; DFLASH_SGLANG_IMPL=builtin serves "
             "DFLASH with SGLang's builtin worker meanwhile"),
}


def summary(device: str) -> str:
    """One line: what is shown on `device` ("cpu", "cuda", ...) and by which tests, then what is not."""
    kind = device.split(":")[0]
    claims = PROVEN.get(kind, ())
    shown = "; ".join(f"{c.what} ({', '.join(c.shown_by)})" for c in claims) or "nothing"
    missing = UNPROVEN.get(kind, "never run on this device" if kind not in PROVEN else "")
    return f"{kind}: shown: {shown}" + (f"; not shown: {missing}" if missing else "")
