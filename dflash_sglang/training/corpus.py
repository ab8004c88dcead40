"""The stdlib corpus as token ids: one stream of documents for target pre-training, split by file.

The files are `tokenizer.corpus_paths()` (the same corpus the tokenizer was trained on), each
document followed by `<|endoftext|>`. Every `VAL_EVERY`-th file (in sorted order) is held out, so the
validation loss measures code the target never saw, and the split is the same on every run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from dflash_sglang.training.tokenizer import EOS_TOKEN, SPECIAL_TOKENS, corpus_paths, corpus_texts

VAL_EVERY = 40  # 734 stdlib files -> 19 held out (about 2.5 % of the corpus)
EOS_ID = SPECIAL_TOKENS.index(EOS_TOKEN)


def load_tokenizer(tokenizer_dir: str | Path):
    """The `tokenizers.Tokenizer` saved beside a model (`tokenizer.json`)."""
    from tokenizers import Tokenizer

    path = Path(tokenizer_dir) / "tokenizer.json"
    if not path.is_file():
        raise ValueError(f"tokenizer: expected {str(path)!r} to exist, got no such file")
    return Tokenizer.from_file(str(path))


def split_paths(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """(train, val) files: every `VAL_EVERY`-th file is validation."""
    train = [p for i, p in enumerate(paths) if i % VAL_EVERY != VAL_EVERY - 1]
    val = [p for i, p in enumerate(paths) if i % VAL_EVERY == VAL_EVERY - 1]
    return train, val


def token_stream(tokenizer, paths: list[Path]) -> torch.Tensor:
    """[num_tokens] int64: the files' tokens, each document ended by `<|endoftext|>`."""
    encodings = tokenizer.encode_batch(list(corpus_texts(paths)), add_special_tokens=False)
    ids: list[int] = []
    for encoding in encodings:
        ids.extend(encoding.ids)
        ids.append(EOS_ID)
    return torch.tensor(ids, dtype=torch.int64)


@dataclass(frozen=True)
class Corpus:
    train: torch.Tensor  # [train_tokens] int64
    val: torch.Tensor  # [val_tokens] int64

    @classmethod
    def from_stdlib(cls, tokenizer, root: Path | None = None) -> Corpus:
        train_paths, val_paths = split_paths(corpus_paths(root))
        return cls(train=token_stream(tokenizer, train_paths), val=token_stream(tokenizer, val_paths))

    def train_batch(self, batch_size: int, seq_len: int, generator: torch.Generator) -> torch.Tensor:
        """[batch, seq_len + 1]: windows at random offsets of the train stream (inputs and shifted labels)."""
        starts = torch.randint(0, len(self.train) - seq_len - 1, (batch_size,), generator=generator)  # [batch]
        return torch.stack([self.train[s : s + seq_len + 1] for s in starts.tolist()])

    def val_batches(self, batch_size: int, seq_len: int, max_windows: int) -> list[torch.Tensor]:
        """Fixed, non-overlapping validation windows, each batch [<= batch, seq_len + 1]."""
        count = min(max_windows, (len(self.val) - 1) // seq_len)
        windows = [self.val[i * seq_len : i * seq_len + seq_len + 1] for i in range(count)]
        return [torch.stack(windows[i : i + batch_size]) for i in range(0, count, batch_size)]
