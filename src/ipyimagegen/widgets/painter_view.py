"""The page's side of the mask painter: the picture and mask drawn, zoomed and panned in the browser.

The picture crosses once per image as a file (JPEG, or PNG where it has transparency); the mask
crosses as bit-packed regions after each change the kernel makes. Strokes are drawn in the page
first and arrive here in batches (:meth:`on_gesture`), in continuous picture pixels. The
kernel's mask is the authority: each region sent carries the number of the last stroke applied,
and the page draws its newer strokes again over it.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
from ipywidgets import CallbackDispatcher
from PIL import Image
from traitlets import CaselessStrEnum, Dict, Float, Int, List, Unicode

from ..masks import BBox

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
TOOLS = ("brush", "eraser", "rectangle", "wand", "move")
MAX_BRUSH_SIZE = 200
MAX_POINTS_PER_MESSAGE = 20_000
"""A stroke batch longer than this is cut (a page sends a few dozen points every 40 ms)."""
GESTURES = ("stroke", "rect", "wand", "move", "undo", "redo")


def picture_file(image: Image.Image) -> tuple[bytes, str]:
    """The picture as the page decodes it: JPEG (quality 92), or PNG where it has transparency."""
    buffer = io.BytesIO()
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        image.convert("RGBA").save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue(), "image/png"
    image.convert("RGB").save(buffer, format="JPEG", quality=92)
    return buffer.getvalue(), "image/jpeg"


def packed_region(mask: np.ndarray, box: BBox) -> tuple[dict[str, int], bytes]:
    """A region of the mask as the page reads it: rows y0:y1, columns x0:x1, one bit a pixel."""
    row0, row1, col0, col1 = box
    bits = np.packbits(np.ascontiguousarray(mask[row0:row1, col0:col1]), axis=None)
    return {"x": col0, "y": row0, "w": col1 - col0, "h": row1 - row0}, bits.tobytes()


def _finite_points(value: Any, limit: int) -> list[float] | None:
    """Flat ``[x0, y0, x1, y1, ...]`` of finite numbers, or None when it is not that."""
    if not isinstance(value, list) or len(value) % 2:
        return None
    points = value[: limit * 2]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in points):
        return None
    return [float(v) for v in points]


class PainterView(anywidget.AnyWidget):  # type: ignore[misc]
    """The painter's canvas in the page (see the module's docstring)."""

    _esm = STATIC / "painter_view.js"
    _css = STATIC / "painter_view.css"
    tool = CaselessStrEnum(TOOLS, default_value="brush").tag(sync=True)
    brush_size = Int(24, min=1, max=MAX_BRUSH_SIZE).tag(sync=True)
    max_brush = Int(MAX_BRUSH_SIZE).tag(sync=True)
    opacity = Float(0.5, min=0.0, max=1.0).tag(sync=True)
    feather = Float(0.0, min=0.0).tag(sync=True)
    wand_mode = CaselessStrEnum(("add", "subtract"), default_value="add").tag(sync=True)
    box = List([512, 256], help="The view's size when the picture fits it, in CSS pixels.").tag(sync=True)
    placement: List[float] = List(
        [], help="Where the loaded picture sits in an outpainting frame: x, y, w, h."
    ).tag(sync=True)
    hint = Unicode("").tag(sync=True)
    tool_keys = Dict({}).tag(sync=True)
    zoom = Float(
        0.0, help="Screen pixels per picture pixel, as the page last showed it (0: not shown yet)."
    ).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._gestures = CallbackDispatcher()
        self._wanted = CallbackDispatcher()
        self.on_msg(self._handle_message)

    def on_gesture(self, callback: Callable[[dict[str, Any]], Any], remove: bool = False) -> None:
        """``callback(message)`` for each checked gesture: stroke, rect, wand, move, undo, redo."""
        self._gestures.register_callback(callback, remove=remove)

    def on_want(self, callback: Callable[[], Any], remove: bool = False) -> None:
        """``callback()`` when a page shows the view and needs the picture and mask."""
        self._wanted.register_callback(callback, remove=remove)

    def send_picture(self, version: int, data: bytes | None, mime: str, size: tuple[int, int]) -> None:
        """Show a picture (``None``: none), replacing the mask with an empty one."""
        content = {"event": "picture", "version": version, "mime": mime, "width": size[0], "height": size[1]}
        self.send(content, buffers=[data] if data else [])

    def send_mask(
        self, version: int, mask: np.ndarray, box: BBox | None, upto: int, clear: bool = False
    ) -> None:
        """Send ``box`` of the mask (all of it when None), applied up to stroke ``upto``."""
        height, width = mask.shape
        region, bits = packed_region(mask, box or (0, height, 0, width))
        self.send(
            {"event": "mask", "version": version, "upto": upto, "clear": clear, **region}, buffers=[bits]
        )

    def send_after(self, data: bytes | None, mime: str = "image/jpeg", show: bool = True) -> None:
        """The picture to compare with (a result), or ``None`` to stop comparing."""
        self.send({"event": "after", "mime": mime, "show": show}, buffers=[data] if data else [])

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
        if kind not in GESTURES:
            return None
        if kind in ("undo", "redo"):
            return {"kind": kind}
        if kind == "stroke":
            points = _finite_points(content.get("points"), MAX_POINTS_PER_MESSAGE)
            stroke_id, tool = content.get("id"), content.get("tool")
            if points is None or not isinstance(stroke_id, int) or tool not in ("brush", "eraser"):
                return None
            return {
                "kind": kind,
                "id": stroke_id,
                "tool": tool,
                "points": points,
                "first": content.get("first") is True,
                "end": content.get("end") is True,
            }
        if kind == "rect":
            points = _finite_points(content.get("points"), 2)
            stroke_id = content.get("id")
            if points is None or len(points) != 4 or not isinstance(stroke_id, int):
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
