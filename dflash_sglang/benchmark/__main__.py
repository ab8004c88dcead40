import sys

from dflash_sglang.benchmark.cli import main

sys.exit(main())
