"""Packaging invariants: our `kernels/` never shadows Hugging Face's, the package list is complete,
and only the SGLang adapter imports sglang."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORE_ALLOWED_THIRD_PARTY = {"torch", "triton", "safetensors"}
CORE_DIRS = ("drafter", "spec")  # plus kernels/ and config.py


def test_top_level_kernels_is_hugging_faces_package():
    # Run from the repo root, where a top-level `kernels/` folder would shadow it if it were importable.
    out = subprocess.run([sys.executable, "-c", "import kernels, dflash_sglang.kernels as ours;"
                          "print(kernels.__file__); print(ours.__file__)"],
                         capture_output=True, text=True, cwd=REPO, check=True).stdout.split()
    assert "site-packages" in out[0], out
    assert Path(out[1]).resolve() == (REPO / "kernels" / "__init__.py").resolve(), out


def test_every_package_is_listed_in_pyproject():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "dflash_sglang").rglob("__init__.py")}
    found |= {"dflash_sglang.kernels" + "".join("." + x for x in p.parent.relative_to(REPO / "kernels").parts)
              for p in (REPO / "kernels").rglob("__init__.py")}
    assert found == listed, (found - listed, listed - found)


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_only_the_adapter_imports_sglang():
    adapter = REPO / "dflash_sglang" / "sglang_adapter"
    offenders = [str(p) for p in (REPO / "dflash_sglang").rglob("*.py")
                 if adapter not in p.parents and "sglang" in _imported_roots(p)]
    offenders += [str(p) for p in (REPO / "kernels").rglob("*.py") if "sglang" in _imported_roots(p)]
    assert not offenders


def test_core_imports_only_torch_and_triton():
    files = [REPO / "dflash_sglang" / "config.py"] + list((REPO / "kernels").rglob("*.py"))
    for name in CORE_DIRS:
        files += list((REPO / "dflash_sglang" / name).rglob("*.py"))
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    for path in files:
        if not path.exists():
            continue
        extra = _imported_roots(path) - stdlib - CORE_ALLOWED_THIRD_PARTY - {"dflash_sglang"}
        assert not extra, f"{path.relative_to(REPO)} imports {sorted(extra)}"


def test_every_bundled_pair_file_is_package_data():
    from fnmatch import fnmatch

    from dflash_sglang.bundled import TINY_PAIR_DIRS

    globs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["dflash_sglang"]
    package = REPO / "dflash_sglang"
    for kind, root in TINY_PAIR_DIRS.items():
        files = [p for sub in ("target", "drafter") for p in (root / sub).iterdir()]
        assert files, kind
        missing = [p for p in files if not any(fnmatch(str(p.relative_to(package)), g) for g in globs)]
        assert not missing, (kind, missing)
