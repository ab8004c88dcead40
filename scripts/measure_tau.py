"""Measure a pair's acceptance length with z-lab's dflash_generate on HumanEval prompts (fp32, CPU, greedy).

    python scripts/measure_tau.py --target dflash_sglang/tiny_pair/target --drafter dflash_sglang/tiny_pair/drafter
"""

import argparse
import json
from pathlib import Path

import torch

from dflash_sglang.training.acceptance import humaneval_prompts, measure_pair


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", type=Path, required=True)
    p.add_argument("--drafter", type=Path, required=True)
    p.add_argument("--num-prompts", type=int, default=30, help="the first N HumanEval problems, raw prompt")
    p.add_argument("--max-new-tokens", type=int, default=96)
    p.add_argument("--threads", type=int, help="torch threads")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    report = measure_pair(a.target, a.drafter, humaneval_prompts(a.num_prompts), a.max_new_tokens)
    print(json.dumps({**report, "threads": torch.get_num_threads()}, indent=2))


if __name__ == "__main__":
    main()
