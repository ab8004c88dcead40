"""Write the tiny target + drafter pair with seeded random weights and the stdlib-trained tokenizer.

    python scripts/make_tiny_pair.py --out DIR [--seed N]

This is the starting point of the bundled pair, which is trained from it (scripts/train_target.py, then
scripts/train_drafter.py; see dflash_sglang/tiny_pair/MODEL_CARD.md). The same seed on the same Python writes
the same files byte for byte. `--out` has no default, so the committed trained pair is never overwritten.
"""

import argparse
from pathlib import Path

from dflash_sglang.training.tiny_pair import TinyPairSpec, make_tiny_pair

BUNDLED = Path(__file__).resolve().parents[1] / "dflash_sglang" / "tiny_pair"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help=f"output dir (the bundled pair is {BUNDLED})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights (default: 0)")
    args = parser.parse_args()
    spec = TinyPairSpec()
    print(f"seed {args.seed}, {spec}")
    target_dir, drafter_dir = make_tiny_pair(args.out, seed=args.seed, spec=spec)
    print(f"target:  {target_dir}")
    print(f"drafter: {drafter_dir}")


if __name__ == "__main__":
    main()
