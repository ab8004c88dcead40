import sys

from dflash_sglang.gpu_check.run import main

sys.exit(main())
