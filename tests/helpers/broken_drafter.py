"""A copy of a drafter checkpoint with NaN and Inf written into some of its weights (the fault tests)."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

# (tensor, rows) poisoned: q_proj rows make the block's queries NaN, fc rows make the context K/V Inf/NaN
POISON = {"layers.0.self_attn.q_proj.weight": (slice(0, 8), float("nan")), "fc.weight": (slice(0, 4), float("inf"))}


def broken_drafter(drafter: Path, out: Path) -> Path:
    """`out`: the drafter's files, its weights with POISON applied; raises if a tensor is missing."""
    shutil.copytree(drafter, out)
    weights_path = out / "model.safetensors"
    weights = load_file(weights_path)
    for name, (rows, value) in POISON.items():
        assert name in weights, f"{name} not in {sorted(weights)}"
        weights[name] = weights[name].clone()
        weights[name][rows] = value
    save_file(weights, weights_path, metadata={"format": "pt"})
    assert not all(torch.isfinite(weights[name]).all() for name in POISON)
    return out
