"""Benchmark AR, NGRAM and DFLASH servers on this host; same as `python -m dflash_sglang.benchmark`.

    python scripts/bench.py --compare ar,ngram,dflash --concurrency 1,8 --output bench/run.json
"""

import sys

from dflash_sglang.benchmark.cli import main

if __name__ == "__main__":
    sys.exit(main())
