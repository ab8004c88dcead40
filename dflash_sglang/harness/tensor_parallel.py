"""What `--tp-size N` (N > 1) needs on a host without an NVIDIA driver, as environment variables.

Measured on SGLang 0.5.23 (`../shared/notes/tp-on-cpu-probe.md`); SGLang's CPU path runs TP over gloo:
- `SGLANG_CPU_OMP_THREADS_BIND`: without it SGLang refuses more ranks than NUMA nodes
  (`numa_utils.init_threads_binding`). On hosts without AMX SGLang does not bind threads with it; it only
  picks each rank's core list. We give each rank its own share of the cores this process may use.
- `SGLANG_NCCL_SO_PATH` naming a library that does not load: SGLang's in-tree CPU platform cannot opt its
  TP group out of pynccl, and the CUDA torch wheel ships a loadable `libnccl.so.2`, so pynccl would go on to
  `torch.cuda.device(cpu)` and raise. When the library fails to load, `PyNcclCommunicator` disables itself
  (one ERROR log line per group, "expected if you are not running on NVIDIA ... GPUs") and the all-reduce
  goes to `torch.distributed` (gloo).
Each rank's `OMP_NUM_THREADS` is threads.py's, at every tp size. At tp 1 nothing here applies and
nothing is set. A value the caller already set wins.
"""

from __future__ import annotations

import os

from dflash_sglang.errors import UserError

BIND_ENV = "SGLANG_CPU_OMP_THREADS_BIND"
NCCL_ENV = "SGLANG_NCCL_SO_PATH"
# Any name the dynamic loader cannot find; it says why it is there when it shows up in SGLang's log.
UNLOADABLE_NCCL = "libnccl-disabled-on-cpu.so"


def cpu_binding(tp_size: int, cpus: list[int]) -> str:
    """`0|1` style: one `|`-separated core list per rank, contiguous shares of `cpus`.

    With fewer cores than ranks the ranks share cores round-robin: slow, but SGLang only needs a list each."""
    if tp_size < 1:
        raise UserError(f"--tp-size: expected a positive integer, got {tp_size}")
    assert cpus, "no usable CPU"
    if tp_size > len(cpus):
        return "|".join(str(cpus[rank % len(cpus)]) for rank in range(tp_size))
    share = len(cpus) // tp_size
    groups = [cpus[rank * share:(rank + 1) * share] for rank in range(tp_size)]
    return "|".join(_core_list(group) for group in groups)


def _core_list(cpus: list[int]) -> str:
    """SGLang's examples write ranges (`0-31`); a list of cores that is not one range stays comma-separated."""
    if len(cpus) > 1 and cpus == list(range(cpus[0], cpus[-1] + 1)):
        return f"{cpus[0]}-{cpus[-1]}"
    return ",".join(str(cpu) for cpu in cpus)


def tp_environment(tp_size: int, base: dict[str, str] | None = None) -> dict[str, str]:
    """The variables a CPU host needs for `tp_size` ranks; {} at tp 1. Values already in `base` are kept."""
    if tp_size <= 1:
        return {}
    base = os.environ if base is None else base
    cpus = sorted(os.sched_getaffinity(0))
    wanted = {
        BIND_ENV: cpu_binding(tp_size, cpus),
        NCCL_ENV: UNLOADABLE_NCCL,
    }
    return {name: value for name, value in wanted.items() if name not in base}


def tp_size_of(args: list[str] | tuple[str, ...]) -> int:
    """The last `--tp-size N` / `--tp-size=N` (or its alias `--tensor-parallel-size`) of an SGLang command line;
    1 if absent."""
    size = "1"
    names = ("--tp-size", "--tensor-parallel-size")
    for i, token in enumerate(args):
        flag, eq, value = token.partition("=")
        if flag in names:
            if eq:
                size = value
            elif i + 1 < len(args):
                size = args[i + 1]
    if not size.isdigit():
        raise UserError(f"--tp-size: expected a positive integer, got {size!r}")
    return int(size)
