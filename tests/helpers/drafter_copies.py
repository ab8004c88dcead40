"""A copy of a drafter checkpoint with config fields changed: drafters that do not fit their target."""

from __future__ import annotations

import json
import shutil
from pathlib import Path


def drafter_copy(drafter: Path, tmp: Path, name: str, **changes) -> Path:
    """`target_layer_ids` goes into `dflash_config`, every other change to the top level."""
    out = tmp / name
    shutil.copytree(drafter, out)
    config = json.loads((out / "config.json").read_text())
    for key, value in changes.items():
        if key == "target_layer_ids":
            config["dflash_config"][key] = value
        else:
            config[key] = value
    (out / "config.json").write_text(json.dumps(config))
    return out


def hidden_size(drafter: Path) -> int:
    return json.loads((drafter / "config.json").read_text())["hidden_size"]
