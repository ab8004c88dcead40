"""Sampled distillation data: the target's own SAMPLED continuations, their features and soft labels.

The greedy data (`distill_data.py`) teaches the drafter the target's argmax, which is all greedy
requests need; a sampled request accepts a draft with probability min(1, p / q), so there q must be
calibrated to the target's distribution. Here the same kind of prompts are continued by sampling
(a per-row temperature from a mix, e.g. half 0.7 and half 1.0, seeded), and every generated position
keeps the target's temperature-1 distribution given the sampled prefix, as its top K (`soft_labels.py`).
The logits that drew the next token are those labels, so they cost no extra forward.

Optionally (`relabel_at_row_temperature`) the labels are the target's distribution at the row's own
sampling temperature T, softmax(logits / T): the loss then compares it with the drafter's q at the same
T, softmax(drafter_logits / T), which is exactly the q that speculative sampling at T draws from, and
the mean over T-sampled prefixes is the marginal a parallel drafter should match at that T. Each row
records its labels' temperature (`label_temperatures`), so data and loss cannot disagree about it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from dflash_sglang.training.distill_data import Bucket
from dflash_sglang.training.frozen_target import FrozenTarget
from dflash_sglang.training.soft_labels import TopK, cat, top_k_of

SAMPLED_DATA_FILE = "sampled_data.pt"


@dataclass(frozen=True)
class SampledBucket(Bucket):
    labels: TopK  # [rows, seq - prompt_len, K]: p(token at prompt_len + i | tokens before it), T = 1
    temperatures: torch.Tensor  # [rows] fp32: the temperature each row was sampled at
    label_temperatures: torch.Tensor  # [rows] fp32: labels are softmax(target logits / this), q is compared at it

    def block_labels(self, anchors: torch.Tensor, block_size: int) -> TopK:
        """anchors [bs, n_blocks] -> the soft labels of each block's mask positions, [bs, n_blocks, blk - 1, K]."""
        offsets = torch.arange(1, block_size)  # [blk - 1]
        index = anchors[:, :, None] + offsets - self.prompt_len  # [bs, n_blocks, blk - 1] into the generated part
        assert int(index.min()) >= 0 and int(index.max()) < self.labels.probs.shape[1], (index.min(), index.max())
        rows = torch.arange(anchors.shape[0])[:, None, None]  # [bs, 1, 1]
        return self.labels.index(rows, index)

    def rows(self, picks) -> SampledBucket:
        return SampledBucket(
            tokens=self.tokens[picks], features=self.features[picks], prompt_len=self.prompt_len,
            labels=self.labels.index(picks), temperatures=self.temperatures[picks],
            label_temperatures=self.label_temperatures[picks],
        )


@dataclass(frozen=True)
class SampledData:
    buckets: tuple[SampledBucket, ...]
    layer_ids: tuple[int, ...]
    seconds: dict

    @property
    def num_generated(self) -> int:
        return sum(b.labels.probs.shape[0] * b.labels.probs.shape[1] for b in self.buckets)

    def sample(self, batch_size: int, generator: torch.Generator) -> SampledBucket:
        """`batch_size` random rows of one bucket, the bucket chosen in proportion to its rows."""
        rows = torch.tensor([b.tokens.shape[0] for b in self.buckets], dtype=torch.float32)  # [n_buckets]
        bucket = self.buckets[int(torch.multinomial(rows, 1, generator=generator))]
        return bucket.rows(torch.randint(0, bucket.tokens.shape[0], (batch_size,), generator=generator))

    def split(self, val_rows: int) -> tuple[SampledData, SampledData]:
        """(train, val): the last `val_rows` rows of each bucket are validation."""
        train = tuple(b.rows(slice(0, b.tokens.shape[0] - val_rows)) for b in self.buckets)
        val = tuple(b.rows(slice(b.tokens.shape[0] - val_rows, None)) for b in self.buckets)
        return SampledData(train, self.layer_ids, self.seconds), SampledData(val, self.layer_ids, {})


@torch.no_grad()
def sample_continue(
    target: FrozenTarget, prompts: torch.Tensor, num_new: int, temperatures: torch.Tensor, top_k: int,
    generator: torch.Generator, label_temperatures: torch.Tensor | None = None,
) -> tuple[torch.Tensor, TopK]:
    """prompts [n, prompt_len], temperatures [n] -> (tokens [n, prompt_len + num_new], labels [n, num_new, K]),
    the labels at `label_temperatures` [n] (default 1). Like `FrozenTarget.greedy_continue`, no stop at an
    end-of-text token."""
    label_t = torch.ones_like(temperatures) if label_temperatures is None else label_temperatures  # [n]
    out = target.model(input_ids=prompts, use_cache=True)
    cache, tokens, labels = out.past_key_values, [], []
    for step in range(num_new):
        logits = out.logits[:, -1].float()  # [n, vocab]
        labels.append(top_k_of(logits / label_t[:, None], top_k))  # each [n, K]
        probs = torch.softmax(logits / temperatures[:, None], dim=-1)  # [n, vocab]
        tokens.append(torch.multinomial(probs, 1, generator=generator)[:, 0])  # [n]
        if step + 1 < num_new:
            out = target.model(input_ids=tokens[-1][:, None], past_key_values=cache, use_cache=True)
    stacked = TopK(probs=torch.stack([t.probs for t in labels], 1), ids=torch.stack([t.ids for t in labels], 1))
    return torch.cat([prompts, torch.stack(tokens, dim=1)], dim=1), stacked


def row_temperatures(rows: int, temperatures: tuple[float, ...]) -> torch.Tensor:
    """[rows]: the mix assigned in turn (0.7, 1.0, 0.7, ...), so every bucket and chunk holds all of it."""
    return torch.tensor([temperatures[i % len(temperatures)] for i in range(rows)], dtype=torch.float32)


def build_sampled_data(
    target: FrozenTarget,
    prompts: dict[int, torch.Tensor],  # {prompt_len: [rows, prompt_len]}
    num_new: int,
    layer_ids: list[int],
    temperatures: tuple[float, ...] = (0.7, 1.0),
    top_k: int = 64,
    seed: int = 0,
    gen_batch: int = 96,
    row_temperature_labels: bool = False,
) -> SampledData:
    """Continue every prompt by sampling `num_new` tokens, keeping soft labels (at T = 1, or at each row's
    sampling temperature), then take the target features."""
    from tqdm import tqdm

    generator = torch.Generator().manual_seed(seed)
    buckets, seconds = [], {"generate": 0.0, "features": 0.0}
    with tqdm(total=sum(p.shape[0] for p in prompts.values()), desc="sampled data", unit="seq") as bar:
        for prompt_len, rows in sorted(prompts.items()):
            started = time.perf_counter()
            temps = row_temperatures(rows.shape[0], temperatures)  # [rows]
            label_temps = temps.clone() if row_temperature_labels else torch.ones_like(temps)  # [rows]
            parts = [
                sample_continue(target, chunk, num_new, t, top_k, generator, lt)
                for chunk, t, lt in zip(rows.split(gen_batch), temps.split(gen_batch), label_temps.split(gen_batch))
            ]
            tokens = torch.cat([p[0] for p in parts])  # [rows, prompt_len + num_new]
            labels = cat([p[1] for p in parts], dim=0)  # [rows, num_new, K]
            seconds["generate"] += time.perf_counter() - started
            started = time.perf_counter()
            features = target.features(tokens, layer_ids)  # [rows, seq, n_feat * hidden]
            seconds["features"] += time.perf_counter() - started
            buckets.append(SampledBucket(tokens, features, prompt_len, labels, temps, label_temps))
            bar.update(rows.shape[0])
    seconds = {k: round(v, 1) for k, v in seconds.items()}
    return SampledData(buckets=tuple(buckets), layer_ids=tuple(layer_ids), seconds=seconds)


def save_sampled_data(data: SampledData, path: Path) -> None:
    buckets = [
        {"tokens": b.tokens, "features": b.features, "prompt_len": b.prompt_len, "probs": b.labels.probs,
         "ids": b.labels.ids, "temperatures": b.temperatures, "label_temperatures": b.label_temperatures}
        for b in data.buckets
    ]
    torch.save({"buckets": buckets, "layer_ids": list(data.layer_ids), "seconds": data.seconds}, path)


def load_sampled_data(path: Path) -> SampledData:
    raw = torch.load(path, map_location="cpu", weights_only=True)
    buckets = []
    for b in raw["buckets"]:
        labels = TopK(probs=b["probs"], ids=b["ids"])
        labels.check()
        label_temps = b.get("label_temperatures", torch.ones_like(b["temperatures"]))  # older files: T = 1
        temps = b["temperatures"]
        buckets.append(SampledBucket(b["tokens"], b["features"], b["prompt_len"], labels, temps, label_temps))
    return SampledData(buckets=tuple(buckets), layer_ids=tuple(raw["layer_ids"]), seconds=raw["seconds"])


@torch.no_grad()
def relabel_at_row_temperature(target: FrozenTarget, data: SampledData, top_k: int, chunk: int = 16) -> SampledData:
    """The same rows, labelled with softmax(target logits / the row's sampling temperature): one teacher-forced
    forward per row gives the logits at every generated position given its sampled prefix."""
    buckets = []
    for b in data.buckets:
        parts = []
        for tokens, temps in zip(b.tokens.split(chunk), b.temperatures.split(chunk)):
            logits = target.model(input_ids=tokens).logits[:, b.prompt_len - 1 : -1].float()  # [n, gen, vocab]
            parts.append(top_k_of(logits / temps[:, None, None], top_k))  # each [n, gen, K]
        labels = cat(parts, dim=0)  # [rows, gen, K]
        temps = b.temperatures
        buckets.append(SampledBucket(b.tokens, b.features, b.prompt_len, labels, temps, temps.clone()))
    return SampledData(tuple(buckets), data.layer_ids, data.seconds)
