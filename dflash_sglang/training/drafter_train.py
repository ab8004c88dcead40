"""Training a DFlash drafter against a frozen target (the recipe of anchors.md §1.4, see `blocks.py`).

1. Prompts from the stdlib (`prompts.py`), continued greedily by the target itself, and the target
   features of every sequence, computed once (`distill_data.py`; cached in `distill_data.pt`).
2. Each step: `batch_size` sequences, `anchors_per_seq` random anchors each, their blocks denoised in
   one masked forward of our `Drafter` (`drafter_forward.py`), position-weighted cross-entropy.
   Optionally (`args.sampled`) plus a weighted soft cross-entropy on a batch of the target's sampled
   continuations against its own distributions, which calibrates q for speculative sampling
   (`sampled_data.py`, `sampled_objective.py`).
3. AdamW on the drafter only, warm-up + cosine over the budget; a z-lab-format checkpoint (config.json
   + model.safetensors, loadable by `load_drafter` and z-lab's `from_pretrained`) and a resumable
   `trainer_state.pt` are written every `eval_every` steps and at the end.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dflash_sglang.drafter import Drafter, save_drafter
from dflash_sglang.training.blocks import (
    accepted_drafts,
    default_gamma,
    position_weights,
    sample_anchors,
    weighted_block_loss,
)
from dflash_sglang.training.distill_data import Bucket, DistillData
from dflash_sglang.training.drafter_forward import block_logits
from dflash_sglang.training.drafter_setup import make_sampled_data, prepare
from dflash_sglang.training.frozen_target import FrozenTarget
from dflash_sglang.training.run_state import Budget, RunState, advance_bar, load_state, progress_bar, save_state
from dflash_sglang.training.sampled_data import SampledData
from dflash_sglang.training.sampled_objective import SampledArgs, sampled_step_loss, validate_sampled
from dflash_sglang.training.target_pretrain import adamw

LOG_FILE = "train_log.json"
VAL_SEED = 1234  # fixed validation anchors, whatever the training seed


@dataclass(frozen=True)
class DataArgs:
    prompt_lengths: tuple[int, ...] = (32, 64, 128, 192, 256)
    prompts_per_length: int = 96
    num_new: int = 192  # greedy tokens the target appends to each prompt
    val_rows: int = 8  # rows per prompt length held out for validation
    chat_share: float = 0.0  # share of prompts wrapped as a ChatML user turn
    gen_batch: int = 96
    corpus_root: Path | None = None  # None: the running Python's stdlib (tests pass a small tree)


@dataclass(frozen=True)
class DrafterTrainArgs:
    target_dir: Path
    out_dir: Path
    budget: Budget
    init_dir: Path | None = None  # a drafter checkpoint to start from; else a new one (below)
    num_layers: int = 1
    block_size: int = 8
    target_layer_ids: tuple[int, ...] | None = None  # None: z-lab's rule
    mask_token_id: int | None = None  # None: the tokenizer's <|MASK|>
    batch_size: int = 8
    anchors_per_seq: int = 32
    gamma: float | None = None  # None: default_gamma(block_size)
    seed: int = 0
    weight_decay: float = 0.01
    eval_every: int = 100
    data: DataArgs = field(default_factory=DataArgs)
    data_path: Path | None = None  # default: out_dir / distill_data.pt (reused when it exists)
    sampled: SampledArgs | None = None  # add the soft objective on sampled data (`sampled_objective.py`)
    resume: bool = False


def block_loss(
    drafter: Drafter, target: FrozenTarget, batch: Bucket, anchors: torch.Tensor, weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(weighted loss, accepted drafts [bs, n_blocks]) of the blocks at anchors [bs, n_blocks]."""
    block_size = weights.shape[0] + 1
    logits, blocks = block_logits(drafter, target, batch.tokens, batch.features, anchors, block_size)
    return weighted_block_loss(logits, blocks.labels, weights), accepted_drafts(logits.detach(), blocks.labels)


@torch.no_grad()
def validate(drafter: Drafter, target: FrozenTarget, val: DistillData, weights: torch.Tensor, anchors: int) -> dict:
    """Loss and the in-distribution tau proxy (1 + mean accepted drafts) on fixed held-out anchors."""
    generator = torch.Generator().manual_seed(VAL_SEED)
    losses, accepted = [], []
    for bucket in val.buckets:
        first, last = bucket.anchor_range(weights.shape[0] + 1)
        picks = sample_anchors(first, last, anchors, bucket.tokens.shape[0], generator)
        loss, acc = block_loss(drafter, target, bucket, picks, weights)
        losses.append(loss.item())
        accepted.append(acc.flatten().float())
    return {"loss": round(sum(losses) / len(losses), 4), "tau_proxy": round(1.0 + torch.cat(accepted).mean().item(), 3)}


def split_rows(data: DistillData, val_rows: int) -> tuple[DistillData, DistillData]:
    """(train, val): the last `val_rows` rows of each bucket are validation."""
    def part(rows: slice) -> tuple[Bucket, ...]:
        return tuple(Bucket(b.tokens[rows], b.features[rows], b.prompt_len) for b in data.buckets)

    keep = slice(0, -val_rows) if val_rows else slice(None)
    train = DistillData(part(keep), data.layer_ids, data.seconds)
    return train, DistillData(part(slice(-val_rows, None) if val_rows else slice(0, 0)), data.layer_ids, {})


def train_drafter(args: DrafterTrainArgs) -> dict:
    """Train, write the checkpoint to `args.out_dir`, and return the log (also in `train_log.json`)."""
    torch.manual_seed(args.seed)
    target, drafter, data = prepare(args)
    train, val = split_rows(data, args.data.val_rows)
    sampled = _sampled_split(args, target, drafter)  # (train, val) or None
    gamma = default_gamma(args.block_size) if args.gamma is None else args.gamma
    weights = position_weights(drafter.config.block_size, gamma)  # [blk - 1]
    optimizer = adamw(drafter, args.budget.lr, args.weight_decay)
    generator = torch.Generator().manual_seed(args.seed)
    run = load_state(args.out_dir, drafter, optimizer, generator) if args.resume else RunState(seed=args.seed)
    log = json.loads((args.out_dir / LOG_FILE).read_text()) if args.resume else _new_log(args, data, gamma, sampled)
    print(f"drafter training: seed {run.seed}, from step {run.step}, {train.num_generated} generated tokens")
    bar = progress_bar("drafter", args.budget, run)
    while args.budget.progress(run.step, run.elapsed) < 1.0:
        started = time.perf_counter()
        stats = _train_step(drafter, target, train, sampled, weights, optimizer, generator, args, run)
        run.step += 1
        log["train"].append([run.step, *stats])
        loss = stats[0]
        last = args.budget.progress(run.step, run.elapsed + time.perf_counter() - started) >= 1.0
        if (run.step % args.eval_every == 0 or last) and val.buckets[0].tokens.shape[0]:
            log["val"].append([run.step, _validate(drafter, target, val, sampled, weights, args.anchors_per_seq)])
            bar.set_postfix(loss=f"{loss:.3f}", **{f"val_{k}": v for k, v in log["val"][-1][1].items()})
        run.elapsed += time.perf_counter() - started
        if run.step % args.eval_every == 0 or last:
            _save(args.out_dir, drafter, optimizer, generator, run, log)
        advance_bar(bar, args.budget, run)
    bar.close()
    _save(args.out_dir, drafter, optimizer, generator, run, log)
    return log


def _sampled_split(args: DrafterTrainArgs, target, drafter) -> tuple[SampledData, SampledData] | None:
    if args.sampled is None:
        return None
    data = make_sampled_data(args, target, list(drafter.config.target_layer_ids))
    return data.split(args.data.val_rows)


def _validate(drafter, target, val, sampled, weights, anchors) -> dict:
    out = validate(drafter, target, val, weights, anchors)
    if sampled is not None and sampled[1].buckets[0].tokens.shape[0]:
        out.update(validate_sampled(drafter, target, sampled[1], weights, anchors))
    return out


def _train_step(drafter, target, train, sampled, weights, optimizer, generator, args, run) -> list[float]:
    """One optimizer step; [greedy loss, its tau proxy] (+ [soft loss, sampled tau proxy] with sampled data)."""
    batch = train.sample(args.batch_size, generator)
    first, last = batch.anchor_range(drafter.config.block_size)
    anchors = sample_anchors(first, last, args.anchors_per_seq, args.batch_size, generator)
    for group in optimizer.param_groups:
        group["lr"] = args.budget.lr_at(run.step, run.elapsed)
    loss, accepted = block_loss(drafter, target, batch, anchors, weights)
    stats = [round(loss.item(), 4), round(1.0 + accepted.float().mean().item(), 3)]
    if sampled is not None:
        s = args.sampled
        soft, expected = sampled_step_loss(
            drafter, target, sampled[0], weights, s.batch_size or args.batch_size, args.anchors_per_seq, generator
        )
        loss = loss + s.weight * soft
        stats += [round(soft.item(), 4), round(1.0 + expected, 3)]
    loss.backward()
    torch.nn.utils.clip_grad_norm_(drafter.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return stats


def _new_log(args: DrafterTrainArgs, data: DistillData, gamma: float, sampled) -> dict:
    data_args = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args.data).items()}
    data_log = {**data_args, "generated_tokens": data.num_generated, "seconds": data.seconds}
    log = {
        "seed": args.seed, "lr": args.budget.lr, "gamma": gamma, "batch_size": args.batch_size,
        "anchors_per_seq": args.anchors_per_seq, "max_steps": args.budget.max_steps,
        "time_budget": args.budget.time_budget, "layer_ids": list(data.layer_ids), "data": data_log,
        "init": None if args.init_dir is None else str(args.init_dir), "train": [], "val": [],
    }
    if sampled is not None:
        sampled_args = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args.sampled).items()}
        log["sampled"] = {**sampled_args, "generated_tokens": sampled[0].num_generated, "seconds": sampled[0].seconds}
    return log


def _save(out_dir: Path, drafter: Drafter, optimizer, generator, run: RunState, log: dict) -> None:
    save_drafter(drafter, out_dir)
    save_state(out_dir, run, drafter, optimizer, generator)
    log.update(steps=run.step, seconds=round(run.elapsed, 1), threads=torch.get_num_threads())
    (out_dir / LOG_FILE).write_text(json.dumps(log) + "\n")

