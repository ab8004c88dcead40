import sys

from dflash_sglang.soak.cli import main

sys.exit(main())
