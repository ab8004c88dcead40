"""`--speculative-dflash-tree-budget N|auto` in SGLang's own parser (so `--help` lists it).

SGLang's ServerArgs has no field for it, so the parsed value rides on the record as bookkeeping
(`_dflash_tree_budget`), which pickling carries to the scheduler processes, where the worker reads it.
Hook points:
- AROUND `ServerArgs.add_cli_args(parser)`: adds the flag;
- AROUND `ServerArgs.from_cli_args(args)`: checks the value (one error line) and keeps it.
"""

from __future__ import annotations

from dflash_sglang.spec.tree_budget import TREE_BUDGET_FLAG, TreeBudget, parse_tree_budget

ADD_CLI_ARGS = "sglang.srt.server_args.ServerArgs.add_cli_args"
FROM_CLI_ARGS = "sglang.srt.server_args.ServerArgs.from_cli_args"
DEST = "speculative_dflash_tree_budget"
ATTR = "_dflash_tree_budget"
HELP = ("dflash-sglang: verify a DDTree of N tokens per request (root included) built from the drafter's "
        "block pass, instead of the chain of --speculative-num-draft-tokens; 'auto' picks the width per "
        "step. Default: the chain.")


def around_add_cli_args(original, parser, *args, **kwargs):
    result = original(parser, *args, **kwargs)
    parser.add_argument(TREE_BUDGET_FLAG, dest=DEST, type=str, default=None, metavar="N|auto", help=HELP)
    return result


def around_from_cli_args(original, cls, args, *rest, **kwargs):
    server_args = original(cls, args, *rest, **kwargs)
    raw = getattr(args, DEST, None)
    if raw is not None:
        try:
            parse_tree_budget(raw, block_size=1)  # the range does not depend on the block size
        except ValueError as err:
            from dflash_sglang.sglang_adapter.startup import StartupError

            raise StartupError(str(err)) from None
        setattr(server_args, ATTR, raw)  # an underscore name: bookkeeping, which the record allows
    return server_args


def tree_budget_of(server_args, block_size: int) -> TreeBudget:
    """The launch's TreeBudget (chain when the flag is absent)."""
    return parse_tree_budget(getattr(server_args, ATTR, None), block_size)


def install() -> None:
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    HookRegistry.register(ADD_CLI_ARGS, around_add_cli_args, HookType.AROUND)
    HookRegistry.register(FROM_CLI_ARGS, around_from_cli_args, HookType.AROUND)
