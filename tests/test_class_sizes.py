"""Small classes with one job: a class with more than 25 methods says in its docstring why it is that size."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "ipyimagegen"
MOST_METHODS = 25
REASON = "Size:"


def method_count(node: ast.ClassDef) -> int:
    """The functions defined in the class body: methods, properties and their setters, static and class methods."""
    return sum(isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) for child in node.body)


def gives_a_reason(node: ast.ClassDef) -> bool:
    """Whether the docstring has a paragraph that starts with ``Size:`` and says something after it."""
    paragraphs = (ast.get_docstring(node) or "").split("\n\n")
    return any(
        paragraph.strip().startswith(REASON) and paragraph.strip()[len(REASON) :].strip()
        for paragraph in paragraphs
    )


def large_classes(source: str, module: str) -> list[tuple[str, int, bool]]:
    """(where, methods, has a reason) for every class in ``source`` with more than 25 methods."""
    return [
        (f"{module}:{node.lineno} {node.name}", method_count(node), gives_a_reason(node))
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ClassDef) and method_count(node) > MOST_METHODS
    ]


LARGE = [
    found
    for path in sorted(PACKAGE.rglob("*.py"))
    for found in large_classes(path.read_text(), str(path.relative_to(PACKAGE)))
]


@pytest.mark.parametrize(("where", "methods", "has_reason"), LARGE, ids=[where for where, _, _ in LARGE])
def test_a_large_class_says_why_it_is_that_size(where: str, methods: int, has_reason: bool) -> None:
    assert has_reason, (
        f"{where} has {methods} methods: split it into classes with one job each, or add a paragraph "
        f"starting with {REASON!r} to its docstring that says why it is that size"
    )


def test_the_walk_counts_every_kind_of_method_and_reads_the_reason() -> None:
    members = "\n".join(f"    def m{i}(self): ..." for i in range(22))
    members += "\n    @property\n    def p(self): ...\n    @p.setter\n    def p(self, v): ..."
    members += "\n    @staticmethod\n    def s(): ...\n    async def a(self): ..."
    without = f'class Big:\n    """Does many things."""\n{members}\n\nclass Small:\n    def one(self): ...\n'
    assert large_classes(without, "m.py") == [("m.py:1 Big", 26, False)]

    empty = without.replace("Does many things.", "Does many things.\n\n    Size:")
    assert large_classes(empty, "m.py") == [("m.py:1 Big", 26, False)]  # a heading with no reason
    reasoned = without.replace(
        "Does many things.", "Does many things.\n\n    Size: it is the user's one API."
    )
    assert large_classes(reasoned, "m.py") == [("m.py:1 Big", 26, True)]

    one_fewer = without.replace("    def m0(self): ...\n", "")
    assert large_classes(one_fewer, "m.py") == []
