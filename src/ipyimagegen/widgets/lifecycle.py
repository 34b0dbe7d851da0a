"""Closing what a widget made: a widget, everything it contains, and their layout and style widgets.

Every widget stays registered with the kernel (and in the page) until it is closed; a panel
that replaces or drops widgets closes them with these helpers.
"""

from __future__ import annotations

from collections.abc import Container, Iterable

import ipywidgets as widgets

CONTAINING_TRAITS = ("children", "layout", "style", "_canvases")
"""The traits through which a widget holds the widgets it is made of (a MultiCanvas's layers in
``_canvases``). Others are references, not parts: ipycanvas's shared canvas manager is one."""


def _contained(widget: widgets.Widget) -> list[widgets.Widget]:
    """The widgets ``widget`` is made of: its children, layout, style and canvas layers."""
    found: list[widgets.Widget] = []
    for name in CONTAINING_TRAITS:
        value = getattr(widget, name, None)
        if isinstance(value, widgets.Widget):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            found.extend(item for item in value if isinstance(item, widgets.Widget))
    return found


def close_tree(root: widgets.Widget, keep: Container[widgets.Widget] = ()) -> None:
    """Close a widget and every widget it holds (children, layout, style...), but those in ``keep``."""
    stack: list[widgets.Widget] = [root]
    seen: set[int] = set()
    while stack:
        widget = stack.pop()
        if id(widget) in seen or (widget is not root and widget in keep):
            continue
        seen.add(id(widget))
        stack.extend(_contained(widget))
        widget.close()


def close_contents(widget: widgets.Widget, keep: Container[widgets.Widget] = ()) -> None:
    """Close everything ``widget`` holds, but not ``widget`` itself (for a ``close()`` override to call)."""
    for part in _contained(widget):
        if part not in keep:
            close_tree(part, keep)


def close_all(roots: Iterable[widgets.Widget | None], keep: Container[widgets.Widget] = ()) -> None:
    """:func:`close_tree` on each of ``roots`` (``None`` entries are skipped)."""
    for root in roots:
        if root is not None:
            close_tree(root, keep)
