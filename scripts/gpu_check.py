"""`make gpu-check`: serve the bundled pair with AR, our DFLASH and SGLang's builtin on every attention
backend, dtype and graph mode this GPU has; check greedy output equals AR's; print one table; write JSON.
Exits 2 with one line on a host without CUDA. `--help` lists the options (GPU_CHECK_ARGS in make)."""

import sys

from dflash_sglang.gpu_check.run import main

if __name__ == "__main__":
    sys.exit(main())
