"""How each compared method's SGLang server is started: its flags and environment.

- `ar`: the target alone, one token per forward.
- `dflash`: our worker (the plugin takes over `--speculative-algorithm DFLASH`).
- `builtin`: SGLang's own DFLASH worker, selected by `DFLASH_SGLANG_IMPL=builtin`.
- `ngram`: SGLang's NGRAM with as many draft tokens as the DFLASH block, so every method verifies the
  same width per step; SGLang's default BFS breadth makes its drafts a tree.
"""

from __future__ import annotations

from dataclasses import dataclass

from dflash_sglang.benchmark.args import BenchConfig

BUILTIN_ENV = {"DFLASH_SGLANG_IMPL": "builtin"}


@dataclass(frozen=True)
class ServerRecipe:
    method: str
    args: tuple[str, ...]  # after --model-path and the CPU flags
    env: dict[str, str]  # added to this process's environment


def _speculative_args(config: BenchConfig, method: str) -> tuple[str, ...]:
    block = ("--speculative-num-draft-tokens", str(config.block_size))
    if method == "ar":
        return ()
    if method == "ngram":
        return ("--speculative-algorithm", "NGRAM", *block)
    assert method in ("dflash", "builtin"), method
    assert config.draft_model is not None, "args.parse_config requires a drafter for DFLASH methods"
    return ("--speculative-algorithm", "DFLASH", "--speculative-draft-model-path", str(config.draft_model), *block)


def recipe(config: BenchConfig, method: str) -> ServerRecipe:
    dtype = ("--dtype", config.dtype) if config.dtype else ()
    args = (*dtype, *_speculative_args(config, method), *config.server_args)
    return ServerRecipe(method=method, args=args, env=dict(BUILTIN_ENV) if method == "builtin" else {})
