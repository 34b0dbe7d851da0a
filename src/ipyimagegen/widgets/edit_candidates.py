"""The results of an edit as candidates on the painter: cycle through them, compare each with the
picture it was made from, and accept one to keep editing it (as the DALL-E editor does).

The candidates are the edit's results, already in the grid and the gallery; accepting one makes it
the picture to edit next (its mask cleared, its lineage kept), and the others stay where they are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
from ipywidgets import CallbackDispatcher

from ..api.types import GeneratedImage


class EditCandidates(widgets.HBox):
    """◀ "Result 2 of 3" ▶, Accept and Dismiss, under the painter while an edit's results are shown."""

    def __init__(self) -> None:
        self.images: list[GeneratedImage] = []
        self.index = 0
        self._shown = CallbackDispatcher()
        self._accepted = CallbackDispatcher()
        self._dismissed = CallbackDispatcher()

        def button(label: str, icon: str, tip: str, css: str) -> widgets.Button:
            made = widgets.Button(
                description=label, icon=icon, tooltip=tip, layout=widgets.Layout(width="auto")
            )
            made.add_class(css)
            return made

        self.previous_button = button(
            "", "chevron-left", "The result before (←)", "ipyimagegen-candidate-previous"
        )
        self.next_button = button("", "chevron-right", "The next result (→)", "ipyimagegen-candidate-next")
        self.label = widgets.HTML()
        self.label.add_class("ipyimagegen-candidate-label")
        self.accept_button = button(
            "Accept", "check", "Keep editing this result: it becomes the picture, the mask is cleared",
            "ipyimagegen-candidate-accept",
        )  # fmt: skip
        self.accept_button.button_style = "primary"
        self.dismiss_button = button(
            "Dismiss", "times", "Back to the picture (the results stay in the grid and History)",
            "ipyimagegen-candidate-dismiss",
        )  # fmt: skip
        self.previous_button.on_click(lambda _button: self.step(-1))
        self.next_button.on_click(lambda _button: self.step(1))
        self.accept_button.on_click(lambda _button: self.accept())
        self.dismiss_button.on_click(lambda _button: self.dismiss())
        super().__init__(
            [self.previous_button, self.label, self.next_button, self.accept_button, self.dismiss_button],
            layout=widgets.Layout(display="none", align_items="center", flex_flow="row wrap", gap="4px"),
        )
        self.add_class("ipyimagegen-candidates")

    @property
    def current(self) -> GeneratedImage | None:
        return self.images[self.index] if self.images else None

    def show(self, images: list[GeneratedImage]) -> None:
        """An edit's results, the first one shown."""
        self.images = list(images)
        self.index = 0
        self.layout.display = None if self.images else "none"
        self._refresh()

    def clear(self) -> None:
        """No candidates any more (a new picture, or one accepted)."""
        self.images = []
        self.index = 0
        self.layout.display = "none"

    def step(self, delta: int) -> None:
        """Show the result ``delta`` places on (wrapping round)."""
        if len(self.images) > 1:
            self.index = (self.index + delta) % len(self.images)
            self._refresh()

    def accept(self) -> None:
        image = self.current
        if image is not None:
            number, count = self.index + 1, len(self.images)
            self.clear()
            self._accepted(image, number, count)

    def dismiss(self) -> None:
        if self.images:
            self.clear()
            self._dismissed()

    def on_show(self, callback: Callable[[GeneratedImage], Any]) -> None:
        """``callback(image)`` when a candidate is to be shown on the painter."""
        self._shown.register_callback(callback)

    def on_accept(self, callback: Callable[[GeneratedImage, int, int], Any]) -> None:
        """``callback(image, number, count)`` when one is accepted."""
        self._accepted.register_callback(callback)

    def on_dismiss(self, callback: Callable[[], Any]) -> None:
        self._dismissed.register_callback(callback)

    def _refresh(self) -> None:
        count = len(self.images)
        if not count:
            return
        self.label.value = f"Result <b>{self.index + 1}</b> of {count}" if count > 1 else "The result"
        self.previous_button.disabled = self.next_button.disabled = count < 2
        self._shown(self.images[self.index])
