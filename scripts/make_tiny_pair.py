"""Write a tiny target + drafter pair with seeded random weights and the stdlib-trained tokenizer.

    python scripts/make_tiny_pair.py --out DIR [--seed N] [--kind dense|hybrid]

`dense` (the default) is a Qwen3 target; `hybrid` a Qwen3Next one (Gated DeltaNet and full attention, MoE MLPs)
with the dense pair's tokenizer. Each is the starting point of a bundled pair, which is trained from it
(scripts/train_target.py, then scripts/train_drafter.py; see the MODEL_CARD.md next to each bundled pair). The
same seed on the same Python and torch writes the same files byte for byte. `--out` has no default, so a
committed trained pair is never overwritten.
"""

import argparse
from pathlib import Path

from dflash_sglang.training.tiny_hybrid_pair import HybridPairSpec, make_hybrid_pair
from dflash_sglang.training.tiny_pair import TinyPairSpec, make_tiny_pair

BUNDLED = Path(__file__).resolve().parents[1] / "dflash_sglang"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help=f"output dir (the bundled pairs are in {BUNDLED})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights (default: 0)")
    parser.add_argument("--kind", choices=["dense", "hybrid"], default="dense", help="target architecture")
    args = parser.parse_args()
    if args.kind == "dense":
        spec, make = TinyPairSpec(), make_tiny_pair
    else:
        spec, make = HybridPairSpec(), make_hybrid_pair
    print(f"seed {args.seed}, {spec}")
    target_dir, drafter_dir = make(args.out, seed=args.seed, spec=spec)
    print(f"target:  {target_dir}")
    print(f"drafter: {drafter_dir}")


if __name__ == "__main__":
    main()
