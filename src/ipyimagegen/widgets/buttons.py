"""The toolbar button the grids and History share: its own width, a tooltip and a CSS class."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as widgets


def toolbar_button(
    description: str,
    icon: str,
    tooltip: str,
    css: str,
    on_click: Callable[[], Any] | None = None,
    *,
    disabled: bool = False,
) -> widgets.Button:
    """A button as wide as its label; ``on_click()`` runs when it is clicked."""
    button = widgets.Button(
        description=description,
        icon=icon,
        tooltip=tooltip,
        disabled=disabled,
        layout=widgets.Layout(width="auto", margin="1px"),
    )
    button.add_class(css)
    if on_click is not None:
        button.on_click(lambda _button: on_click())
    return button
