"""Offline tools that make the models the project ships or trains (never imported at serving time).

- `tokenizer`: trains the byte-level BPE tokenizer on the running Python's standard library.
- `tiny_pair`: writes the bundled tiny target + drafter pair (seeded random weights) around that tokenizer.

Unlike the core, these modules may use `tokenizers`/`transformers`, but import them inside functions so that
importing `dflash_sglang.training` stays cheap.
"""
