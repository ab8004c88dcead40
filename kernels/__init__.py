"""Triton kernels, imported as `dflash_sglang.kernels`. Each kernel has a plain-PyTorch reference
beside it and a test comparing the two under TRITON_INTERPRET=1 on CPU.

This folder sits at the top of the repo, so Python started from the repo root (`python -m ...`,
`pytest`) would find it as top-level `kernels` and shadow Hugging Face's `kernels` package, which
SGLang and transformers import. When imported under that name we hand the import over to the real
package: the import system returns whatever `sys.modules["kernels"]` holds once this file has run.
"""

if __name__ == "kernels":
    import importlib
    import os
    import sys

    _repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    _saved_path = list(sys.path)
    del sys.modules["kernels"]
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _repo_root]
    try:
        sys.modules["kernels"] = importlib.import_module("kernels")
    finally:
        sys.path[:] = _saved_path
