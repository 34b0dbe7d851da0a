"""What ipycanvas would draw, from the commands a kernel sends it: a test double for the page.

:class:`CanvasRecorder` listens to ipycanvas's canvas manager (every draw command of every
canvas goes through it as one message) and keeps, for each canvas, the list of commands it got.
For canvases drawn without transforms (the painter's full-resolution sources and its stamp) it
also keeps the pixels, by doing what the browser does for the commands those use: ``clear``,
``clearRect``, ``fillRect``, ``fillRects`` (one drawing a rectangle), a path of rectangles filled
once, ``putImageData``, ``fillStyle`` and ``globalCompositeOperation`` (source-over,
or ``destination-in``: each drawing keeps only what it covers).
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
from ipycanvas import Canvas
from ipycanvas.canvas import _CANVAS_MANAGER, _CMD_LIST
from PIL import Image, ImageColor

FILL_STYLE = Canvas.ATTRS["fill_style"]
COMPOSITE = Canvas.ATTRS["global_composite_operation"]
OPEN: list[CanvasRecorder] = []
"""Recorders listening now; the tests' ``conftest`` closes them after each test."""


def close_all() -> None:
    while OPEN:
        OPEN.pop().__exit__(None, None, None)


class CanvasRecorder:
    """Records the ipycanvas commands sent while it is open (a context manager)."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, str, list[Any], list[bytes]]] = []  # (canvas id, name, args, buffers)
        self.pixels: dict[str, np.ndarray] = {}
        self._fill: dict[str, tuple[int, int, int, int]] = {}
        self._composite: dict[str, str] = {}
        self._path: dict[str, list[tuple[int, int, int, int]]] = {}
        self._current = ""
        self._original = _CANVAS_MANAGER.send
        self._previous = _CANVAS_MANAGER.__dict__.get("send")  # another recorder's, or none

    def __enter__(self) -> CanvasRecorder:
        _CANVAS_MANAGER._current_canvas = None  # the first command names its canvas again
        _CANVAS_MANAGER.send = self._record
        OPEN.append(self)
        return self

    def __exit__(self, *_exc: Any) -> None:
        if self._previous is None:
            _CANVAS_MANAGER.__dict__.pop("send", None)
        else:
            _CANVAS_MANAGER.send = self._previous

    def _record(self, content: Any, buffers: list[Any] | None = None) -> None:
        data = [bytes(b) for b in buffers or []]
        command = json.loads(data[0].decode())
        self._run(command, data[1:])
        self._original(content, buffers=buffers)

    def _run(self, command: list[Any], buffers: list[bytes]) -> None:
        if command and isinstance(command[0], list):  # a batch: each takes its share of the buffers
            for sub in command:
                count = sub[2] if len(sub) > 2 else 0
                self._run(sub, buffers[:count])
                buffers = buffers[count:]
            return
        name, args = _CMD_LIST[command[0]], command[1]
        if name == "switchCanvas":
            self._current = args[0].removeprefix("IPY_MODEL_")
            return
        self.commands.append((self._current, name, args, buffers))
        self._draw(self._current, name, args, buffers)

    # --- pixels of untransformed canvases --------------------------------------------------------

    def track(self, canvas: Canvas) -> None:
        """Keep ``canvas``'s pixels from now on: transparent at first, and again when it is resized
        (which clears a canvas in the browser)."""

        def clear(_change: Any = None) -> None:
            self.pixels[canvas.model_id] = np.zeros((canvas.height, canvas.width, 4), dtype=np.uint8)

        clear()
        canvas.observe(clear, ["width", "height"])

    def rgba(self, canvas: Canvas) -> np.ndarray:
        return self.pixels[canvas.model_id]

    def _draw(self, canvas_id: str, name: str, args: list[Any], buffers: list[bytes]) -> None:
        pixels = self.pixels.get(canvas_id)
        if pixels is None:
            return
        if name == "set" and args[0] == FILL_STYLE:
            self._fill[canvas_id] = ImageColor.getrgb(args[1]) + (255,)  # type: ignore[assignment]
        elif name == "set" and args[0] == COMPOSITE:
            self._composite[canvas_id] = args[1]
        elif name == "clear":
            pixels[:] = 0
        elif name == "clearRect":
            x, y, w, h = (int(v) for v in args)
            pixels[max(y, 0) : y + h, max(x, 0) : x + w] = 0
        elif name == "fillRect":
            x, y, w, h = (int(v) for v in args)
            pixels[max(y, 0) : y + h, max(x, 0) : x + w] = self._fill.get(canvas_id, (0, 0, 0, 255))
        elif name == "fillRects":
            xs, ys, ws, hs = (self._array(arg, buffers) for arg in args)
            count = max(np.size(a) for a in (xs, ys, ws, hs))
            xs, ys, ws, hs = (np.broadcast_to(a, (count,)) for a in (xs, ys, ws, hs))
            for x, y, w, h in zip(xs, ys, ws, hs, strict=True):  # one drawing each, as the browser does
                self._fill_area(canvas_id, pixels, [(int(x), int(y), int(w), int(h))])
        elif name == "beginPath":
            self._path[canvas_id] = []
        elif name == "rect":
            self._path.setdefault(canvas_id, []).append(tuple(int(v) for v in args))  # type: ignore[arg-type]
        elif name == "fill":
            self._fill_area(canvas_id, pixels, self._path.get(canvas_id, []))
        elif name == "putImageData":
            x, y = (int(v) for v in args[:2])
            picture = np.asarray(Image.open(io.BytesIO(buffers[0])).convert("RGBA"))
            region = pixels[y : y + picture.shape[0], x : x + picture.shape[1]]
            shown = picture[: region.shape[0], : region.shape[1]][..., 3] > 0
            region[shown] = picture[: region.shape[0], : region.shape[1]][shown]  # onto a cleared canvas

    def _fill_area(self, canvas_id: str, pixels: np.ndarray, rects: list[tuple[int, int, int, int]]) -> None:
        """One drawing of the union of ``rects``, under the canvas's compositing."""
        if self._composite.get(canvas_id, "source-over") != "destination-in":
            colour = self._fill.get(canvas_id, (0, 0, 0, 255))
            for x, y, w, h in rects:
                pixels[max(y, 0) : y + h, max(x, 0) : x + w] = colour
            return
        covered = np.zeros(pixels.shape[:2], dtype=bool)
        for x, y, w, h in rects:
            covered[max(y, 0) : y + h, max(x, 0) : x + w] = True
        pixels[~covered] = 0  # only what this drawing covers is kept

    @staticmethod
    def _array(arg: Any, buffers: list[bytes]) -> np.ndarray:
        if isinstance(arg, dict):
            return np.frombuffer(buffers[arg["idx"]], dtype=arg["dtype"]).reshape(arg["shape"])
        return np.asarray(arg)

    # --- reading -------------------------------------------------------------------------------

    def sent_to(self, canvas: Any) -> list[tuple[str, list[Any], list[bytes]]]:
        """The commands ``canvas`` got: (name, args, buffers)."""
        return [(name, args, data) for target, name, args, data in self.commands if target == canvas.model_id]

    def clear_log(self) -> None:
        self.commands.clear()
