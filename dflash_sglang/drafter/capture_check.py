"""Can the drafter's block pass be captured in a CUDA graph? Checked on any device, the CPU included.

A CUDA graph replays a fixed sequence of kernels on fixed buffers. A pass that reads a tensor's value
on the host (`.item()`, `.tolist()`, `.cpu()`, `if tensor:`) or makes a shape from data (`nonzero`,
boolean indexing) cannot be captured: the first syncs the stream mid-capture, the second changes the
kernels from one replay to the next. Two checks, each proving part of that without a GPU:
- the pass runs on `meta` tensors, which carry shapes and no data: every host read and every
  data-dependent shape raises there, and nothing else does;
- TorchDynamo traces the pass as one graph (`fullgraph=True`): no Python-level break either. Since
  torch 2.14 Dynamo keeps a bare `.item()` inside its graph, hence the first check.
The SGLang adapter runs the same layers and head; only the attention core is SGLang's (RadixAttention,
which SGLang's graph runners capture for every backend).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable

import torch
from torch import nn

from dflash_sglang.drafter.context import ContextKV
from dflash_sglang.drafter.model import Drafter


class NotCapturableError(RuntimeError):
    """The pass reads device data on the host, has a data-dependent shape, or breaks Dynamo's graph."""


def block_pass(
    drafter: Drafter,
    block_embeds: torch.Tensor,  # [bs, blk, hidden] the block `[anchor, MASK...]`, embedded
    block_positions: torch.Tensor,  # [bs, blk]
    context: ContextKV,  # context K/V, padded to one capacity for every request
    anchors: torch.Tensor,  # [bs] read by DFlash2's selector
    lm_head_weight: torch.Tensor,  # [vocab, hidden]
) -> torch.Tensor:
    """What a draft step runs on the device: the drafter over block + context, then the greedy head.
    Returns the draft tokens [bs, blk - 1]."""
    hidden = drafter(block_embeds, block_positions, context)  # [bs, blk, hidden]
    return drafter.propose(hidden, anchors, lm_head_weight)


def to_meta(value):
    """A copy on the meta device (modules, tensors, ContextKV); anything else as it is."""
    if isinstance(value, nn.Module):
        return copy.deepcopy(value).to("meta")
    if isinstance(value, torch.Tensor):
        return value.to("meta")
    if isinstance(value, ContextKV):
        return dataclasses.replace(value, keys=[to_meta(k) for k in value.keys],
                                   values=[to_meta(v) for v in value.values],
                                   positions=to_meta(value.positions), lens=to_meta(value.lens))
    return value


def check_capturable(fn: Callable[..., torch.Tensor], *args) -> torch.Tensor:
    """Raise NotCapturableError unless `fn(*args)` passes both checks; return the traced run's output
    (on the real arguments), for the caller to compare with an eager run."""
    name = getattr(fn, "__name__", repr(fn))
    try:
        fn(*[to_meta(a) for a in args])
    except (RuntimeError, NotImplementedError) as err:
        raise NotCapturableError(f"{name} fails without device data (a host read or a data-dependent shape): "
                                 f"{_first_line(err)}") from None
    torch._dynamo.reset()  # a cached trace of an earlier `fn` must not stand in for this one
    try:
        return torch.compile(fn, fullgraph=True, backend="eager", dynamic=False)(*args)
    except torch._dynamo.exc.TorchDynamoException as err:
        raise NotCapturableError(f"{name} breaks the graph: {_first_line(err)}") from None
    finally:
        torch._dynamo.reset()


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
