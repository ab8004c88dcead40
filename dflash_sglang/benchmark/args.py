"""The benchmark's command line, parsed once into a frozen `BenchConfig`.

The flags follow z-lab's `dflash benchmark` (`--backend --base-url --model --dataset --num-prompts
--concurrency --max-new-tokens --temperature`), plus `--compare` to start one server per method here.
Every bad value becomes a `UserError`: one line naming the flag, what it expects and what it got.
"""

from __future__ import annotations

import argparse
import json
import shlex
from dataclasses import dataclass
from pathlib import Path

from dflash_sglang.errors import UserError

METHODS = ("ar", "ngram", "dflash", "builtin")
DRAFTER_METHODS = ("dflash", "builtin")  # methods that need `--draft-model`
DEFAULT_COMPARE = "ar,dflash"
DEFAULT_BLOCK_SIZE = 8


@dataclass(frozen=True)
class BenchConfig:
    base_url: str | None  # benchmark this running server instead of starting servers
    methods: tuple[str, ...]  # servers to start, in order; empty with base_url
    model: Path | None  # target; None = the bundled tiny pair's
    draft_model: Path | None
    datasets: tuple[str, ...]  # "humaneval" or a JSONL path
    num_prompts: int
    concurrencies: tuple[int, ...]
    max_new_tokens: int
    temperature: float
    ignore_eos: bool
    block_size: int  # DFLASH block = NGRAM draft tokens, so both verify the same width
    dtype: str | None  # None: SGLang's default
    output: Path
    log_dir: Path | None  # None: a fresh temporary directory
    timeout_s: float
    warmup_requests: int
    label: str | None  # the method name for --base-url (default: from the server's own info)
    server_args: tuple[str, ...]  # passed through to every server started


class OneLineParser(argparse.ArgumentParser):
    """argparse's errors become UserError, so the CLI prints one line and no usage block."""

    def error(self, message: str):
        raise UserError(message)


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m dflash_sglang.benchmark",
                      description="Output tok/s, acceptance length, latency and speedup vs AR of SGLang servers.")
    p.add_argument("--backend", default="sglang", help="only `sglang` (accepted for z-lab compatibility)")
    p.add_argument("--base-url", help="benchmark this running server (no server is started)")
    p.add_argument("--compare", help=f"methods to start here, one at a time, from {','.join(METHODS)} "
                                      f"(default {DEFAULT_COMPARE})")
    p.add_argument("--model", type=Path, help="target model directory (default: the bundled tiny pair)")
    p.add_argument("--draft-model", type=Path, help="DFlash drafter directory (default: the bundled tiny pair)")
    p.add_argument("--dataset", default="humaneval", help="`humaneval` or a JSONL file of prompts; comma list")
    p.add_argument("--num-prompts", type=int, default=32)
    p.add_argument("--concurrency", default="1", help="one or more, e.g. `1,8`")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--temperature", type=float, default=0.0, help="0 for greedy decoding")
    p.add_argument("--ignore-eos", action="store_true", help="decode exactly --max-new-tokens per request")
    p.add_argument("--block-size", type=int, help="DFLASH block size and NGRAM draft tokens "
                                                  "(default: the drafter's, else 8)")
    p.add_argument("--dtype", help="server --dtype (default: float32 for the tiny pair, else SGLang's)")
    p.add_argument("--output", type=Path, default=Path("dflash-benchmark.json"),
                   help="JSON report; the PNG plot is written next to it")
    p.add_argument("--log-dir", type=Path, help="server logs (default: a temporary directory)")
    p.add_argument("--timeout-s", type=float, default=3600.0, help="per request")
    p.add_argument("--warmup-requests", type=int, default=2)
    p.add_argument("--label", help="method name for --base-url (default: from the server)")
    p.add_argument("--server-args", default="", help="extra flags for every server started, as one string: "
                                                           "--server-args='--flag value'")
    return p


def parse_methods(text: str) -> tuple[str, ...]:
    names = tuple(name.strip().lower() for name in text.split(",") if name.strip())
    bad = [name for name in names if name not in METHODS]
    if bad or not names:
        raise UserError(f"--compare: expected a comma list of {', '.join(METHODS)}, got {text!r}")
    if len(set(names)) != len(names):
        raise UserError(f"--compare: expected each method once, got {text!r}")
    return names


def parse_concurrencies(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise UserError(f"--concurrency: expected positive integers like `1,8`, got {text!r}") from None
    if not values or min(values) < 1:
        raise UserError(f"--concurrency: expected positive integers like `1,8`, got {text!r}")
    return values


def _positive(name: str, value: int | float, minimum: int | float = 1) -> None:
    if value < minimum:
        raise UserError(f"--{name}: expected a number >= {minimum}, got {value}")


def _drafter_block_size(draft_model: Path | None) -> int:
    """The drafter's own block size (its config.json), so the default matches what it was trained for."""
    if draft_model is None or not (draft_model / "config.json").is_file():
        return DEFAULT_BLOCK_SIZE
    config = json.loads((draft_model / "config.json").read_text())
    return int(config.get("dflash_config", {}).get("block_size", config.get("block_size", DEFAULT_BLOCK_SIZE)))


def _models(args: argparse.Namespace, methods: tuple[str, ...]) -> tuple[Path | None, Path | None, str | None]:
    """(target, drafter, dtype): the bundled tiny pair (served in float32) unless --model is given."""
    if args.model is None and methods:
        from dflash_sglang.bundled import tiny_pair

        target, drafter = tiny_pair()
        return target, args.draft_model or drafter, args.dtype or "float32"
    if args.model is not None and args.draft_model is None and set(methods) & set(DRAFTER_METHODS):
        raise UserError(f"--draft-model: expected a drafter directory for {', '.join(DRAFTER_METHODS)} "
                        f"with --model, got none")
    return args.model, args.draft_model, args.dtype


def parse_config(argv: list[str] | None = None) -> BenchConfig:
    args = build_parser().parse_args(argv)
    if args.backend != "sglang":
        raise UserError(f"--backend: expected sglang, got {args.backend!r}")
    if args.base_url and args.compare:
        raise UserError("--base-url and --compare: expected one of them, got both")
    methods = () if args.base_url else parse_methods(args.compare or DEFAULT_COMPARE)
    for name in ("num_prompts", "max_new_tokens", "warmup_requests"):
        _positive(name.replace("_", "-"), getattr(args, name), 0 if name == "warmup_requests" else 1)
    _positive("temperature", args.temperature, 0.0)
    _positive("timeout-s", args.timeout_s, 1.0)
    target, drafter, dtype = _models(args, methods)
    for flag, path in (("--model", target), ("--draft-model", drafter)):
        if methods and path is not None and not path.is_dir():
            raise UserError(f"{flag}: expected a model directory, got {str(path)!r}, which does not exist")
    block_size = args.block_size if args.block_size is not None else _drafter_block_size(drafter)
    _positive("block-size", block_size, 2)
    datasets = tuple(part.strip() for part in args.dataset.split(",") if part.strip())
    if not datasets:
        raise UserError(f"--dataset: expected `humaneval` or a JSONL path, got {args.dataset!r}")
    return BenchConfig(
        base_url=args.base_url.rstrip("/") if args.base_url else None, methods=methods,
        model=target, draft_model=drafter, datasets=datasets, num_prompts=args.num_prompts,
        concurrencies=parse_concurrencies(args.concurrency), max_new_tokens=args.max_new_tokens,
        temperature=args.temperature, ignore_eos=args.ignore_eos, block_size=block_size, dtype=dtype,
        output=args.output, log_dir=args.log_dir, timeout_s=args.timeout_s, warmup_requests=args.warmup_requests,
        label=args.label, server_args=tuple(shlex.split(args.server_args)),
    )
