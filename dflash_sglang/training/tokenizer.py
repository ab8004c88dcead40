"""The project's byte-level BPE tokenizer, trained on the running Python's standard library.

The corpus is real, offline and the same on every machine with the same Python: the stdlib `.py` sources, in
sorted order, without the test suites (they are full of deliberately odd code) and without `site-packages`
(it differs per machine). The trainer was checked to give byte-identical output with 1 or 2 Rayon threads, so
no thread setting is forced; `tests/unit/test_tiny_pair.py` trains twice and compares the bytes.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sysconfig
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

# Fixed ids 0..4, in this order: the trainer assigns special tokens the first ids.
SPECIAL_TOKENS = ("<|endoftext|>", "<|pad|>", "<|MASK|>", "<|im_start|>", "<|im_end|>")
EOS_TOKEN, PAD_TOKEN, MASK_TOKEN, IM_START, IM_END = SPECIAL_TOKENS
DEFAULT_VOCAB_SIZE = 4096

# Any directory with one of these names, at any depth below the stdlib root, is left out.
EXCLUDED_DIRS = frozenset({"test", "tests", "idle_test", "site-packages", "__pycache__"})

# Qwen2/Qwen3's pre-tokenizer split: single digits, a leading space joins the word, newline runs stay whole.
SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
PROVENANCE_FILE = "tokenizer_corpus.json"


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def corpus_paths(root: Path | None = None) -> list[Path]:
    """The stdlib `.py` files of the corpus, sorted by their path relative to `root`."""
    root = stdlib_root() if root is None else root
    paths = [p for p in root.rglob("*.py") if not EXCLUDED_DIRS & set(p.relative_to(root).parts[:-1])]
    return sorted(paths, key=lambda p: p.relative_to(root).as_posix())


def corpus_texts(paths: list[Path]) -> Iterator[str]:
    for path in paths:
        # Stdlib sources are UTF-8 (PEP 3120); "replace" keeps a stray byte from aborting, deterministically.
        yield path.read_bytes().decode("utf-8", errors="replace")


def corpus_fingerprint(root: Path | None = None) -> dict:
    """What the tokenizer was trained on: two machines with equal fingerprints train equal tokenizers."""
    root = stdlib_root() if root is None else root
    paths = corpus_paths(root)
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return {
        "corpus": "python stdlib .py sources",
        "python": platform.python_version(),
        "excluded_dirs": sorted(EXCLUDED_DIRS),
        "num_files": len(paths),
        "num_bytes": sum(p.stat().st_size for p in paths),
        "sha256": digest.hexdigest(),
    }


def train_tokenizer(vocab_size: int = DEFAULT_VOCAB_SIZE, root: Path | None = None):
    """A `tokenizers.Tokenizer` with exactly `vocab_size` ids, the special tokens at ids 0..4."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        # All 256 byte symbols, so any text (not only the corpus's characters) encodes without an unknown token.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus_texts(corpus_paths(root)), trainer)
    if tokenizer.get_vocab_size() != vocab_size:
        raise ValueError(
            f"vocab_size: expected the trainer to reach {vocab_size}, got {tokenizer.get_vocab_size()} "
            "(the corpus has too few distinct merges)"
        )
    for token_id, token in enumerate(SPECIAL_TOKENS):
        assert tokenizer.token_to_id(token) == token_id, (token, tokenizer.token_to_id(token))
    return tokenizer


def write_tokenizer(out_dir: Path, vocab_size: int = DEFAULT_VOCAB_SIZE) -> Path:
    """Train and write `tokenizer.json` plus its corpus provenance into `out_dir`; return the json path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "tokenizer.json"
    train_tokenizer(vocab_size).save(str(path), pretty=True)
    provenance = {**corpus_fingerprint(), "tokenizers": version("tokenizers"), "vocab_size": vocab_size}
    (out_dir / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")
    return path
