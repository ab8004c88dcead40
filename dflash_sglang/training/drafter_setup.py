"""Everything a drafter training run starts from: the frozen target, the drafter, and the data.

The data is built once per run directory (or `--data` path) and reused by a resumed run or another
run on the same target, because regeneration is the slowest part after the training itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from dflash_sglang.drafter import Drafter
from dflash_sglang.training.corpus import load_tokenizer
from dflash_sglang.training.distill_data import (
    DATA_FILE,
    DistillData,
    build_distill_data,
    load_distill_data,
    save_distill_data,
)
from dflash_sglang.training.drafter_init import (
    config_for_target,
    drafter_config_dict,
    drafter_from_init,
    mask_token_id,
    new_drafter,
)
from dflash_sglang.training.frozen_target import FrozenTarget
from dflash_sglang.training.prompts import stdlib_prompts
from dflash_sglang.training.sampled_data import SampledData, build_sampled_data, load_sampled_data, save_sampled_data

if TYPE_CHECKING:
    from dflash_sglang.training.drafter_train import DrafterTrainArgs


def make_drafter(args: DrafterTrainArgs, target: FrozenTarget) -> Drafter:
    """From `args.init_dir` if given, else new and seeded; fp32 and trainable either way."""
    if args.init_dir is not None:
        drafter = drafter_from_init(args.init_dir, args.target_dir)
        _check_init_matches(args, drafter)
        return drafter
    mask_id = args.mask_token_id
    if mask_id is None:
        mask_id = mask_token_id(load_tokenizer(args.target_dir).get_vocab())
    layer_ids = None if args.target_layer_ids is None else list(args.target_layer_ids)
    config_dict = drafter_config_dict(
        target.model.config.to_dict(), args.num_layers, args.block_size, mask_id, layer_ids
    )
    return new_drafter(config_for_target(args.target_dir, config_dict), args.seed).train()


def _check_init_matches(args: DrafterTrainArgs, drafter: Drafter) -> None:
    """An init checkpoint fixes the drafter's shape: asking for another one is an error, not ignored."""
    c = drafter.config
    pairs = [("num_layers", args.num_layers, c.num_layers), ("block_size", args.block_size, c.block_size)]
    if args.target_layer_ids is not None:
        pairs.append(("target_layer_ids", list(args.target_layer_ids), list(c.target_layer_ids)))
    for name, asked, found in pairs:
        if asked != found:
            raise ValueError(f"{name}: expected the init checkpoint's {found}, got {asked}")


def make_data(args: DrafterTrainArgs, target: FrozenTarget, layer_ids: list[int]) -> DistillData:
    path = args.data_path if args.data_path is not None else args.out_dir / DATA_FILE
    if path.is_file():
        data = load_distill_data(path)
        if list(data.layer_ids) != layer_ids:
            raise ValueError(
                f"data {str(path)!r}: expected target features of layers {layer_ids}, got layers {list(data.layer_ids)}"
            )
        print(f"self-distill data: reusing {path} ({data.num_generated} generated tokens)")
        return data
    d = args.data
    tokenizer = load_tokenizer(args.target_dir)
    prompts = stdlib_prompts(
        tokenizer, list(d.prompt_lengths), d.prompts_per_length, args.seed, d.chat_share, d.corpus_root
    )
    data = build_distill_data(target, prompts, d.num_new, layer_ids, d.gen_batch)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_distill_data(data, path)
    return data


def make_sampled_data(args: DrafterTrainArgs, target: FrozenTarget, layer_ids: list[int]) -> SampledData:
    """The sampled data of `args.sampled` (reused when its file exists): prompts as the greedy data's,
    from their own seed, continued by sampling."""
    s = args.sampled
    if s.path.is_file():
        data = load_sampled_data(s.path)
        if list(data.layer_ids) != layer_ids:
            raise ValueError(
                f"sampled data {str(s.path)!r}: expected target features of layers {layer_ids}, "
                f"got layers {list(data.layer_ids)}"
            )
        _check_label_temperatures(data, s.row_temperature_labels, s.path)
        print(f"sampled data: reusing {s.path} ({data.num_generated} generated tokens)")
        return data
    d = args.data
    tokenizer = load_tokenizer(args.target_dir)
    prompts = stdlib_prompts(
        tokenizer, list(d.prompt_lengths), d.prompts_per_length, s.prompt_seed, d.chat_share, d.corpus_root
    )
    data = build_sampled_data(
        target, prompts, d.num_new, layer_ids, s.temperatures, s.top_k, s.sample_seed, d.gen_batch,
        s.row_temperature_labels,
    )
    s.path.parent.mkdir(parents=True, exist_ok=True)
    save_sampled_data(data, s.path)
    return data


def _check_label_temperatures(data: SampledData, row_labels: bool, path) -> None:
    """A reused file must hold the labels asked for: T = 1, or each row's sampling temperature."""
    for b in data.buckets:
        expected = b.temperatures if row_labels else torch.ones_like(b.temperatures)
        if not torch.equal(b.label_temperatures, expected):
            kind = "row-temperature" if row_labels else "temperature-1"
            raise ValueError(f"sampled data {str(path)!r}: expected {kind} labels, got label temperatures "
                             f"{sorted(set(b.label_temperatures.tolist()))}")


def prepare(args: DrafterTrainArgs) -> tuple[FrozenTarget, Drafter, DistillData]:
    target = FrozenTarget.from_dir(args.target_dir, dtype=torch.float32)
    drafter = make_drafter(args, target)
    data = make_data(args, target, list(drafter.config.target_layer_ids))
    return target, drafter, data
