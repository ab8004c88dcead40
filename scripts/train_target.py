"""Pre-train the tiny target on the stdlib corpus (next-token LM, AdamW, warm-up + cosine).

    python scripts/make_tiny_pair.py --out /tmp/init            # the seeded random pair to start from
    python scripts/train_target.py --init /tmp/init/target --out /tmp/run/target --max-steps 500
"""

import argparse
from pathlib import Path

import torch

from dflash_sglang.training.run_state import Budget
from dflash_sglang.training.target_pretrain import TargetTrainArgs, train_target


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--init", type=Path, required=True, help="model dir to start from (config, tokenizer, weights)")
    p.add_argument("--out", type=Path, required=True, help="output model dir (also holds trainer_state.pt)")
    p.add_argument("--max-steps", type=int, help="step budget (reproducible schedule)")
    p.add_argument("--time-budget", type=float, help="seconds of training")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup-steps", type=int, default=30)
    p.add_argument("--seq-len", type=int, default=384)
    p.add_argument("--batch-size", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--save-dtype", choices=["float32", "bfloat16"], default="bfloat16")
    p.add_argument("--threads", type=int, help="torch threads (1 is faster when other jobs share the cores)")
    p.add_argument("--resume", action="store_true", help="continue from --out/trainer_state.pt")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    budget = Budget(max_steps=a.max_steps, time_budget=a.time_budget, lr=a.lr, warmup_steps=a.warmup_steps)
    log = train_target(TargetTrainArgs(
        init_dir=a.init, out_dir=a.out, budget=budget, seq_len=a.seq_len, batch_size=a.batch_size, seed=a.seed,
        eval_every=a.eval_every, save_dtype=getattr(torch, a.save_dtype), resume=a.resume,
    ))
    print(f"seed {log['seed']}: {log['steps']} steps in {log['seconds']} s, final val loss {log['val'][-1][1]}")


if __name__ == "__main__":
    main()
