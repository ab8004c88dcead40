"""Prompts for the drafter's training data, cut from the stdlib corpus.

Two kinds, half each: a window ending at a random line start (any code), and a window ending right
after a function's docstring (the shape of a HumanEval prompt: signature, docstring, body to come).
Every prompt of one length has exactly that many tokens, so a batch needs no padding. Optionally a
share of the prompts is wrapped as a ChatML user turn, so chat requests are in the drafter's data too.
"""

from __future__ import annotations

import ast
import random
from pathlib import Path

import torch

from dflash_sglang.training.tokenizer import IM_END, IM_START, corpus_paths, corpus_texts

WINDOW_CHARS = 4000  # text tokenized before a cut: far more than the longest prompt (about 3 bytes/token)


def docstring_ends(text: str) -> list[int]:
    """Character offsets just after the line that closes each function's docstring."""
    try:
        tree = ast.parse(text)
    except SyntaxError:  # a few stdlib files are templates or Python-2 examples: no docstring cuts there
        return []
    line_starts = [0]
    for line in text.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))
    ends = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and ast.get_docstring(node) is not None:
            end_line = node.body[0].end_lineno  # 1-based line of the closing quotes
            if len(node.body) > 1 and end_line < len(line_starts) - 1:
                ends.append(line_starts[end_line])
    return sorted(ends)


def line_starts(text: str) -> list[int]:
    return [i + 1 for i, ch in enumerate(text) if ch == "\n" and i + 1 < len(text)]


def last_tokens(tokenizer, text: str, cut: int, length: int) -> list[int] | None:
    """The `length` tokens that end at character `cut`, or None if the text before it is too short."""
    ids = tokenizer.encode(text[max(0, cut - WINDOW_CHARS) : cut], add_special_tokens=False).ids
    return ids[-length:] if len(ids) >= length else None


def chat_prompt(tokenizer, text: str, cut: int, length: int) -> list[int] | None:
    """A user turn holding code that ends at `cut`, then the assistant's turn start: `length` tokens."""
    head = tokenizer.encode(f"{IM_START}user\n", add_special_tokens=False).ids
    tail = tokenizer.encode(f"{IM_END}\n{IM_START}assistant\n", add_special_tokens=False).ids
    body = last_tokens(tokenizer, text, cut, length - len(head) - len(tail))
    return None if body is None else head + body + tail


def stdlib_prompts(
    tokenizer,
    lengths: list[int],
    per_length: int,
    seed: int,
    chat_share: float = 0.0,
    root: Path | None = None,
) -> dict[int, torch.Tensor]:
    """{length: [per_length, length] int64}: prompts drawn with `random.Random(seed)`."""
    rng = random.Random(seed)
    texts = list(corpus_texts(corpus_paths(root)))
    docstring_cuts = [(i, cut) for i, text in enumerate(texts) for cut in docstring_ends(text)]
    prompts: dict[int, torch.Tensor] = {}
    for length in lengths:
        rows: list[list[int]] = []
        for attempt in range(100 * per_length):
            if len(rows) == per_length:
                break
            if attempt % 2 == 0:
                index, cut = rng.choice(docstring_cuts)
            else:
                index = rng.randrange(len(texts))
                cut = rng.choice(line_starts(texts[index]) or [len(texts[index])])
            make = chat_prompt if rng.random() < chat_share else last_tokens
            ids = make(tokenizer, texts[index], cut, length)
            if ids is not None:
                rows.append(ids)
        if len(rows) < per_length:
            raise ValueError(f"prompt length: expected {per_length} stdlib windows of {length} tokens, got {len(rows)}")
        prompts[length] = torch.tensor(rows, dtype=torch.int64)
    return prompts
