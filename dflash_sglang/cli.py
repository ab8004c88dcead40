"""`dflash-sglang`: the user's command line. Errors are one line and exit 2, never a traceback."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dflash_sglang import __version__
from dflash_sglang.bundled import TINY_PAIR_KINDS
from dflash_sglang.errors import UserError


def _cmd_env(args: argparse.Namespace) -> None:
    from dflash_sglang import harness

    for line in harness.export_lines(args.dir, tp_size=args.tp_size):
        print(line)


def _cmd_harness_build(args: argparse.Namespace) -> None:
    from dflash_sglang import harness

    lib_dir = harness.build(args.dir)
    if lib_dir is None:
        print("a real NVIDIA driver is present; the CPU harness is not needed and was not built")
    else:
        print(f"CPU harness ready in {lib_dir}")


def _cmd_tiny_pair(args: argparse.Namespace) -> None:
    from dflash_sglang.bundled import tiny_pair

    target, drafter = tiny_pair(args.kind)
    print(f"TARGET={target}")
    print(f"DRAFTER={drafter}")


def _cmd_serve(args: argparse.Namespace) -> None:
    from dflash_sglang import preset_launch, presets

    command = preset_launch.launch_command(presets.load(args.preset), args.model_path, args.draft_path, args.extra,
                                           long_context=args.long_context)
    if args.dry_run:
        print(command.shell())
    else:
        preset_launch.run(command)


def _cmd_doctor(args: argparse.Namespace) -> None:
    from dflash_sglang import doctor

    doctor.run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dflash-sglang", description=__doc__)
    parser.add_argument("--version", action="version", version=f"dflash-sglang {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    env = sub.add_parser("env", help="print shell export lines that let stock SGLang run on this host")
    env.add_argument("--dir", type=Path, default=None, help="harness directory (default: inside the venv)")
    env.add_argument("--tp-size", type=int, default=1,
                     help="also export what SGLang's --tp-size N needs on a CPU host (thread binding, no pynccl)")
    env.set_defaults(func=_cmd_env)

    harness = sub.add_parser("harness", help="the CPU harness for hosts without an NVIDIA driver")
    harness_sub = harness.add_subparsers(dest="harness_command", required=True)
    build = harness_sub.add_parser("build", help="build the stub driver library")
    build.add_argument("--dir", type=Path, default=None, help="harness directory (must exist)")
    build.set_defaults(func=_cmd_harness_build)

    pair = sub.add_parser("tiny-pair", help="print TARGET=<dir> and DRAFTER=<dir> of a bundled tiny pair")
    pair.add_argument("--kind", choices=TINY_PAIR_KINDS, default="dense",
                      help="dense: a Qwen3 target (default); hybrid: a Qwen3Next (Gated DeltaNet) target")
    pair.set_defaults(func=_cmd_tiny_pair)

    serve = sub.add_parser("serve", help="print or run the sglang.launch_server command of a model preset")
    serve.add_argument("--preset", required=True, help="a file name in configs/ without .json, e.g. qwen3-8b, tiny")
    serve.add_argument("--model-path", type=Path, default=None, help="local target directory (default: preset's id)")
    serve.add_argument("--draft-path", type=Path, default=None, help="local drafter directory (default: preset's id)")
    serve.add_argument("--dry-run", action="store_true", help="print the command instead of running it")
    serve.add_argument("--long-context", action="store_true",
                       help="add the preset's draft window (--speculative-draft-window-size), the cards' tip for "
                            "long-context and agentic work")
    serve.add_argument("extra", nargs="*", help="after --: more sglang.launch_server arguments (they win)")
    serve.set_defaults(func=_cmd_serve)

    doctor = sub.add_parser("doctor", help="check SGLang, the plugin, the device and optionally a drafter")
    doctor.add_argument("--draft-path", type=Path, default=None, help="drafter directory to check")
    doctor.add_argument("--model-path", type=Path, default=None, help="its target's directory")
    doctor.set_defaults(func=_cmd_doctor)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except UserError as err:
        print(f"dflash-sglang: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
