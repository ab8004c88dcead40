"""Offline tools that make the models the project ships or trains (never imported at serving time).

The tiny pair's starting point:
- `tokenizer`: trains the byte-level BPE tokenizer on the running Python's standard library.
- `tiny_pair`: the pair's shapes (`TinyPairSpec`) and seeded random weights around that tokenizer.

Target pre-training (`scripts/train_target.py`):
- `corpus`: the stdlib as token ids, split by file; `target_pretrain`: the next-token LM loop.

The DFlash recipe (`scripts/train_drafter.py`):
- `prompts`, `frozen_target`, `distill_data`: stdlib prompts, the target's greedy continuations and features.
- `blocks`: anchors, blocks, the block-causal mask and the position-weighted loss.
- `soft_labels`, `soft_loss`, `sampled_data`, `sampled_objective`: the optional calibration objective (the
  target's sampled continuations, its top-K distributions, the soft cross-entropy) for speculative sampling.
- `drafter_init`, `drafter_setup`, `drafter_forward`, `drafter_train`: the drafter, its masked forward, the loop.
- `run_state`: budgets, learning-rate schedule, resumable state (both loops).
- `acceptance`: tau with z-lab's `dflash_generate` and n-gram lookup's tau (`scripts/measure_tau.py`).

Unlike the core, these modules may use `tokenizers`/`transformers` (and z-lab's `dflash` to measure), but
import them inside functions so that importing `dflash_sglang.training` stays cheap.
"""
