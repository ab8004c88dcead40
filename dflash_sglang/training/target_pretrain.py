"""Pre-training the tiny target: a plain next-token language model on the stdlib corpus.

The target starts from a model directory (for the bundled pair, the seeded random draw that
`scripts/make_tiny_pair.py` writes) and is trained with AdamW and a warm-up + cosine schedule over a
step or time budget (`run_state.Budget`). The directory written is a complete Hugging Face model: the
init directory's config and tokenizer files plus the trained weights, stored in `save_dtype`.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from dflash_sglang.training.corpus import Corpus, load_tokenizer
from dflash_sglang.training.run_state import (
    STATE_FILE,
    Budget,
    RunState,
    advance_bar,
    load_state,
    progress_bar,
    save_state,
)

WEIGHTS_FILE = "model.safetensors"
LOG_FILE = "train_log.json"


@dataclass(frozen=True)
class TargetTrainArgs:
    init_dir: Path  # a Hugging Face causal LM (config, tokenizer, weights) to start from
    out_dir: Path
    budget: Budget
    seq_len: int = 384
    batch_size: int = 12
    seed: int = 0
    weight_decay: float = 0.1
    eval_every: int = 50  # steps between validation losses (and state saves)
    val_windows: int = 96  # validation windows of seq_len tokens
    save_dtype: torch.dtype = torch.bfloat16  # of the exported weights; the trainer state stays fp32
    resume: bool = False
    corpus_root: Path | None = None  # None: the running Python's stdlib (tests pass a small tree)


def load_causal_lm(model_dir: Path, dtype: torch.dtype = torch.float32):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)


def lm_loss(model, batch: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy of batch [b, seq_len + 1]."""
    logits = model(input_ids=batch[:, :-1]).logits  # [b, seq_len, vocab]
    return F.cross_entropy(logits.flatten(0, 1).float(), batch[:, 1:].flatten())


@torch.no_grad()
def validation_loss(model, batches: list[torch.Tensor]) -> float:
    model.eval()
    total = sum(lm_loss(model, b).item() * b.shape[0] for b in batches)
    model.train()
    return total / sum(b.shape[0] for b in batches)


def export_target(model, init_dir: Path, out_dir: Path, dtype: torch.dtype) -> None:
    """The init dir's non-weight files plus the weights (the tied `lm_head` left out, as HF saves it)."""
    from safetensors.torch import save_file

    from dflash_sglang.training.hf_checkpoint import checkpoint_state_dict

    out_dir.mkdir(parents=True, exist_ok=True)
    for path in sorted(init_dir.iterdir()):
        if path.is_file() and path.name not in (WEIGHTS_FILE, STATE_FILE, LOG_FILE):
            shutil.copyfile(path, out_dir / path.name)
    state = model.state_dict()
    if model.config.tie_word_embeddings:
        state.pop("lm_head.weight")
    tensors = {name: t.detach().to(dtype).contiguous() for name, t in checkpoint_state_dict(state).items()}
    save_file(tensors, str(out_dir / WEIGHTS_FILE), metadata={"format": "pt"})


def train_target(args: TargetTrainArgs) -> dict:
    """Train, export to `args.out_dir`, and return the log (also written to `train_log.json`)."""
    torch.manual_seed(args.seed)
    corpus = Corpus.from_stdlib(load_tokenizer(args.init_dir), args.corpus_root)
    val = corpus.val_batches(args.batch_size, args.seq_len, args.val_windows)
    model = load_causal_lm(args.init_dir).train()
    optimizer = adamw(model, args.budget.lr, args.weight_decay)
    generator = torch.Generator().manual_seed(args.seed)
    run = load_state(args.out_dir, model, optimizer, generator) if args.resume else RunState(seed=args.seed)
    log = _read_log(args.out_dir) if args.resume else _new_log(args, corpus)
    print(f"target pre-training: seed {run.seed}, from step {run.step}, {len(corpus.train)} train tokens")
    bar = progress_bar("target", args.budget, run)
    while args.budget.progress(run.step, run.elapsed) < 1.0:
        started = time.perf_counter()
        lr = args.budget.lr_at(run.step, run.elapsed)
        loss = train_step(model, optimizer, corpus.train_batch(args.batch_size, args.seq_len, generator), lr)
        run.step += 1
        log["train"].append([run.step, round(loss, 4)])
        last = args.budget.progress(run.step, run.elapsed + time.perf_counter() - started) >= 1.0
        if run.step % args.eval_every == 0 or last:
            log["val"].append([run.step, round(validation_loss(model, val), 4)])
            bar.set_postfix(loss=f"{loss:.3f}", val=f"{log['val'][-1][1]:.3f}", lr=f"{lr:.1e}")
        run.elapsed += time.perf_counter() - started
        if run.step % args.eval_every == 0 or last:
            save_state(args.out_dir, run, model, optimizer, generator)
            _write_log(args.out_dir, log, run)
        advance_bar(bar, args.budget, run)
    bar.close()
    export_target(model, args.init_dir, args.out_dir, args.save_dtype)
    _write_log(args.out_dir, log, run)
    return log


def adamw(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW that leaves the norm scales (the 1-d weights) undecayed."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95))


def train_step(model, optimizer: torch.optim.Optimizer, batch: torch.Tensor, lr: float) -> float:
    for group in optimizer.param_groups:
        group["lr"] = lr
    loss = lm_loss(model, batch)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.item()


def _new_log(args: TargetTrainArgs, corpus: Corpus) -> dict:
    return {
        "seed": args.seed, "seq_len": args.seq_len, "batch_size": args.batch_size, "lr": args.budget.lr,
        "max_steps": args.budget.max_steps, "time_budget": args.budget.time_budget,
        "train_tokens": len(corpus.train), "val_tokens": len(corpus.val), "train": [], "val": [],
    }


def _read_log(out_dir: Path) -> dict:
    return json.loads((out_dir / LOG_FILE).read_text())


def _write_log(out_dir: Path, log: dict, run: RunState) -> None:
    log.update(steps=run.step, seconds=round(run.elapsed, 1), threads=torch.get_num_threads())
    (out_dir / LOG_FILE).write_text(json.dumps(log) + "\n")
