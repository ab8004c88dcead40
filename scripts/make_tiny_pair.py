"""Write the bundled tiny target + drafter pair (seeded random weights, stdlib-trained tokenizer).

    python scripts/make_tiny_pair.py [--out DIR] [--seed N]

The default output is the package's own `dflash_sglang/tiny_pair`, which is committed: rerunning with the same
seed on the same Python rewrites it byte for byte.
"""

import argparse
from pathlib import Path

from dflash_sglang.training.tiny_pair import TinyPairSpec, make_tiny_pair

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "dflash_sglang" / "tiny_pair"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output dir (default: {DEFAULT_OUT})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights (default: 0)")
    args = parser.parse_args()
    spec = TinyPairSpec()
    print(f"seed {args.seed}, {spec}")
    target_dir, drafter_dir = make_tiny_pair(args.out, seed=args.seed, spec=spec)
    print(f"target:  {target_dir}")
    print(f"drafter: {drafter_dir}")


if __name__ == "__main__":
    main()
