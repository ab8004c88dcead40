"""`make gpu-check`'s command line, parsed once into a frozen `GpuCheckConfig`.

Every bad value becomes a `UserError`: one line naming the flag, what it expects and what it got.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from dflash_sglang.benchmark.args import OneLineParser
from dflash_sglang.errors import UserError

BACKENDS = ("fa3", "flashinfer", "triton", "trtllm_mha")
DTYPES = ("bfloat16", "float32")
DTYPE_ALIASES = {"bf16": "bfloat16", "bfloat16": "bfloat16", "fp32": "float32", "float32": "float32"}
GRAPHS = {"on": True, "off": False}
DEFAULT_OUTPUT = Path("build/gpu-check/gpu-check.json")


@dataclass(frozen=True)
class GpuCheckConfig:
    backends: tuple[str, ...]  # asked for; the plan drops those this device lacks, saying why
    dtypes: tuple[str, ...]  # SGLang --dtype values
    graphs: tuple[bool, ...]  # True: CUDA graphs on (SGLang's default); False: --disable-cuda-graph
    num_prompts: int
    max_new_tokens: int
    budget_s: float  # no new cell starts once the next one is predicted to end past this
    output: Path
    log_dir: Path | None  # None: next to the JSON


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="make gpu-check", description="Serve the bundled pair with AR, our DFLASH and SGLang's "
                      "builtin on every attention backend, dtype and graph mode of this GPU; check losslessness.")
    p.add_argument("--backends", default=",".join(BACKENDS), help=f"comma list from {','.join(BACKENDS)}")
    p.add_argument("--dtypes", default="bf16,fp32", help="comma list from bf16, fp32")
    p.add_argument("--graphs", default="on,off", help="comma list from on, off")
    p.add_argument("--num-prompts", type=int, default=16, help="HumanEval prompts per concurrency")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--budget-min", type=float, default=7.0, help="wall-clock minutes for the servers "
                                                                  "(cells that would not fit are listed as not run)")
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON report")
    p.add_argument("--log-dir", type=Path, help="server logs (default: next to the JSON)")
    return p


def _choices(flag: str, text: str, allowed: dict[str, object]) -> tuple:
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    bad = [name for name in names if name not in allowed]
    if bad or not names:
        raise UserError(f"{flag}: expected a comma list of {', '.join(dict.fromkeys(allowed))}, got {text!r}")
    values = [allowed[name] for name in names]
    if len(set(values)) != len(values):
        raise UserError(f"{flag}: expected each value once, got {text!r}")
    return tuple(values)


def parse_config(argv: list[str] | None = None) -> GpuCheckConfig:
    args = build_parser().parse_args(argv)
    for flag, value, minimum in (("--num-prompts", args.num_prompts, 1), ("--max-new-tokens", args.max_new_tokens, 1),
                                 ("--budget-min", args.budget_min, 0.5)):
        if value < minimum:
            raise UserError(f"{flag}: expected a number >= {minimum}, got {value}")
    return GpuCheckConfig(
        backends=_choices("--backends", args.backends, {b: b for b in BACKENDS}),
        dtypes=_choices("--dtypes", args.dtypes, DTYPE_ALIASES),
        graphs=_choices("--graphs", args.graphs, GRAPHS),
        num_prompts=args.num_prompts, max_new_tokens=args.max_new_tokens, budget_s=60.0 * args.budget_min,
        output=args.output, log_dir=args.log_dir,
    )
