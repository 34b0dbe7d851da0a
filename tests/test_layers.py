"""The package's layers, as DESIGN.md draws them: imports run down, never up, and never in a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "ipyimagegen"

# Bottom first. A module may import modules of its own layer or below (and never in a cycle).
LAYERS: list[tuple[str, ...]] = [
    ("_version", "errors", "media", "pngtext"),
    ("models", "pricing", "masks", "moderation"),
    ("imaging", "thumbnails", "svg", "svg_raster"),
    ("api",),
    ("engines", "gallery", "gallery_index"),
    ("backend_choice", "plots"),
    ("session",),
    ("server", "widgets"),
    ("cli", "studio_app", "apps", "__main__", "__init__"),
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def _layer(module: str) -> int:
    top = module.split(".")[0]
    for rank, names in enumerate(LAYERS):
        if top in names:
            return rank
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _imports(path: Path) -> set[str]:
    """The package modules ``path`` imports when it runs (imports for type checkers left out)."""
    module = _module_name(path)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            return
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1] if node.level > 1 else package
            target = [*base, *(node.module.split(".") if node.module else [])]
            if node.module is None:  # from . import masks
                found.update(".".join([*target, alias.name]).strip(".") for alias in node.names)
            else:
                found.add(".".join(target))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ipyimagegen."):
            found.add(node.module.removeprefix("ipyimagegen."))  # type: ignore[union-attr]
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return {name for name in found if name and name != module}


GRAPH = {_module_name(path): _imports(path) for path in PACKAGE.rglob("*.py")}


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_run_down_the_layers(module: str) -> None:
    if module == "__init__":
        return  # the package's own namespace re-exports every layer
    upward = [name for name in GRAPH[module] if _layer(name) > _layer(module)]
    assert not upward, f"{module} (layer {_layer(module)}) imports up: {upward}"


def test_no_import_cycles() -> None:
    def reachable(start: str) -> set[str]:
        seen: set[str] = set()
        stack = [start]
        while stack:
            for name in GRAPH.get(stack.pop(), ()):
                known = name if name in GRAPH else name.rsplit(".", 1)[0]
                if known not in seen:
                    seen.add(known)
                    stack.append(known)
        return seen

    packages = {name for name in GRAPH if (PACKAGE / name.replace(".", "/") / "__init__.py").exists()}
    cycles = sorted(
        module
        for module in GRAPH
        if module not in packages and module != "__init__" and module in reachable(module)
    )
    assert not cycles, f"modules that import themselves through others: {cycles}"


def test_the_bottom_layer_imports_nothing_of_the_package() -> None:
    """Only the catalogue, and the error tree at the very bottom (a mask's error is one of the package's)."""
    for module in ("errors", "media", "masks", "models"):
        assert GRAPH[module] <= {"models", "errors"} - {module}, (module, GRAPH[module])
    assert GRAPH["errors"] == set()
