"""The Edit tab's outpainting controls: whether the picture sits in a larger frame, which frame, how
large the picture is in it and where, and the Extend buttons; the placement they describe is
:mod:`ipyimagegen.masks`'s to turn into pixels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
from ipywidgets import CallbackDispatcher

from .. import masks
from ..models import ModelSpec, parse_size, size_for_aspect

EXTEND_AMOUNTS = [("by 25%", 0.25), ("by 50%", 0.5), ("by 100%", 1.0)]
_ARROWS = {"left": ("left", "to the left"), "right": ("right", "to the right"),
           "up": ("up", "upwards"), "down": ("down", "downwards")}  # fmt: skip


def frame_sizes(spec: ModelSpec) -> list[str]:
    """The model's fixed sizes (``auto`` left out): the frames outpainting offers."""
    out = []
    for size in spec.sizes:
        try:
            parse_size(size)
        except ValueError:
            continue
        out.append(size)
    return out


class OutpaintControls:
    """The outpainting widgets and the :meth:`placement` they describe.

    ``on_change(callback)`` is told ``"toggle"``, ``"frame"`` or ``"scale"`` when one changes;
    ``on_extend(callback)`` gets the side and amount of an Extend click.
    """

    def __init__(self) -> None:
        self.toggle = widgets.Checkbox(
            value=False, description="Place the image in a larger frame", indent=False
        )
        self.toggle.add_class("ipyimagegen-outpaint")
        self.frame = widgets.Dropdown(layout=widgets.Layout(width="160px"))
        self.scale = widgets.FloatSlider(
            value=0.75, min=0.1, max=1.0, step=0.05, description="Image scale",
            readout_format=".0%", continuous_update=False, style={"description_width": "initial"},
        )  # fmt: skip
        self.amount = widgets.Dropdown(
            options=EXTEND_AMOUNTS, value=0.5, layout=widgets.Layout(width="100px")
        )
        self.buttons = {
            side: widgets.Button(
                icon=f"arrow-{arrow}",
                tooltip=f"Extend the picture {word}",
                layout=widgets.Layout(width="36px"),
            )
            for side, (arrow, word) in _ARROWS.items()
        }
        self._centre = (0.5, 0.5)  # where the picture's centre sits in the frame (fractions)
        self._extension: dict[str, float] = dict.fromkeys(
            masks.SIDES, 0.0
        )  # how far Extend has grown each side
        self._changed = CallbackDispatcher()
        self._extend = CallbackDispatcher()
        for side, button in self.buttons.items():
            button.add_class(f"ipyimagegen-extend-{side}")
            button.on_click(lambda _b, side=side: self._extend(side, self.amount.value))
        self.toggle.observe(lambda _change: self._toggled(), "value")
        self.frame.observe(lambda _change: self._changed("frame"), "value")
        self.scale.observe(lambda _change: self._scaled(), "value")

    def on_change(self, callback: Callable[[str], Any], remove: bool = False) -> None:
        self._changed.register_callback(callback, remove=remove)

    def on_extend(self, callback: Callable[[str, float], Any], remove: bool = False) -> None:
        self._extend.register_callback(callback, remove=remove)

    def placement(self) -> masks.Placement | None:
        """Where the picture sits in its frame; None when it is not placed in one."""
        if not self.toggle.value or not self.frame.value:
            return None
        return masks.Placement(parse_size(self.frame.value), float(self.scale.value), self._centre)

    def offer(self, sizes: list[str]) -> None:
        """The frames a model makes (the current one kept when it is among them)."""
        current = self.frame.value
        self.frame.options = sizes
        if sizes:
            self.frame.value = current if current in sizes else sizes[-1]
        self._show_toggled()

    def extend(self, side: str, amount: float, source_size: masks.Size, spec: ModelSpec) -> None:
        """Grow the frame towards ``side`` by ``amount`` of the picture's width or height: the frame
        becomes the model's size closest to the grown shape, with the picture against the far edge."""
        extension = dict(self._extension)
        extension[side] += float(amount)
        wide, tall = masks.extended_shape(source_size, extension)
        frame = size_for_aspect(spec, (round(wide), round(tall))) or frame_sizes(spec)[-1]
        placed = masks.extend(source_size, extension, parse_size(frame))
        self.toggle.value = True
        self.frame.value = frame
        self.scale.value = max(self.scale.min, min(1.0, placed.scale))
        self._centre, self._extension = placed.centre, extension

    def move(self, dx: float, dy: float) -> None:
        """Move the picture by ``dx``, ``dy`` (fractions of the frame); Extend starts over from there."""
        self._centre = masks.within_frame((self._centre[0] + dx, self._centre[1] + dy))
        self._extension = dict.fromkeys(self._extension, 0.0)

    def state(self) -> dict[str, Any]:
        """The controls as a draft keeps them."""
        return {
            "on": bool(self.toggle.value),
            "frame": self.frame.value,
            "scale": float(self.scale.value),
            "centre": list(self._centre),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Set the controls from :meth:`state` (values out of range brought in, unknown ones left)."""
        if state.get("frame") in self.frame.options:
            self.frame.value = state["frame"]
        if isinstance(state.get("scale"), (int, float)):
            self.scale.value = min(max(state["scale"], self.scale.min), 1.0)
        centre = state.get("centre")
        if isinstance(centre, list) and len(centre) == 2:
            self._centre = masks.within_frame((float(centre[0]), float(centre[1])))
        self.toggle.value = bool(state.get("on"))

    def _show_toggled(self) -> None:
        shown = None if self.toggle.value else "none"
        self.frame.layout.display = self.scale.layout.display = shown
        if not self.toggle.value:
            self._centre, self._extension = (0.5, 0.5), dict.fromkeys(self._extension, 0.0)

    def _toggled(self) -> None:
        self._show_toggled()
        self._changed("toggle")

    def _scaled(self) -> None:
        self._extension = dict.fromkeys(self._extension, 0.0)  # placed by hand: Extend starts over
        self._changed("scale")
