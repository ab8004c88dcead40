"""The gpu-check matrix for one device: attention backend × dtype × CUDA graphs, in run order.

Each cell serves AR, our DFLASH and SGLang's builtin DFLASH with the same flags. A cell this device
cannot run stays in the plan with the reason, so the table says what was not checked and why. The
rules are SGLang 0.5.23's (`layers/attention/attention_registry.py`, `model_override_base.py`):
- fa3: SM 8.x or 9.x;
- trtllm_mha: SM 10.x (Blackwell B200/GB200/B300; not SM 12.x);
- flashinfer, triton: any CUDA device.
float32 runs on triton only: the FA3, FlashInfer and TRT-LLM attention kernels take fp16/bf16.
"""

from __future__ import annotations

from dataclasses import dataclass

from dflash_sglang.gpu_check.args import BACKENDS, GpuCheckConfig

METHODS = ("ar", "dflash", "builtin")  # AR first: the others are compared with its output
CONCURRENCIES = (1, 8)
# "Graphs on" means decode graphs (the target's TARGET_VERIFY graphs and the drafter's block pass),
# captured up to the largest concurrency only: SGLang's default list of batch sizes would cost most of
# the time budget. Prefill graphs (SGLang's list runs to 4096 tokens) stay off in every cell for the same
# reason, so our prefill's target-feature capture under them is not checked here.
CUDA_GRAPH_MAX_BS = max(CONCURRENCIES)
COMMON_ARGS = ("--disable-prefill-cuda-graph", "--skip-server-warmup")  # the runner warms up itself
FP32_BACKENDS = ("triton",)
SHORT_DTYPE = {"bfloat16": "bf16", "float32": "fp32"}


@dataclass(frozen=True)
class Device:
    name: str
    capability: tuple[int, int]  # (major, minor) compute capability


@dataclass(frozen=True)
class Cell:
    backend: str
    dtype: str  # SGLang --dtype
    graphs: bool
    skip: str | None = None  # why this device does not run it; None: it runs

    @property
    def label(self) -> str:
        return f"{self.backend} {SHORT_DTYPE[self.dtype]} graphs {'on' if self.graphs else 'off'}"

    @property
    def exact(self) -> bool:
        """fp32 greedy output must equal AR's token for token; bf16 may break near-ties differently."""
        return self.dtype == "float32"

    def server_args(self) -> tuple[str, ...]:
        graphs = ("--cuda-graph-max-bs-decode", str(CUDA_GRAPH_MAX_BS)) if self.graphs else (
            "--cuda-graph-backend-decode", "disabled")
        return ("--attention-backend", self.backend, *graphs, *COMMON_ARGS)


def backend_problem(backend: str, capability: tuple[int, int]) -> str | None:
    """Why SGLang cannot run `backend` on this compute capability; None if it can."""
    assert backend in BACKENDS, backend
    major, minor = capability
    if backend == "fa3" and major not in (8, 9):
        return f"fa3 needs SM 8.x or 9.x, this GPU is SM {major}.{minor}"
    if backend == "trtllm_mha" and major != 10:
        return f"trtllm_mha needs SM 10.x (Blackwell), this GPU is SM {major}.{minor}"
    return None


def dtype_problem(backend: str, dtype: str) -> str | None:
    if dtype == "float32" and backend not in FP32_BACKENDS:
        return f"{backend} kernels take fp16/bf16, not fp32"
    return None


def _priority(cell: Cell) -> tuple:
    """Graphs on first (what a GPU user runs), fp32 first within them (the exact lossless check),
    then the backends in BACKENDS order; cells that cannot run go last."""
    return (cell.skip is not None, not cell.graphs, cell.dtype != "float32", BACKENDS.index(cell.backend))


def build_plan(config: GpuCheckConfig, device: Device) -> list[Cell]:
    cells = []
    for backend in config.backends:
        for dtype in config.dtypes:
            for graphs in config.graphs:
                skip = backend_problem(backend, device.capability) or dtype_problem(backend, dtype)
                cells.append(Cell(backend, dtype, graphs, skip))
    return sorted(cells, key=_priority)
