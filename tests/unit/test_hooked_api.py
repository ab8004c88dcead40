"""The pinned table of SGLang attributes (`sglang_adapter/hooked_api.py`) stays complete, and its checker
reports a missing attribute or parameter by name. No sglang import: the checker is tried on the stdlib."""

from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

from dflash_sglang.sglang_adapter import hooked_api
from dflash_sglang.sglang_adapter.hooked_api import HOOKED_API

ADAPTER = Path(hooked_api.__file__).parent
_DOTTED = re.compile(r"sglang\.srt\.[\w.]+")


def _covered(name: str) -> bool:
    return any(key == name or key.startswith(name + ".") for key in HOOKED_API)


def _used_sglang_names() -> dict[str, str]:
    """Dotted names the adapter imports from sglang or hooks (string targets) -> the file using them."""
    used = {}
    for path in ADAPTER.rglob("*.py"):
        if path.name == "hooked_api.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sglang"):
                used.update({f"{node.module}.{alias.name}": path.name for alias in node.names})
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _DOTTED.fullmatch(node.value):
                used[node.value] = path.name
    return used


def test_every_sglang_name_the_adapter_uses_is_pinned():
    used = _used_sglang_names()
    assert len(used) > 30  # the scan sees the adapter's imports and hook targets
    missing = {name: where for name, where in used.items() if not _covered(name)}
    assert not missing, f"add these to HOOKED_API: {missing}"


def test_checker_accepts_a_matching_entry():
    assert hooked_api.problems({"json.dumps": ("obj", "indent"), "json.JSONDecoder": ("strict",), "os.sep": None}) == []


def test_checker_names_a_missing_attribute():
    [line] = hooked_api.problems({"json.no_such_function": ("obj",)})
    assert line.startswith("json.no_such_function: expected it to exist, got AttributeError")


def test_checker_names_a_missing_parameter():
    [line] = hooked_api.problems({"json.dumps": ("obj", "indent", "server_args")})
    assert line.startswith("json.dumps: expected parameters ['obj', 'indent', 'server_args'], got ['obj',")
    assert line.endswith("(missing ['server_args'])")


def test_checker_names_a_value_where_a_callable_is_expected():
    [line] = hooked_api.problems({"os.sep": ("x",)})
    assert line == "os.sep: expected a callable with parameters ['x'], got a str"


def test_no_hooked_name_is_listed_twice():
    """A dict literal keeps the last of two equal keys: the first entry's fields were never checked."""
    tree = ast.parse(Path(hooked_api.__file__).read_text())
    table = next(node.value for node in ast.walk(tree)
                 if isinstance(node, ast.AnnAssign) and ast.unparse(node.target) == "HOOKED_API")
    names = Counter(ast.literal_eval(key) if isinstance(key, ast.Constant) else ast.unparse(key)
                                for key in table.keys)
    assert [name for name, count in names.items() if count > 1] == []
