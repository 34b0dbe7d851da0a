"""``ipyimagegen.__all__`` is the user's API: every name in it resolves, the names imported lazily are
all listed for type checkers and IDEs, and internals stay in their submodules."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import ipyimagegen

INIT = Path(ipyimagegen.__file__)


def _type_checking_imports() -> dict[str, str]:
    """Name to the module it is imported from, in ``__init__``'s ``if TYPE_CHECKING:`` block."""
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
    )
    names: dict[str, str] = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom) and node.level == 1, ast.dump(node)
        for alias in node.names:
            names[alias.asname or alias.name] = f"ipyimagegen.{node.module}"
    return names


def test_every_name_in_all_resolves() -> None:
    names = ", ".join(ipyimagegen.__all__)
    code = f"import ipyimagegen as ig\nfor name in ig.__all__: getattr(ig, name)\nfrom ipyimagegen import {names}"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert len(set(ipyimagegen.__all__)) == len(ipyimagegen.__all__)


def test_the_type_checking_block_lists_exactly_the_lazy_names() -> None:
    imported = _type_checking_imports()
    lazy = ipyimagegen._LAZY
    assert sorted(imported) == sorted(lazy)
    assert set(lazy) <= set(ipyimagegen.__all__)
    for name, module in imported.items():  # what an IDE sees is what the name gives
        assert getattr(importlib.import_module(module), name) is getattr(ipyimagegen, name), name


def test_internals_are_not_exported() -> None:
    for internal in ("CallHooks", "BaseBackend", "validate_request", "Job", "ResultTile", "ResultBatch"):
        assert internal not in ipyimagegen.__all__
        assert not hasattr(ipyimagegen, internal), internal
