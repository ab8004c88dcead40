"""Register torch fallbacks for the `torch.ops.sgl_kernel.*_cpu` ops that SGLang calls on CPU.

Those ops ship only in SGLang's separate CPU kernel build, which is not on PyPI; the PyPI `sgl_kernel`
is a CUDA build, so DFLASH and NGRAM die with `'_OpNamespace' 'sgl_kernel' object has no attribute ...`.
Each fallback is registered into the `sgl_kernel` namespace under the same name and schema, and only
when that op has no CPU kernel yet: a real CPU build always wins.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from dflash_sglang.log import log_once
from dflash_sglang.sglang_adapter.cpu import kv_ops, tree_ops

NAMESPACE = "sgl_kernel"

# (name, schema, body). Schemas follow the Python wrappers in `sgl_kernel/{kvcacheio,speculative}.py`,
# which call the ops positionally; `(a!)` marks the tensors an op writes.
SPEC_OPS = (
    ("copy_all_layer_kv_cache_cpu",
     "(Tensor data_ptrs, Tensor strides, Tensor tgt_loc, Tensor src_loc) -> ()",
     kv_ops.copy_all_layer_kv_cache),
    ("assign_req_to_token_pool_cpu",
     "(Tensor req_pool_indices, Tensor(a!) req_to_token, Tensor start_offset, Tensor end_offset, "
     "Tensor out_cache_loc, int pool_len) -> ()",
     kv_ops.assign_req_to_token_pool),
    ("assign_extend_cache_locs_cpu",
     "(Tensor req_pool_indices, Tensor req_to_token, Tensor start_offset, Tensor end_offset, "
     "Tensor(a!) out_cache_loc, int pool_len) -> ()",
     kv_ops.assign_extend_cache_locs),
    ("fill_accept_out_cache_loc_cpu",
     "(Tensor accept_index, Tensor out_cache_loc, Tensor(a!) accept_out_cache_loc) -> ()",
     kv_ops.fill_accept_out_cache_loc),
    ("reconstruct_indices_from_tree_mask_cpu",
     "(Tensor tree_mask, Tensor verified_seq_len, Tensor(a!) positions, Tensor(b!) retrive_index, "
     "Tensor(c!) retrive_next_token, Tensor(d!) retrive_next_sibling, int batch_size, "
     "int draft_token_num) -> ()",
     tree_ops.reconstruct_indices_from_tree_mask),
    ("verify_tree_greedy_cpu",
     "(Tensor(a!) predicts, Tensor(b!) accept_index, Tensor(c!) accept_token_num, Tensor candidates, "
     "Tensor retrive_index, Tensor retrive_next_token, Tensor retrive_next_sibling, "
     "Tensor target_predict) -> ()",
     tree_ops.verify_tree_greedy),
)


_library: torch.library.Library | None = None  # kept alive: dropping it would unregister our ops
_CPU_KEYS = ("CPU", "CompositeExplicitAutograd", "CompositeImplicitAutograd")


def has_cpu_kernel(name: str) -> bool:
    qualified = f"{NAMESPACE}::{name}"
    if not torch._C._dispatch_has_kernel(qualified):  # no schema at all
        return False
    return any(torch._C._dispatch_has_kernel_for_dispatch_key(qualified, key) for key in _CPU_KEYS)


OpSpecs = tuple[tuple[str, str, Callable], ...]


def register_missing(specs: OpSpecs, what: str = "torch implementations") -> list[str]:
    """Register each op of `specs` that has no CPU kernel; return the names registered."""
    global _library
    import sgl_kernel  # noqa: F401  load the real ops first, so that we only ever fill gaps

    registered = []
    for name, schema, body in specs:
        if has_cpu_kernel(name):
            continue
        if _library is None:
            _library = torch.library.Library(NAMESPACE, "FRAGMENT")
        if not torch._C._dispatch_has_kernel(f"{NAMESPACE}::{name}"):
            _library.define(name + schema)
        _library.impl(name, body, "CPU")
        registered.append(name)
    if registered:
        log_once(f"cpu-ops:{','.join(registered)}", "CPU fallback: %s from dflash-sglang for torch.ops.%s "
                 "(SGLang's CPU kernel build is not installed): %s", what, NAMESPACE, ", ".join(registered))
    return registered
