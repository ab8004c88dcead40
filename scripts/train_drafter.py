"""Train a DFlash drafter against a frozen Hugging Face target on the target's own greedy continuations.

    python scripts/train_drafter.py --target /tmp/run/target --init /tmp/init/drafter --out /tmp/run/drafter \
        --max-steps 2000

With --sampled-data, each step also adds --sampled-weight times a soft cross-entropy on the target's sampled
continuations (their top-K target distributions), which calibrates the drafter for speculative sampling:

    python scripts/train_drafter.py --target T --init T_drafter --out /tmp/run/drafter --data greedy.pt \
        --sampled-data sampled.pt --sampled-weight 1.0 --max-steps 600 --lr 3e-4 --warmup-steps 20
"""

import argparse
from pathlib import Path

import torch

from dflash_sglang.training.drafter_train import DataArgs, DrafterTrainArgs, train_drafter
from dflash_sglang.training.run_state import Budget
from dflash_sglang.training.sampled_objective import SampledArgs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", type=Path, required=True, help="the target model dir (HF Qwen3 or Llama)")
    p.add_argument("--out", type=Path, required=True, help="checkpoint dir (z-lab format + trainer_state.pt)")
    p.add_argument("--init", type=Path, help="drafter checkpoint to start from (default: a new seeded one)")
    p.add_argument("--num-layers", type=int, default=1)
    p.add_argument("--block-size", type=int, default=8)
    p.add_argument("--target-layer-ids", type=int, nargs="+", help="default: z-lab's build_target_layer_ids")
    p.add_argument("--mask-token-id", type=int, help="default: the tokenizer's <|MASK|>")
    p.add_argument("--max-steps", type=int, help="step budget (reproducible schedule)")
    p.add_argument("--time-budget", type=float, help="seconds of training (data generation excluded)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup-steps", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--anchors-per-seq", type=int, default=32)
    p.add_argument("--gamma", type=float, help="loss decay; default 4 for block 8, 7 for block 16")
    p.add_argument("--prompts-per-length", type=int, default=96)
    p.add_argument("--num-new", type=int, default=192, help="greedy tokens generated per prompt")
    p.add_argument("--chat-share", type=float, default=0.0, help="share of prompts in ChatML form")
    p.add_argument("--data", type=Path, help="self-distill data file (built if missing; default --out/distill_data.pt)")
    p.add_argument("--sampled-data", type=Path, help="sampled data file (built if missing); enables the soft objective")
    p.add_argument("--sampled-weight", type=float, default=1.0, help="soft loss weight (the greedy loss has 1)")
    p.add_argument("--sampled-temperatures", type=float, nargs="+", default=[0.7, 1.0], help="sampling mix, per row")
    p.add_argument("--sampled-top-k", type=int, default=64, help="soft-label entries stored per position")
    p.add_argument("--sampled-batch-size", type=int, help="sampled sequences per step (default --batch-size)")
    p.add_argument("--sampled-row-temperature-labels", action="store_true",
                   help="soft labels and q at each row's sampling temperature (default: T = 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--threads", type=int, help="torch threads (1 is faster when other jobs share the cores)")
    p.add_argument("--resume", action="store_true", help="continue from --out/trainer_state.pt")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    log = train_drafter(DrafterTrainArgs(
        target_dir=a.target, out_dir=a.out, init_dir=a.init, num_layers=a.num_layers, block_size=a.block_size,
        target_layer_ids=tuple(a.target_layer_ids) if a.target_layer_ids else None, mask_token_id=a.mask_token_id,
        budget=Budget(max_steps=a.max_steps, time_budget=a.time_budget, lr=a.lr, warmup_steps=a.warmup_steps),
        batch_size=a.batch_size, anchors_per_seq=a.anchors_per_seq, gamma=a.gamma, seed=a.seed,
        eval_every=a.eval_every, data_path=a.data, resume=a.resume,
        data=DataArgs(prompts_per_length=a.prompts_per_length, num_new=a.num_new, chat_share=a.chat_share),
        sampled=_sampled_args(a),
    ))
    print(f"seed {log['seed']}: {log['steps']} steps in {log['seconds']} s, final val {log['val'][-1][1]}")


def _sampled_args(a) -> SampledArgs | None:
    if a.sampled_data is None:
        return None
    return SampledArgs(
        path=a.sampled_data, weight=a.sampled_weight, temperatures=tuple(a.sampled_temperatures),
        top_k=a.sampled_top_k, batch_size=a.sampled_batch_size,
        row_temperature_labels=a.sampled_row_temperature_labels,
    )


if __name__ == "__main__":
    main()
