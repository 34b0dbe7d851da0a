"""The painter's picture, drawn by ipycanvas: a MultiCanvas whose layers the kernel owns.

The full-resolution sources (the picture, the result to compare with, the mask, the user's
overlay) are hidden ipycanvas ``Canvas`` widgets at the picture's resolution, filled once per
change. The visible ``MultiCanvas`` has the view's size in device pixels; each of its layers is
drawn from the sources through an ipycanvas transform, so a zoom or pan sends a few commands and
no image bytes. Everything drawn is replayed when a page's canvas model appears
(``on_client_ready``): Voila, a reload and a second window show the same thing.

A small *stamp* canvas (``sync_image_data``) ends each batch with the numbers of what the batch
drew (the last stroke applied, the view shown); the page's input layer reads them once ipycanvas
has drawn the batch, and only then drops its own drawing of the stroke in progress.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from ipycanvas import Canvas, MultiCanvas, hold_canvas
from PIL import Image

from ..masks import BBox, row_runs

log = logging.getLogger(__name__)

MASK_COLOUR = "#ff00ff"
MAX_RUNS = 250_000
"""A mask region with more runs than this (a noisy wand selection) goes as a PNG instead."""
CHECKER_CSS_PX = 8
LAYERS = ("picture", "mask", "overlay", "marks")


@dataclass
class ViewState:
    """What the page shows: ``scale`` screen (CSS) pixels per picture pixel, the picture's top-left
    corner at ``(tx, ty)``, in a view of ``width x height`` CSS pixels at ``dpr`` device pixels each."""

    scale: float = 1.0
    tx: float = 0.0
    ty: float = 0.0
    width: float = 512.0
    height: float = 256.0
    dpr: float = 1.0
    version: int = 0

    def matrix(self) -> tuple[float, float, float, float, float, float]:
        """The transform from picture pixels to the canvas's device pixels."""
        k = self.scale * self.dpr
        return (k, 0.0, 0.0, k, self.tx * self.dpr, self.ty * self.dpr)

    def device_size(self) -> tuple[int, int]:
        return (max(1, round(self.width * self.dpr)), max(1, round(self.height * self.dpr)))


@dataclass
class Scene:
    """Everything the layers show besides the sources' pixels."""

    view: ViewState = field(default_factory=ViewState)
    opacity: float = 0.5
    feather: float = 0.0
    placement: tuple[float, float, float, float] | None = None
    shift: tuple[float, float] = (0.0, 0.0)  # the picture dragged in its frame, not yet dropped
    comparing: bool = False
    split: float = 0.5  # where the divider is, as a share of the width: before on its left, the result right
    pointer: tuple[float, float] | None = None  # picture pixels
    ring: float = 0.0  # the brush's radius in picture pixels (0: no ring)
    cross: bool = False  # a crosshair at the pointer (rectangle, wand)


class PainterLayers:
    """The ipycanvas widgets of one painter and the drawing of them (see the module's docstring)."""

    def __init__(self) -> None:
        self.canvas = MultiCanvas(len(LAYERS), width=512, height=256)
        self.canvas.add_class("ipyimagegen-painter-canvas")
        self.canvas.layout.width = "100%"
        self.canvas.layout.height = "auto"
        self.canvas.layout.grid_area = "1 / 1"
        self.picture_source = Canvas(width=1, height=1)
        self.after_source = Canvas(width=1, height=1)
        self.mask_source = Canvas(width=1, height=1)
        self.overlay = Canvas(width=1, height=1)
        self.checker = Canvas(width=1, height=1)
        self.stamp = Canvas(width=4, height=1, sync_image_data=True)
        self._picture: np.ndarray | None = None  # RGB or RGBA pixels, kept for replays
        self._transparent = False
        self._after: np.ndarray | None = None
        self._mask: np.ndarray | None = None  # the painter's live mask (read, never written)
        self._overlay_drawing: Callable[[Canvas], Any] | None = None
        self._scene = Scene()
        self._upto = (0, 0)  # (stroke id, points of it applied)
        self._batches = 0  # stamps drawn: each differs from the one before, so the page hears of it
        self._checker_size = (0, 0)
        self._marks_stale = False
        self._batching = False
        self.picture_source.on_client_ready(self._replay_picture)
        self.after_source.on_client_ready(self._replay_after)
        self.mask_source.on_client_ready(self._replay_mask)
        self.overlay.on_client_ready(self._replay_overlay)
        self.checker.on_client_ready(self._replay_checker)
        self.stamp.on_client_ready(lambda: self.redraw())
        for name in LAYERS:
            self._layer(name).on_client_ready(lambda: self.redraw())

    @contextmanager
    def _batch(self) -> Iterator[None]:
        """Everything drawn inside goes to the page as one message, however deep the calls nest
        (ipycanvas's own ``hold_canvas`` sends what it holds at the end of each, nested or not)."""
        if self._batching:
            yield
            return
        self._batching = True
        try:
            with hold_canvas():
                yield
        finally:
            self._batching = False

    @property
    def widgets(self) -> tuple[Any, ...]:
        """Every widget made here, for closing."""
        return (
            self.canvas, *(self._layer(name) for name in LAYERS), self.picture_source, self.after_source,
            self.mask_source, self.overlay, self.checker, self.stamp,
        )  # fmt: skip

    # --- the sources ---------------------------------------------------------------------------

    def set_picture(self, image: Image.Image | None, mask: np.ndarray | None, scene: Scene) -> None:
        """A new picture (and its mask array, which the painter keeps changing) or none, shown in ``scene``."""
        self._after = None
        self._mask = mask
        self._scene = replace(scene, comparing=False, shift=(0.0, 0.0))
        if image is None:
            self._picture = None
            with self._batch():
                for source in (self.picture_source, self.after_source, self.mask_source, self.overlay):
                    source.clear()
            self.redraw()
            return
        self._transparent = "A" in image.getbands() or "transparency" in image.info
        self._picture = np.asarray(image.convert("RGBA" if self._transparent else "RGB"))
        width, height = image.size
        for source in (self.picture_source, self.after_source, self.mask_source, self.overlay):
            source.width, source.height = width, height
        with self._batch():
            self.after_source.clear()  # a comparison belongs to the picture before
            self._replay_picture()
            self._replay_mask()
            self._replay_overlay()
            self.redraw()

    def set_after(self, image: Image.Image | None) -> None:
        """The result to compare with (already at the picture's size), or none."""
        self._after = None if image is None else np.asarray(image.convert("RGB"))
        self._replay_after()

    def follow(self, pointer: tuple[float, float]) -> None:
        """The pointer is at ``pointer`` (picture pixels): the ring is drawn there with the next batch."""
        self._scene = replace(self._scene, pointer=pointer)
        self._marks_stale = True

    def update_mask(self, box: BBox | None, upto: tuple[int, int] | None = None) -> None:
        """Draw ``box`` of the mask (all of it when None) into the mask source, then the mask layer
        (and the marks, when the pointer moved with the stroke)."""
        if upto is not None:
            self._upto = upto
        with self._batch():
            self._draw_mask_region(box)
            self._draw_layer("mask")
            if self._marks_stale:
                self._draw_layer("marks")
                self._marks_stale = False
            self._draw_stamp()

    def draw_overlay(self, drawing: Callable[[Canvas], Any] | None) -> None:
        """``drawing(overlay)`` now and whenever the overlay is drawn again; ``None`` removes it.
        A drawing that raises is not kept, and its error is raised here."""
        previous, self._overlay_drawing = self._overlay_drawing, drawing
        error = self._replay_overlay()
        if error is not None:
            self._overlay_drawing = previous
            self._replay_overlay()
            raise error

    # --- the visible layers --------------------------------------------------------------------

    @property
    def scene(self) -> Scene:
        return self._scene

    def show(self, scene: Scene, layers: tuple[str, ...] = LAYERS) -> None:
        """Draw ``layers`` for ``scene``, resizing the visible canvas to the view first. A new view
        is stamped (the page waits for it); a new ring or opacity is not."""
        new_view = scene.view != self._scene.view
        self._scene = scene
        size = scene.view.device_size()
        if (self.canvas.width, self.canvas.height) != size:
            self.canvas.width, self.canvas.height = size
            layers = LAYERS
        with self._batch():
            if "picture" in layers and self._transparent and self._checker_size != size:
                self._replay_checker()
            for name in layers:
                self._draw_layer(name)
            if new_view:
                self._draw_stamp()

    def redraw(self) -> None:
        """Every layer again, and the stamp (a page that appears waits for it)."""
        with self._batch():
            self.show(self._scene)
            self._draw_stamp()

    # --- drawing ------------------------------------------------------------------------------

    def _layer(self, name: str) -> Canvas:
        layer: Canvas = self.canvas[LAYERS.index(name)]
        return layer

    def _draw_layer(self, name: str) -> None:
        layer = self._layer(name)
        layer.clear()
        if self._picture is None:
            return
        scene = self._scene
        height, width = self._picture.shape[:2]
        layer.save()
        layer.set_transform(*scene.view.matrix())
        layer.image_smoothing_enabled = scene.view.scale * scene.view.dpr < 2
        if name == "picture":
            self._draw_picture(layer, scene, width, height)
        elif name == "mask":
            if not scene.comparing and scene.shift == (0.0, 0.0):
                layer.global_alpha = scene.opacity
                if scene.feather > 0:
                    layer.filter = f"blur({scene.feather * scene.view.scale * scene.view.dpr:.2f}px)"
                layer.draw_image(self.mask_source, 0, 0)
        elif name == "overlay":
            layer.draw_image(self.overlay, 0, 0)
        else:
            self._draw_marks(layer, scene, width, height)
        layer.restore()

    def _draw_picture(self, layer: Canvas, scene: Scene, width: int, height: int) -> None:
        dx, dy = scene.shift
        if self._transparent:
            layer.save()
            layer.begin_path()
            layer.rect(dx, dy, width, height)
            layer.clip()
            layer.reset_transform()
            layer.draw_image(self.checker, 0, 0)
            layer.restore()
        layer.draw_image(self.picture_source, dx, dy)
        if scene.comparing and self._after is not None:
            layer.save()
            layer.begin_path()
            layer.rect(width * scene.split, 0, width * (1 - scene.split), height)
            layer.clip()
            layer.draw_image(self.after_source, 0, 0)
            layer.restore()

    def _draw_marks(self, layer: Canvas, scene: Scene, width: int, height: int) -> None:
        """The outpainting frame, the comparison's divider and labels, the brush ring: in screen pixels."""
        view = scene.view
        layer.reset_transform()
        layer.scale(view.dpr)

        def screen(x: float, y: float) -> tuple[float, float]:
            return (view.tx + x * view.scale, view.ty + y * view.scale)

        if scene.placement is not None:
            px, py, pw, ph = scene.placement
            left, top = screen(px + scene.shift[0], py + scene.shift[1])
            layer.set_line_dash([6, 4])
            layer.line_width = 1.5
            layer.stroke_style = "rgba(0, 120, 215, 0.95)"
            layer.stroke_rect(left, top, pw * view.scale, ph * view.scale)
            layer.set_line_dash([])
        if scene.comparing and self._after is not None:
            x, top = screen(width * scene.split, 0)
            left, _ = screen(0, 0)
            right, _ = screen(width, 0)
            layer.fill_style = "white"
            layer.fill_rect(x - 1, top, 2, height * view.scale)
            layer.font = "12px sans-serif"
            layer.fill_style = "rgba(0, 0, 0, 0.6)"
            layer.fill_rect(left + 4, top + 4, 42, 18)
            layer.fill_rect(right - 50, top + 4, 46, 18)
            layer.fill_style = "white"
            layer.fill_text("Before", left + 7, top + 17)
            layer.fill_text("After", right - 43, top + 17)
            return
        if scene.pointer is None or not (scene.ring or scene.cross):
            return
        x, y = screen(*scene.pointer)
        for line_width, colour in ((3.0, "rgba(0, 0, 0, 0.6)"), (1.0, "white")):
            layer.line_width = line_width
            layer.stroke_style = colour
            if scene.ring:
                layer.stroke_circle(x, y, max(scene.ring * view.scale, 1.0))
            else:
                layer.stroke_line(x - 8, y, x + 8, y)
                layer.stroke_line(x, y - 8, x, y + 8)

    def _draw_mask_region(self, box: BBox | None) -> None:
        mask = self._mask
        if mask is None or self._picture is None:
            return
        height, width = mask.shape
        row0, row1, col0, col1 = box if box is not None else (0, height, 0, width)
        if row0 >= row1 or col0 >= col1:
            return
        source = self.mask_source
        source.clear_rect(col0, row0, col1 - col0, row1 - row0)
        region = mask[row0:row1, col0:col1]
        xs, ys, lengths = row_runs(region)
        if not len(xs):
            return
        if len(xs) > MAX_RUNS:
            rgba = np.zeros((*region.shape, 4), dtype=np.uint8)
            rgba[region] = (255, 0, 255, 255)
            source.put_image_data(rgba, col0, row0)
            return
        source.fill_style = MASK_COLOUR
        source.fill_rects(xs + col0, ys + row0, lengths, 1)

    def _draw_stamp(self) -> None:
        """The numbers of what this batch drew, as pixels the page reads back: the stroke applied
        (its id, and how many of its points), the view's version, and the batch's own number."""
        stamp = self.stamp
        self._batches += 1
        numbers = (self._upto[0], self._upto[1], self._scene.view.version, self._batches)
        for x, value in enumerate(numbers):
            value = int(value) & 0xFFFFFF
            stamp.fill_style = f"#{value:06x}"
            stamp.fill_rect(x, 0, 1, 1)

    # --- replays ------------------------------------------------------------------------------

    def _replay_picture(self) -> None:
        if self._picture is not None:
            with self._batch():
                self.picture_source.clear()
                self._put_picture(self.picture_source, self._picture)
                self._draw_layer("picture")
                self._draw_stamp()

    @staticmethod
    def _put_picture(source: Canvas, pixels: np.ndarray) -> None:
        """The picture into ``source``: its colours as a JPEG, and a transparency that is all or
        nothing (an outpainting frame's border) cut out by rectangles, exactly; a soft one as a PNG."""
        alpha = pixels[..., 3] if pixels.shape[-1] == 4 else None
        if alpha is not None and not np.isin(alpha, (0, 255)).all():
            source.put_image_data(pixels, 0, 0)
            return
        source.put_image_data(np.ascontiguousarray(pixels[..., :3]), 0, 0)
        if alpha is None or alpha.all():
            return
        xs, ys, lengths = row_runs(alpha == 255)
        if len(xs) > MAX_RUNS:
            source.clear()
            source.put_image_data(pixels, 0, 0)
            return
        # Keep only what the runs cover: one path of all of them, filled once ("destination-in"
        # applies per drawing: rectangle by rectangle, each would erase the others).
        source.global_composite_operation = "destination-in"
        source.fill_style = "#000000"
        source.begin_path()
        for x, y, length in zip(xs.tolist(), ys.tolist(), lengths.tolist(), strict=True):
            source.rect(x, y, length, 1)
        source.fill()
        source.global_composite_operation = "source-over"

    def _replay_after(self) -> None:
        with self._batch():
            self.after_source.clear()
            if self._after is not None:
                self.after_source.put_image_data(self._after, 0, 0)
            self._draw_layer("picture")
            self._draw_layer("marks")
            self._draw_stamp()

    def _replay_mask(self) -> None:
        with self._batch():
            self.mask_source.clear()
            self._draw_mask_region(None)
            self._draw_layer("mask")
            self._draw_stamp()

    def _replay_overlay(self) -> Exception | None:
        """The user's drawing again; what it raised, if anything (then the overlay is left clear)."""
        error: Exception | None = None
        with self._batch():  # nothing may raise in here: ipycanvas would go on holding every command
            self.overlay.clear()
            if self._overlay_drawing is not None and self._picture is not None:
                self.overlay.save()
                try:
                    self._overlay_drawing(self.overlay)
                except Exception as exc:
                    log.warning("the painter's overlay drawing failed: %s", exc)
                    error = exc
                self.overlay.restore()
                if error is not None:
                    self.overlay.clear()
            self._draw_layer("overlay")
            self._draw_stamp()
        return error

    def _replay_checker(self) -> None:
        width, height = self._scene.view.device_size()
        self._checker_size = (width, height)
        self.checker.width, self.checker.height = width, height
        tile = max(1, round(CHECKER_CSS_PX * self._scene.view.dpr))
        columns, rows = math.ceil(width / tile), math.ceil(height / tile)
        grid_y, grid_x = np.nonzero((np.add.outer(np.arange(rows), np.arange(columns)) % 2) == 0)
        with self._batch():
            self.checker.fill_style = "#ffffff"
            self.checker.fill_rect(0, 0, width, height)
            self.checker.fill_style = "#d9d9d9"
            self.checker.fill_rects(grid_x * tile, grid_y * tile, tile, tile)
            self._draw_layer("picture")
            self._draw_stamp()
