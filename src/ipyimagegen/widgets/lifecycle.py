"""Closing what a widget made: a widget, everything it contains, and their layout and style widgets.

Every widget stays registered with the kernel (and in the page) until it is closed; a panel
that replaces or drops widgets closes them with these helpers.
"""

from __future__ import annotations

from collections.abc import Container, Iterable

import ipywidgets as widgets


def close_tree(root: widgets.Widget, keep: Container[widgets.Widget] = ()) -> None:
    """Close a widget, the widgets it contains, and their layout and style widgets (but those in ``keep``)."""
    stack: list[widgets.Widget] = [root]
    while stack:
        widget = stack.pop()
        stack.extend(child for child in getattr(widget, "children", ()) if isinstance(child, widgets.Widget))
        for part in (getattr(widget, "layout", None), getattr(widget, "style", None)):
            if isinstance(part, widgets.Widget) and part not in keep:
                part.close()
        widget.close()


def close_all(roots: Iterable[widgets.Widget | None], keep: Container[widgets.Widget] = ()) -> None:
    """:func:`close_tree` on each of ``roots`` (``None`` entries are skipped)."""
    for root in roots:
        if root is not None:
            close_tree(root, keep)
