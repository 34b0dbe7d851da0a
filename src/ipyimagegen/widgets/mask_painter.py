"""MaskPainter: paint, over an image, the area that an edit should regenerate.

The mask lives in Python at the image's full resolution (:class:`EditableMask`); the canvas is
only a view of it. Every stroke is applied twice from the same mouse or touch events: into the
mask (scaled to image pixels) and onto the canvas (in display pixels). Nothing is ever read back
from the canvas, and the whole view is redrawn whenever a browser connects.

Coordinates: the canvas shows the image scaled to fit ``max_display_size`` (never enlarged).
:meth:`MaskPainter.canvas_to_image` maps a canvas point to continuous image pixels and
:meth:`MaskPainter.image_to_canvas` maps back; image pixel ``(row, col)`` covers
``[col, col + 1) x [row, row + 1)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import numpy as np
from ipycanvas import Canvas, MultiCanvas, hold_canvas
from PIL import Image
from traitlets import CaselessStrEnum, Float, Int, observe

from .. import masks
from ..imaging import open_image, read_mask, to_png
from .canvas_keys import CanvasKeys
from .mask_model import EditableMask

#: The colour of the painted area on the canvas.
MASK_RGB = (255, 0, 255)
#: The largest brush diameter, in display pixels.
MAX_BRUSH_SIZE = 200
TOOL_KEYS = {"b": "brush", "e": "eraser", "r": "rectangle"}
"""Keys that pick a tool while the pointer is over the canvas."""

_HINT = "No image yet: load one, then paint the area to regenerate."
_IMAGE_LAYER, _MASK_LAYER, _CURSOR_LAYER = 0, 1, 2


@contextmanager
def _batched_drawing() -> Iterator[None]:
    """Send every canvas command of the block as one message, like ``hold_canvas()``.

    ``hold_canvas()`` leaves ipycanvas' shared command cache switched on when its block raises,
    which would silence every canvas in the kernel; this restores the previous setting.
    """
    from ipycanvas.canvas import _CANVAS_MANAGER

    was_caching = _CANVAS_MANAGER._caching
    try:
        with hold_canvas():
            yield
    finally:
        _CANVAS_MANAGER._caching = was_caching


@dataclass
class _Stroke:
    """A gesture in progress, from pointer down to pointer up, in canvas coordinates."""

    tool: str
    start: tuple[float, float]
    last: tuple[float, float]


class MaskPainter(widgets.VBox):
    """Paint a mask over an image: brush, eraser and rectangle, with undo and redo.

    ``mask`` is a bool array at the image's full resolution, ``True`` where the image should be
    regenerated; ``mask_png()`` gives it as the RGBA PNG that the Images API expects (alpha 0
    where painted). Keys ``[`` and ``]`` change the brush size and Ctrl/Cmd+Z undoes while the
    canvas has the focus.

    Args:
        image: a path, PNG/JPEG bytes, PIL image or array; ``None`` shows an empty canvas.
        max_display_size: the longest side of the canvas, in pixels. Larger images are shown
            scaled down; the mask keeps the image's resolution.
    """

    tool = CaselessStrEnum(
        ["brush", "eraser", "rectangle"], default_value="brush", help="The active painting tool."
    )
    brush_size = Int(24, min=1, max=MAX_BRUSH_SIZE, help="Brush diameter, in display (canvas) pixels.")
    opacity = Float(0.5, min=0.0, max=1.0, help="Opacity of the mask drawn over the image.")

    def __init__(self, image: Any = None, max_display_size: int = 512, **kwargs: Any) -> None:
        if int(max_display_size) < 16:
            raise ValueError(f"max_display_size must be at least 16 pixels; got {max_display_size}.")
        # State first: trait observers may run while the box is being built.
        self._max_display_size = int(max_display_size)
        self._image: Image.Image | None = None
        self._image_view: np.ndarray | None = None
        self._mask: EditableMask | None = None
        self._scale = (1.0, 1.0)
        self._stroke: _Stroke | None = None
        self._pointer: tuple[float, float] | None = None
        self._change_callbacks = widgets.CallbackDispatcher()

        canvas = MultiCanvas(3, width=max_display_size, height=max_display_size // 2)
        canvas.add_class("ipyimagegen-mask-canvas")
        tools = widgets.ToggleButtons(
            options=[("Brush", "brush"), ("Eraser", "eraser"), ("Rectangle", "rectangle")],
            icons=["paint-brush", "eraser", "square-o"],
            tooltips=["Paint the area to regenerate (B)", "Erase paint (E)", "Drag a rectangle to paint (R)"],
            style={"button_width": "auto"},
        )
        buttons = {
            name: widgets.Button(description=label, icon=icon, tooltip=tip, layout={"width": "auto"})
            for name, label, icon, tip in [
                ("fill", "Fill all", "square", "Regenerate the whole image"),
                ("clear", "Clear mask", "trash", "Remove all paint"),
                ("invert", "Invert", "adjust", "Swap painted and unpainted areas"),
                ("undo", "Undo", "undo", "Undo (Ctrl+Z)"),
                ("redo", "Redo", "repeat", "Redo (Ctrl+Shift+Z)"),
            ]
        }
        brush_slider = widgets.IntSlider(
            value=self.brush_size,
            min=1,
            max=MAX_BRUSH_SIZE,
            description="Brush",
            tooltip="Keys [ and ]",
            style={"description_width": "initial"},
        )
        opacity_slider = widgets.FloatSlider(
            value=self.opacity,
            min=0.0,
            max=1.0,
            step=0.05,
            description="Mask opacity",
            style={"description_width": "initial"},
        )
        status = widgets.Label()
        super().__init__(
            children=(
                widgets.HBox((tools, *buttons.values()), layout={"flex_flow": "row wrap"}),
                widgets.HBox((brush_slider, opacity_slider), layout={"flex_flow": "row wrap"}),
                canvas,
                status,
                CanvasKeys(),
            ),
            **kwargs,
        )
        self.add_class("ipyimagegen-mask-painter")
        self._canvas = canvas
        self._buttons = buttons
        self._status = status
        self._controls: tuple[widgets.Widget, ...] = (tools, brush_slider, opacity_slider, *buttons.values())
        self._links = [
            widgets.link((self, "tool"), (tools, "value")),
            widgets.link((self, "brush_size"), (brush_slider, "value")),
            widgets.link((self, "opacity"), (opacity_slider, "value")),
        ]

        buttons["fill"].on_click(lambda _: self.fill())
        buttons["clear"].on_click(lambda _: self.clear())
        buttons["invert"].on_click(lambda _: self.invert())
        buttons["undo"].on_click(lambda _: self.undo())
        buttons["redo"].on_click(lambda _: self.redo())
        canvas.on_client_ready(self._on_client_ready)
        canvas.on_mouse_down(self._on_mouse_down)
        canvas.on_mouse_move(self._on_mouse_move)
        canvas.on_mouse_up(self._on_mouse_up)
        canvas.on_mouse_out(self._on_mouse_out)
        canvas.on_touch_start(self._on_touch_start)
        canvas.on_touch_move(self._on_touch_move)
        canvas.on_touch_end(self._on_touch_end)
        canvas.on_touch_cancel(self._on_touch_cancel)
        if hasattr(canvas, "on_key_down"):
            canvas.on_key_down(self._on_key_down)

        self.set_image(image)

    # --- Public API -------------------------------------------------------------------------

    @property
    def canvas(self) -> MultiCanvas:
        """The MultiCanvas view: image, mask overlay and brush-cursor layers, bottom to top."""
        return self._canvas

    @property
    def image(self) -> Image.Image | None:
        """A copy of the image being masked, or ``None``."""
        return None if self._image is None else self._image.copy()

    @property
    def mask(self) -> np.ndarray | None:
        """A copy of the mask: bool, ``(height, width)`` of the image, ``True`` = regenerate."""
        return None if self._mask is None else self._mask.array.copy()

    @property
    def painted_fraction(self) -> float:
        """The share of the image marked for regeneration, from 0 to 1 (0 with no image)."""
        return 0.0 if self._mask is None else self._mask.painted_fraction

    @property
    def display_size(self) -> tuple[int, int]:
        """The canvas size ``(width, height)`` in pixels."""
        return (self._canvas.width, self._canvas.height)

    def set_image(self, source: Any) -> None:
        """Show a new image (path, bytes, PIL image or array) with an empty mask and no history.

        ``None`` removes the image and shows the empty canvas.
        """
        image = None if source is None else open_image(source)
        self._stroke = None
        self._image = image
        if image is None:
            self._mask, self._image_view, self._scale = None, None, (1.0, 1.0)
            self._resize_canvas(self._max_display_size, self._max_display_size // 2)
        else:
            width, height = image.size
            view_width, view_height = self._fit(width, height)
            view = image.convert("RGBA")
            if view.size != (view_width, view_height):
                view = view.resize((view_width, view_height), Image.Resampling.LANCZOS)
            self._image_view = np.asarray(view)
            self._mask = EditableMask(width, height)
            self._scale = (width / view_width, height / view_height)
            self._resize_canvas(view_width, view_height)
        with _batched_drawing():
            self._draw_all()
        self._changed()

    def set_mask(self, mask: Any, convention: masks.Convention = "auto") -> None:
        """Replace the mask, undoably.

        ``mask`` is a bool array (``True`` = regenerate) or a mask image (PNG bytes, path, PIL
        image): alpha 0 marks the area to regenerate or, in an image with no transparency, white
        does (see :mod:`ipyimagegen.masks`). A mask of another size than the image is resized.
        """
        state = self._require_mask()
        array = read_mask(mask, convention)
        self._apply(lambda: state.replace(masks.resize(array, (state.width, state.height))))

    def mask_png(self) -> bytes:
        """The mask as an RGBA PNG of the image's size: alpha 0 exactly where painted."""
        return masks.to_png(self._require_mask().array)

    def image_png(self) -> bytes:
        """The image as PNG bytes."""
        if self._image is None:
            raise RuntimeError("No image yet: call set_image(...) first.")
        return to_png(self._image)

    def fill(self) -> bool:
        """Mark the whole image for regeneration. Returns whether the mask changed."""
        return self._mask is not None and self._apply(self._mask.fill)

    def clear(self) -> bool:
        """Remove all paint. Returns whether the mask changed."""
        return self._mask is not None and self._apply(self._mask.clear)

    def invert(self) -> bool:
        """Swap painted and unpainted areas. Returns whether the mask changed."""
        return self._mask is not None and self._apply(self._mask.invert)

    def undo(self) -> bool:
        """Take back the last stroke or operation. Returns ``False`` when there was none."""
        return self._mask is not None and self._apply(self._mask.undo)

    def redo(self) -> bool:
        """Apply again the last undone stroke or operation. Returns ``False`` when there was none."""
        return self._mask is not None and self._apply(self._mask.redo)

    def on_change(self, callback: Callable[[MaskPainter], Any], remove: bool = False) -> None:
        """Call ``callback(painter)`` after each completed stroke or operation, and on a new image."""
        self._change_callbacks.register_callback(callback, remove=remove)

    def canvas_to_image(self, x: float, y: float) -> tuple[float, float]:
        """Map a canvas point (display pixels) to continuous image pixel coordinates."""
        return (x * self._scale[0], y * self._scale[1])

    def image_to_canvas(self, x: float, y: float) -> tuple[float, float]:
        """Map continuous image pixel coordinates to a canvas point (display pixels)."""
        return (x / self._scale[0], y / self._scale[1])

    def close(self) -> None:
        """Close the painter and the widgets it owns."""
        links, self._links = getattr(self, "_links", []), []
        for link in links:
            link.unlink()
        canvas = getattr(self, "_canvas", None)
        layers = canvas._canvases if canvas is not None else ()
        for widget in (*getattr(self, "_controls", ()), *layers, *self.children):
            widget.close()
        super().close()

    # --- Event handlers (ipycanvas argument shapes) -----------------------------------------

    def _on_mouse_down(self, x: float, y: float) -> None:
        self._pointer_down(x, y)

    def _on_mouse_move(self, x: float, y: float) -> None:
        self._pointer_move(x, y)

    def _on_mouse_up(self, x: float, y: float) -> None:
        self._pointer_up(x, y)

    def _on_mouse_out(self, x: float, y: float) -> None:
        self._pointer_leave()

    def _on_touch_start(self, touches: Sequence[tuple[float, float]]) -> None:
        if touches and self._stroke is None:
            self._pointer_down(*touches[0])

    def _on_touch_move(self, touches: Sequence[tuple[float, float]]) -> None:
        if touches:
            self._pointer_move(*touches[0])

    def _on_touch_end(self, touches: Sequence[tuple[float, float]]) -> None:
        self._pointer_leave()

    def _on_touch_cancel(self, touches: Sequence[tuple[float, float]]) -> None:
        self._pointer_leave()

    def _on_key_down(
        self, key: str, shift_key: bool = False, ctrl_key: bool = False, meta_key: bool = False
    ) -> None:
        step = max(1, self.brush_size // 5)
        tool = TOOL_KEYS.get(key.lower()) if not (ctrl_key or meta_key) else None
        if tool is not None:
            self.tool = tool
        elif key == "[":
            self.brush_size = max(1, self.brush_size - step)
        elif key == "]":
            self.brush_size = min(MAX_BRUSH_SIZE, self.brush_size + step)
        elif (ctrl_key or meta_key) and key.lower() == "y":
            self.redo()
        elif (ctrl_key or meta_key) and key.lower() == "z":
            if shift_key:
                self.redo()
            else:
                self.undo()

    def _on_client_ready(self) -> None:
        with _batched_drawing():
            self._draw_all()

    @observe("opacity")
    def _on_opacity_change(self, change: dict[str, Any]) -> None:
        if self._mask is not None:
            with _batched_drawing():
                self._draw_overlay()

    @observe("brush_size")
    def _on_brush_size_change(self, change: dict[str, Any]) -> None:
        if self._mask is not None:
            with _batched_drawing():
                self._draw_cursor()

    @observe("tool")
    def _on_tool_change(self, change: dict[str, Any]) -> None:
        if self._mask is not None:
            with _batched_drawing():
                changed = self._finish_stroke()
                self._draw_cursor()
            if changed:
                self._changed()

    # --- Painting ---------------------------------------------------------------------------

    def _pointer_down(self, x: float, y: float) -> None:
        if self._mask is None:
            return
        with _batched_drawing():
            changed = self._finish_stroke()
            self._pointer = (x, y)
            self._stroke = _Stroke(self.tool, (x, y), (x, y))
            self._mask.begin_edit()
            if self.tool != "rectangle":
                self._paint_segment(x, y, x, y)
            self._draw_cursor()
        if changed:
            self._changed()

    def _pointer_move(self, x: float, y: float) -> None:
        if self._mask is None:
            return
        with _batched_drawing():
            self._pointer = (x, y)
            stroke = self._stroke
            if stroke is not None:
                if stroke.tool != "rectangle":
                    self._paint_segment(*stroke.last, x, y)
                stroke.last = (x, y)
            self._draw_cursor()

    def _pointer_up(self, x: float, y: float) -> None:
        if self._mask is None:
            return
        with _batched_drawing():
            stroke = self._stroke
            if stroke is not None and stroke.last != (x, y):
                if stroke.tool != "rectangle":
                    self._paint_segment(*stroke.last, x, y)
                stroke.last = (x, y)
            self._pointer = (x, y)
            changed = self._finish_stroke()
            self._draw_cursor()
        if changed:
            self._changed()

    def _pointer_leave(self) -> None:
        if self._mask is None:
            return
        with _batched_drawing():
            self._pointer = None
            changed = self._finish_stroke()
            self._draw_cursor()
        if changed:
            self._changed()

    def _paint_segment(self, x0: float, y0: float, x1: float, y1: float) -> None:
        """Paint one piece of a brush or eraser stroke into the mask and onto the canvas."""
        assert self._mask is not None and self._stroke is not None
        erase = self._stroke.tool == "eraser"
        scale_x, scale_y = self._scale
        radius = self.brush_size / 2 * (scale_x + scale_y) / 2
        self._mask.paint_segment(x0 * scale_x, y0 * scale_y, x1 * scale_x, y1 * scale_y, radius, not erase)

        layer = self._canvas[_MASK_LAYER]
        layer.global_alpha = 1.0
        layer.line_width = self.brush_size
        layer.line_cap = "round"
        layer.line_join = "round"
        # Cut the segment's area out first, so that paint over paint keeps one even opacity.
        layer.global_composite_operation = "destination-out"
        self._trace(layer, x0, y0, x1, y1, "black")
        if not erase:
            layer.global_composite_operation = "source-over"
            self._trace(layer, x0, y0, x1, y1, self._mask_css())

    def _trace(self, layer: Canvas, x0: float, y0: float, x1: float, y1: float, colour: str) -> None:
        if (x0, y0) == (x1, y1):
            layer.fill_style = colour
            layer.fill_circle(x0, y0, self.brush_size / 2)
        else:
            layer.stroke_style = colour
            layer.stroke_line(x0, y0, x1, y1)

    def _finish_stroke(self) -> bool:
        """End the gesture in progress, record it and redraw the overlay from the mask.

        Returns whether the mask changed; the caller notifies once its drawing is sent.
        """
        stroke, self._stroke = self._stroke, None
        if stroke is None or self._mask is None:
            return False
        if stroke.tool == "rectangle":
            self._mask.paint_rect(
                *self.canvas_to_image(*stroke.start), *self.canvas_to_image(*stroke.last), True
            )
        changed = self._mask.end_edit()
        self._draw_overlay()
        return changed

    def _apply(self, operation: Callable[[], bool]) -> bool:
        """Run one whole-mask operation, redraw and notify. Returns whether the mask changed."""
        with _batched_drawing():
            changed = self._finish_stroke()
            if operation():
                changed = True
                self._draw_overlay()
        if changed:
            self._changed()
        return changed

    def _changed(self) -> None:
        self._update_controls()
        self._change_callbacks(self)

    # --- Drawing (callers hold the canvas) ---------------------------------------------------

    def _draw_all(self) -> None:
        layer = self._canvas[_IMAGE_LAYER]
        layer.clear()
        layer.global_alpha = 1.0
        layer.global_composite_operation = "source-over"
        if self._image_view is None:
            width, height = self.display_size
            layer.fill_style = "#f2f2f2"
            layer.fill_rect(0, 0, width, height)
            layer.fill_style = "#555555"
            layer.font = "15px sans-serif"
            layer.text_align = "center"
            layer.text_baseline = "middle"
            layer.fill_text(_HINT, width / 2, height / 2, width - 16)
        else:
            layer.put_image_data(self._image_view, 0, 0)
        self._draw_overlay()
        self._draw_cursor()

    def _draw_overlay(self) -> None:
        """Draw the whole mask over the image, at display resolution, from the Python mask."""
        layer = self._canvas[_MASK_LAYER]
        layer.clear()
        if self._mask is None:
            return
        width, height = self.display_size
        levels = masks.coverage(self._mask.array, (width, height))
        if not levels.any():
            return
        rgba = np.empty((height, width, 4), dtype=np.uint8)
        rgba[..., :3] = MASK_RGB
        rgba[..., 3] = levels * self.opacity
        layer.global_alpha = 1.0
        layer.global_composite_operation = "source-over"
        layer.put_image_data(rgba, 0, 0)

    def _draw_cursor(self) -> None:
        """Draw the brush outline under the pointer, or the rectangle being dragged."""
        layer = self._canvas[_CURSOR_LAYER]
        layer.clear()
        if self._mask is None:
            return
        layer.global_alpha = 1.0
        layer.global_composite_operation = "source-over"
        stroke = self._stroke
        if stroke is not None and stroke.tool == "rectangle":
            (x0, y0), (x1, y1) = stroke.start, stroke.last
            left, top, width, height = min(x0, x1), min(y0, y1), abs(x1 - x0), abs(y1 - y0)
            layer.fill_style = self._mask_css()
            layer.fill_rect(left, top, width, height)
            layer.line_width = 1
            layer.stroke_style = "white"
            layer.stroke_rect(left, top, width, height)
        elif self._pointer is not None:
            x, y = self._pointer
            if self.tool == "rectangle":
                shapes = [
                    lambda: layer.stroke_line(x - 8, y, x + 8, y),
                    lambda: layer.stroke_line(x, y - 8, x, y + 8),
                ]
            else:
                shapes = [lambda: layer.stroke_circle(x, y, self.brush_size / 2)]
            # A dark halo under a light line keeps the cursor visible on any image.
            for line_width, colour in ((3, "rgba(0, 0, 0, 0.6)"), (1, "white")):
                layer.line_width = line_width
                layer.stroke_style = colour
                for draw in shapes:
                    draw()

    def _mask_css(self) -> str:
        red, green, blue = MASK_RGB
        return f"rgba({red}, {green}, {blue}, {self.opacity:.3f})"

    # --- Helpers ----------------------------------------------------------------------------

    def _fit(self, width: int, height: int) -> tuple[int, int]:
        scale = min(1.0, self._max_display_size / max(width, height))
        return (max(1, round(width * scale)), max(1, round(height * scale)))

    def _resize_canvas(self, width: int, height: int) -> None:
        self._canvas.width = width
        self._canvas.height = height
        # As wide as the page gives it, up to the drawing's own size; the height follows the shape
        # (ipycanvas maps the pointer through the scale, so strokes land where they are drawn).
        self._canvas.layout.width = "100%"
        self._canvas.layout.max_width = f"{width}px"
        self._canvas.layout.height = "auto"

    def _require_mask(self) -> EditableMask:
        if self._mask is None:
            raise RuntimeError("No image yet: call set_image(...) before working with the mask.")
        return self._mask

    def _update_controls(self) -> None:
        state = self._mask
        for name in ("fill", "clear", "invert"):
            self._buttons[name].disabled = state is None
        self._buttons["undo"].disabled = state is None or not state.can_undo
        self._buttons["redo"].disabled = state is None or not state.can_redo
        if state is None or self._image is None:
            self._status.value = _HINT
        else:
            view_width, view_height = self.display_size
            self._status.value = (
                f"{state.width}×{state.height} image shown at {view_width}×{view_height}; "
                f"{state.painted_fraction:.1%} marked to regenerate."
            )
