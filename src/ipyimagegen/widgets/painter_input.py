"""The painter's input layer: a thin page-side widget over the ipycanvas view.

ipycanvas draws the painter (:mod:`.painter_layers`); its events give a position only. This layer
lies over it in the same grid cell and takes what a paint program needs: pointer capture,
buttons, pen pressure, modifier keys, Ctrl/⌘+wheel zoom around the pointer, space- and
middle-drag panning, key-up and HiDPI. It draws the stroke in progress at once and sends its
points here in batches, in continuous picture pixels; the kernel paints them into the mask and
draws them into ipycanvas's mask layer, and the page drops its own drawing of them once the
stamp canvas says ipycanvas has drawn them. A zoom or pan shows at once as a CSS transform of the
ipycanvas element, and is crisp once ipycanvas has drawn the new view.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
from ipycanvas import Canvas
from ipywidgets import CallbackDispatcher, widget_serialization
from traitlets import CaselessStrEnum, Dict, Float, Instance, Int, List, Unicode

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
TOOLS = ("brush", "eraser", "rectangle", "wand", "move")
MAX_BRUSH_SIZE = 200
MAX_POINTS_PER_MESSAGE = 2_000
"""A stroke batch longer than this is cut (a page sends a few points every 25 ms)."""
MAX_DEVICE_SIDE = 8192
"""The largest visible canvas side a page may ask for, in device pixels."""
MAX_OFFSET = 1e6
"""How far (CSS pixels) a page may move the picture off its view."""
GESTURES = ("stroke", "rect", "wand", "move", "undo", "redo")
VIEW_FIELDS = ("scale", "tx", "ty", "width", "height", "dpr")


def _finite_numbers(value: Any, limit: int) -> list[float] | None:
    """The first ``limit`` items of a list of finite numbers, or None when it is not that."""
    if not isinstance(value, list):
        return None
    numbers = value[:limit]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in numbers):
        return None
    return [float(v) for v in numbers]


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _page_of(content: dict[str, Any]) -> str:
    page = content.get("page")
    return page[:40] if isinstance(page, str) else ""


def _finite_points(value: Any, limit: int) -> list[float] | None:
    """Flat ``[x0, y0, x1, y1, ...]`` of finite numbers, or None when it is not that."""
    if not isinstance(value, list) or len(value) % 2:
        return None
    return _finite_numbers(value, limit * 2)


class PainterInput(anywidget.AnyWidget):  # type: ignore[misc]
    """The input layer over the painter's ipycanvas view (see the module's docstring)."""

    _esm = STATIC / "painter_input.js"
    _css = STATIC / "painter_input.css"
    tool = CaselessStrEnum(TOOLS, default_value="brush").tag(sync=True)
    brush_size = Int(24, min=1, max=MAX_BRUSH_SIZE).tag(sync=True)
    max_brush = Int(MAX_BRUSH_SIZE).tag(sync=True)
    opacity = Float(0.5, min=0.0, max=1.0).tag(sync=True)
    wand_mode = CaselessStrEnum(("add", "subtract"), default_value="add").tag(sync=True)
    box = List([512, 256], help="The view's size when the picture fits it, in CSS pixels.").tag(sync=True)
    picture: List[int] = List([], help="The picture's width and height (empty: none).").tag(sync=True)
    placement: List[float] = List(
        [], help="Where the loaded picture sits in an outpainting frame: x, y, w, h."
    ).tag(sync=True)
    hint = Unicode("").tag(sync=True)
    tool_keys = Dict({}).tag(sync=True)
    zoom = Float(
        0.0, help="Screen pixels per picture pixel, as the page last showed it (0: not shown yet)."
    ).tag(sync=True)
    comparing: List[Any] = List(
        [], help="[shown, split] when there is a result to compare with; empty otherwise."
    ).tag(sync=True)
    stamp = Instance(Canvas, allow_none=True, help="The ipycanvas stamp that says what was drawn.").tag(
        sync=True, **widget_serialization
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._gestures = CallbackDispatcher()
        self._wanted = CallbackDispatcher()
        self.on_msg(self._handle_message)

    def on_gesture(self, callback: Callable[[dict[str, Any]], Any], remove: bool = False) -> None:
        """``callback(message)`` for each checked gesture or view change from the page."""
        self._gestures.register_callback(callback, remove=remove)

    def on_want(self, callback: Callable[[], Any], remove: bool = False) -> None:
        """``callback()`` when a page shows the layer and needs to know the state."""
        self._wanted.register_callback(callback, remove=remove)

    def tell(self, version: int, picture: list[int], upto: int, view: dict[str, Any]) -> None:
        """The state a page starts from: the picture's version and size, the last stroke applied,
        and the view ipycanvas shows."""
        self.send({"event": "state", "version": version, "picture": picture, "upto": upto, "view": view})

    def zoom_to(self, scale: float | str) -> None:
        """``"fit"``, or a scale: 1.0 shows one picture pixel per screen pixel."""
        if scale == "fit":
            self.send({"event": "view", "mode": "fit"})
        else:
            self.send({"event": "view", "scale": float(scale)})

    def _handle_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("kind")
        try:
            if kind == "want":
                self._wanted()
                return
            checked = self._checked(content)
            if checked is not None:
                self._gestures(checked)
        except Exception:
            log.exception("could not act on the painter's %r", kind)

    @staticmethod
    def _checked(content: dict[str, Any]) -> dict[str, Any] | None:
        """The gesture with its fields checked and typed, or None when it is not one."""
        kind = content.get("kind")
        if kind == "view":
            numbers = _finite_numbers([content.get(name) for name in VIEW_FIELDS], len(VIEW_FIELDS))
            version = content.get("version")
            if numbers is None or not isinstance(version, int) or isinstance(version, bool):
                return None
            view = dict(zip(VIEW_FIELDS, numbers, strict=True))
            if view["scale"] <= 0 or view["width"] < 1 or view["height"] < 1 or not 0.25 <= view["dpr"] <= 8:
                return None
            most = MAX_DEVICE_SIDE / view["dpr"]
            view["width"], view["height"] = min(view["width"], most), min(view["height"], most)
            view["scale"] = min(view["scale"], 64.0)
            view["tx"] = min(max(view["tx"], -MAX_OFFSET), MAX_OFFSET)
            view["ty"] = min(max(view["ty"], -MAX_OFFSET), MAX_OFFSET)
            return {"kind": kind, "version": version, "page": _page_of(content), **view}
        if kind == "hover":
            if content.get("x") is None:
                return {"kind": kind, "point": None}
            numbers = _finite_points([content.get("x"), content.get("y")], 1)
            return None if numbers is None else {"kind": kind, "point": (numbers[0], numbers[1])}
        if kind == "cycle":
            step = content.get("step")
            return {"kind": kind, "step": step} if step in (-1, 1) and not isinstance(step, bool) else None
        if kind == "compare":
            numbers = _finite_numbers([content.get("split", 0.5)], 1)
            if numbers is None:
                return None
            return {"kind": kind, "on": content.get("on") is True, "split": min(max(numbers[0], 0.0), 1.0)}
        if kind not in GESTURES and kind != "moving":
            return None
        picture = content.get("picture")  # the picture the page drew on: a gesture for another is dropped
        if picture is not None and (not isinstance(picture, int) or isinstance(picture, bool)):
            return None
        checked = PainterInput._gesture(kind, content)
        if checked is not None:
            checked["picture"] = picture
        return checked

    @staticmethod
    def _gesture(kind: str, content: dict[str, Any]) -> dict[str, Any] | None:
        if kind in ("undo", "redo"):
            return {"kind": kind}
        if kind == "stroke":
            points = _finite_points(content.get("points"), MAX_POINTS_PER_MESSAGE)
            stroke_id, tool = content.get("id"), content.get("tool")
            if points is None or not _is_count(stroke_id) or tool not in ("brush", "eraser"):
                return None
            pressures = _finite_numbers(content.get("pressures", []), MAX_POINTS_PER_MESSAGE)
            if pressures is not None and len(pressures) * 2 == len(points):
                pressures = [min(max(value, 0.2), 1.0) for value in pressures]
            else:
                pressures = None
            return {
                "kind": kind,
                "id": stroke_id,
                "tool": tool,
                "points": points,
                "pressures": pressures,
                "first": content.get("first") is True,
                "end": content.get("end") is True,
            }
        if kind == "rect":
            points = _finite_points(content.get("points"), 2)
            stroke_id = content.get("id")
            if points is None or len(points) != 4 or not _is_count(stroke_id):
                return None
            return {"kind": kind, "id": stroke_id, "points": points}
        values = [content.get(name) for name in (("x", "y") if kind == "wand" else ("dx", "dy"))]
        numbers = _finite_points(values, 1)
        if numbers is None:
            return None
        if kind == "wand":
            return {
                "kind": kind,
                "x": numbers[0],
                "y": numbers[1],
                "subtract": content.get("subtract") is True,
            }
        return {"kind": kind, "dx": numbers[0], "dy": numbers[1]}
