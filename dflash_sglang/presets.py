"""Presets: one JSON file per supported model in `configs/`, its values taken from the model cards (seeds).

A field the seeds do not state is absent, never guessed; `source` says for each value which seed it
came from (and, for some absent ones, why they are absent). `configs/` at the top of the repository is
the only copy: `dflash_sglang/configs` is a symlink to it, so a source checkout and an editable install
read it in place, and setuptools copies the files into the wheel as package data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from importlib import resources
from typing import Any

from dflash_sglang.errors import UserError

BUNDLED_PREFIX = "bundled:"  # the tiny pair shipped inside the package: "bundled:target", "bundled:drafter"
MAMBA_STRATEGIES = ("auto", "no_buffer", "extra_buffer", "extra_buffer_lazy")


@dataclass(frozen=True)
class Preset:
    name: str
    model: str  # the model's name in the seeds' tables
    drafter: str  # hub id, or "bundled:drafter"
    target: str | None = None  # hub id, or "bundled:target"; None when the seeds give no id
    block_size: int | None = None  # --speculative-num-draft-tokens
    attention_backend: str | None = None
    draft_attention_backend: str | None = None
    mamba_strategy: str | None = None  # --mamba-radix-cache-strategy, for hybrid (Mamba/GDN) targets
    draft_window: int | None = None  # --speculative-draft-window-size, added by `serve --long-context` only
    tp_size: int | None = None
    mem_fraction: float | None = None  # --mem-fraction-static
    dtype: str | None = None
    trust_remote_code: bool = False
    device: str | None = None
    thinking_in_benchmark: bool | None = None  # chat template's thinking switch in the cards' benchmarks
    extra_args: tuple[str, ...] = ()  # server flags without a field of their own
    env: tuple[tuple[str, str], ...] = ()  # variables the card exports before launching
    source: tuple[tuple[str, str], ...] = ()  # field -> which seed the value came from

    def __post_init__(self) -> None:
        _check_type(self, "block_size", int, minimum=2)
        _check_type(self, "draft_window", int, minimum=1)
        _check_type(self, "tp_size", int, minimum=1)
        _check_type(self, "mem_fraction", float)
        if self.mem_fraction is not None and not 0.0 < self.mem_fraction < 1.0:
            raise ValueError(f"preset {self.name}: mem_fraction: expected a float in (0, 1), got {self.mem_fraction}")
        if self.mamba_strategy is not None and self.mamba_strategy not in MAMBA_STRATEGIES:
            raise ValueError(f"preset {self.name}: mamba_strategy: expected one of {list(MAMBA_STRATEGIES)}, "
                             f"got {self.mamba_strategy!r}")
        unsourced = [name for name in self.set_fields() if name not in dict(self.source)]
        if unsourced:
            raise ValueError(f"preset {self.name}: source: expected a note for every set field, got none for {unsourced}")

    def set_fields(self) -> list[str]:
        """Fields that carry a value (all but name and source, unless left at their default)."""
        return [f.name for f in fields(self) if f.name not in ("name", "source") and getattr(self, f.name) != f.default]


def _check_type(preset: Preset, name: str, kind: type, minimum: int | None = None) -> None:
    value = getattr(preset, name)
    if value is None:
        return
    if not isinstance(value, kind) or isinstance(value, bool) or (minimum is not None and value < minimum):
        expected = f"an {kind.__name__}" + (f" >= {minimum}" if minimum is not None else "")
        raise ValueError(f"preset {preset.name}: {name}: expected {expected}, got {value!r}")


def preset_dir():
    return resources.files("dflash_sglang") / "configs"


def names() -> list[str]:
    return sorted(p.name.removesuffix(".json") for p in preset_dir().iterdir() if p.name.endswith(".json"))


def from_dict(name: str, raw: dict[str, Any]) -> Preset:
    known = {f.name for f in fields(Preset)} - {"name"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"preset {name}: expected fields among {sorted(known)}, got unknown {unknown}")
    values = dict(raw)
    values["extra_args"] = tuple(values.get("extra_args", ()))
    values["env"] = tuple(sorted(values.get("env", {}).items()))
    values["source"] = tuple(sorted(values.get("source", {}).items()))
    return Preset(name=name, **values)


def load(name: str) -> Preset:
    """The preset `name`; a UserError listing the valid names when there is none."""
    valid = names()
    if name not in valid:
        raise UserError(f"unknown preset {name!r}: expected one of {', '.join(valid)}")
    with (preset_dir() / f"{name}.json").open() as f:
        return from_dict(name, json.load(f))
