"""The drafter's training data: prompts, the target's own greedy continuations, and their target features.

Greedy self-generated data is the recipe's biggest lever (calibration.md: tau 3.25 with greedy data
against 1.93 with sampled data at equal time): the drafter learns what *this* target does next,
loops included. The target is frozen, so its features are computed once here, not every step.
Sequences are grouped by prompt length (`Bucket`): all rows of a bucket have the same length, and
only positions from the prompt's last token on can be anchors.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from dflash_sglang.training.frozen_target import FrozenTarget

DATA_FILE = "distill_data.pt"


@dataclass(frozen=True)
class Bucket:
    tokens: torch.Tensor  # [rows, seq] int64: prompt then greedy continuation
    features: torch.Tensor  # [rows, seq, n_feat * hidden] fp32 target features
    prompt_len: int

    def anchor_range(self, block_size: int) -> tuple[int, int]:
        """First and last anchor whose `blk - 1` labels are all target-generated."""
        return self.prompt_len - 1, self.tokens.shape[1] - block_size


@dataclass(frozen=True)
class DistillData:
    buckets: tuple[Bucket, ...]
    layer_ids: tuple[int, ...]  # the target layers the features come from
    seconds: dict  # wall time of each stage, for the model card

    @property
    def num_generated(self) -> int:
        return sum(b.tokens.shape[0] * (b.tokens.shape[1] - b.prompt_len) for b in self.buckets)

    def sample(self, batch_size: int, generator: torch.Generator) -> Bucket:
        """`batch_size` random rows of one bucket, the bucket chosen in proportion to its rows."""
        rows = torch.tensor([b.tokens.shape[0] for b in self.buckets], dtype=torch.float32)  # [n_buckets]
        bucket = self.buckets[int(torch.multinomial(rows, 1, generator=generator))]
        picks = torch.randint(0, bucket.tokens.shape[0], (batch_size,), generator=generator)  # [bs]
        return Bucket(tokens=bucket.tokens[picks], features=bucket.features[picks], prompt_len=bucket.prompt_len)


def build_distill_data(
    target: FrozenTarget,
    prompts: dict[int, torch.Tensor],  # {prompt_len: [rows, prompt_len]}
    num_new: int,
    layer_ids: list[int],
    gen_batch: int = 96,
) -> DistillData:
    """Continue every prompt greedily by `num_new` tokens, then take the target features."""
    from tqdm import tqdm

    buckets, seconds = [], {"generate": 0.0, "features": 0.0}
    total = sum(p.shape[0] for p in prompts.values())
    with tqdm(total=total, desc="self-distill data", unit="seq") as bar:
        for prompt_len, rows in sorted(prompts.items()):
            started = time.perf_counter()
            tokens = torch.cat([target.greedy_continue(chunk, num_new) for chunk in rows.split(gen_batch)])
            seconds["generate"] += time.perf_counter() - started
            started = time.perf_counter()
            features = target.features(tokens, layer_ids)  # [rows, seq, n_feat * hidden]
            seconds["features"] += time.perf_counter() - started
            buckets.append(Bucket(tokens=tokens, features=features, prompt_len=prompt_len))
            bar.update(rows.shape[0])
    seconds = {k: round(v, 1) for k, v in seconds.items()}
    return DistillData(buckets=tuple(buckets), layer_ids=tuple(layer_ids), seconds=seconds)


def save_distill_data(data: DistillData, path: Path) -> None:
    buckets = [{"tokens": b.tokens, "features": b.features, "prompt_len": b.prompt_len} for b in data.buckets]
    torch.save({"buckets": buckets, "layer_ids": list(data.layer_ids), "seconds": data.seconds}, path)


def load_distill_data(path: Path) -> DistillData:
    raw = torch.load(path, map_location="cpu", weights_only=True)
    buckets = tuple(Bucket(**b) for b in raw["buckets"])
    return DistillData(buckets=buckets, layer_ids=tuple(raw["layer_ids"]), seconds=raw["seconds"])
