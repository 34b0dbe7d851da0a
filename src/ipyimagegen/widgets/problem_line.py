"""A line that says, beside a field, what is wrong with what was given there; hidden when nothing is."""

from __future__ import annotations

import html

import ipywidgets as widgets


class ProblemLine(widgets.HTML):  # type: ignore[misc]
    """Plain text in the error colour (``ipyimagegen-field-error``), shown only while it says something."""

    def __init__(self) -> None:
        super().__init__(layout=widgets.Layout(display="none"))
        self.add_class("ipyimagegen-field-error")

    def say(self, message: str) -> None:
        """Show ``message`` ("" hides the line)."""
        self.value = html.escape(message)
        self.layout.display = None if message else "none"
