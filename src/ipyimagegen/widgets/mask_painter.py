"""MaskPainter: paint, over an image, the area that an edit should regenerate.

The mask lives in Python at the image's full resolution (:class:`EditableMask`), the single
source of truth. ipycanvas draws the picture, the mask, the outpainting frame, the brush ring and
the before/after view on a ``MultiCanvas`` whose layers this kernel owns (:mod:`.painter_layers`),
zoomed and panned by its transforms. A thin input layer over it (:mod:`.painter_input`) takes the
pointer, keys and wheel, draws the stroke in progress at once and sends its points here in
batches; each batch is painted into the mask and drawn into ipycanvas's mask layer, so what is
sent to the model is what was seen.

Coordinates are continuous image pixels: pixel ``(row, col)`` covers ``[col, col + 1) x
[row, row + 1)``. The brush size is given in pixels of the view when the picture fits it
(``display_size``), so a brush covers the same part of a large or a small picture; zooming in
makes it larger on screen, as in any paint program.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from typing import Any

import ipywidgets as widgets
import numpy as np
from ipycanvas import Canvas, MultiCanvas
from PIL import Image
from traitlets import CaselessStrEnum, Float, Int, observe

from .. import masks
from ..imaging import open_image, read_mask, to_png
from ..masks import union_box
from .lifecycle import close_tree
from .mask_model import EditableMask
from .painter_input import MAX_BRUSH_SIZE, PainterInput
from .painter_layers import LAYERS as LAYER_NAMES
from .painter_layers import PainterLayers, ViewState

TOOL_KEYS = {"b": "brush", "e": "eraser", "r": "rectangle", "w": "wand", "m": "move"}
"""Keys that pick a tool while the pointer is over the picture."""
MAX_FEATHER = 100.0
"""The widest soft edge, in image pixels."""

_HINT = "No image yet: load one, then paint the area to regenerate."
_TOOLS = [
    ("Brush", "brush", "paint-brush", "Paint the area to regenerate (B)"),
    ("Eraser", "eraser", "eraser", "Erase paint (E)"),
    ("Rectangle", "rectangle", "square-o", "Drag a rectangle to paint (R)"),
    ("Wand", "wand", "magic", "Select by colour: click adds a similar area, Alt+click removes it (W)"),
    ("Move", "move", "arrows", "Drag the picture inside the outpainting frame (M)"),
]


class MaskPainter(widgets.VBox):
    """Paint a mask over an image: brush, eraser, rectangle and magic wand, with undo and redo.

    ``mask`` is a bool array at the image's full resolution, ``True`` where the image should be
    regenerated; ``mask_png()`` gives it as the RGBA PNG that the Images API expects (alpha 0
    where painted). In the page: Ctrl/⌘+wheel zooms, space-drag or middle-drag pans, Fit and
    100% are in the corner; keys ``[``/``]`` change the brush, B/E/R/W pick a tool and
    Ctrl/⌘+Z undoes while the pointer is over the picture.

    ``canvas`` is the ipycanvas ``MultiCanvas`` that shows it all; draw your own guides, grids or
    boxes with :meth:`draw_overlay`, in picture pixels: they stay aligned under zoom and pan.

    Size: it is the painter's whole public surface (the picture and mask in and out, painting,
    rectangles, the wand, fill, clear, invert, undo and redo, zoom, placement, the overlay,
    callbacks) over the mask model, plus the gestures its input layer sends and the controls and
    ipycanvas scene it keeps in step.

    Args:
        image: a path, PNG/JPEG bytes, PIL image or array; ``None`` shows an empty view.
        max_display_size: the longest side of the view, in pixels, when the picture fits it.
        fill: the view takes the width it is given (up to ``max_display_size``) and no more of the
            height the page shows (the window, or JupyterLab's notebook panel) than leaves room for
            the controls around it (CSS variable ``--ipyimagegen-painter-reserve``, 200px by default).
            The mask always keeps the image's resolution.
    """

    tool = CaselessStrEnum(
        ["brush", "eraser", "rectangle", "wand", "move"], default_value="brush", help="The active tool."
    )
    brush_size = Int(24, min=1, max=MAX_BRUSH_SIZE, help="Brush diameter, in pixels of the fitted view.")
    opacity = Float(0.5, min=0.0, max=1.0, help="Opacity of the mask drawn over the image.")
    feather = Float(
        0.0, min=0.0, max=MAX_FEATHER, help="Soft edge of the mask, in image pixels (0: a hard edge)."
    )
    tolerance = Int(32, min=0, max=masks.MAX_TOLERANCE, help="How far a colour may be from the clicked one.")
    wand_mode = CaselessStrEnum(["add", "subtract"], default_value="add", help="What a wand click does.")

    def __init__(
        self, image: Any = None, max_display_size: int = 512, fill: bool = False, **kwargs: Any
    ) -> None:
        if int(max_display_size) < 16:
            raise ValueError(f"max_display_size must be at least 16 pixels; got {max_display_size}.")
        self._max_display_size = int(max_display_size)
        self._fill = bool(fill)
        self._image: Image.Image | None = None
        self._pixels: np.ndarray | None = None
        self._version = 0
        self._mask: EditableMask | None = None
        self._scale = (1.0, 1.0)
        self._stroke_id: int | None = None  # the stroke being received
        self._stroke_last: tuple[float, float] | None = None
        self._stroke_points = 0  # of the stroke being received, applied so far
        self._closed_stroke: int | None = None  # a stroke ended before its last batch came
        self._upto = 0  # the last stroke applied
        self._after = False
        self._change_callbacks = widgets.CallbackDispatcher()
        self._move_callbacks = widgets.CallbackDispatcher()
        self._cycle_callbacks = widgets.CallbackDispatcher()

        layers = PainterLayers()
        view = PainterInput(hint=_HINT, tool_keys=TOOL_KEYS, stamp=layers.stamp)
        view.layout.grid_area = "1 / 1"
        stage = widgets.GridBox(
            (layers.canvas, view),
            layout={"width": "100%", "grid_template_columns": "minmax(0, 1fr)", "align_items": "flex-start"},
        )
        stage.add_class("ipyimagegen-painter")
        tools = widgets.ToggleButtons(style={"button_width": "auto"})
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
        slider_style = {"description_width": "initial"}
        brush_slider = widgets.IntSlider(
            min=1, max=MAX_BRUSH_SIZE, description="Brush", tooltip="Keys [ and ]", style=slider_style
        )
        opacity_slider = widgets.FloatSlider(
            min=0.0, max=1.0, step=0.05, description="Mask opacity", style=slider_style
        )
        feather_slider = widgets.FloatSlider(
            min=0.0, max=MAX_FEATHER, step=1.0, description="Feather", readout_format=".0f",
            tooltip="Soft edge, in image pixels: the view shows how the edit will blend in",
            style=slider_style,
        )  # fmt: skip
        feather_slider.add_class("ipyimagegen-feather")
        tolerance_slider = widgets.IntSlider(
            min=0, max=masks.MAX_TOLERANCE, description="Tolerance", style=slider_style
        )
        wand_modes = widgets.ToggleButtons(
            options=[("Adds", "add"), ("Removes", "subtract")],
            tooltips=["A click adds the area to the mask", "A click removes the area (or Alt+click)"],
            style={"button_width": "auto"},
        )
        wand_row = widgets.HBox((tolerance_slider, wand_modes), layout={"flex_flow": "row wrap"})
        wand_row.add_class("ipyimagegen-wand-row")
        status = widgets.Label()
        super().__init__(
            children=(
                widgets.HBox((tools, *buttons.values()), layout={"flex_flow": "row wrap"}),
                widgets.HBox(
                    (brush_slider, opacity_slider, feather_slider), layout={"flex_flow": "row wrap"}
                ),
                stage,
                wand_row,  # under the picture: showing it never moves the picture under the pointer
                status,
            ),
            **kwargs,
        )
        self.add_class("ipyimagegen-mask-painter")
        self._view = view
        self._layers = layers
        self._stage = stage
        self._parts = (*layers.widgets, view)
        self._tools = tools
        self._buttons = buttons
        self._status = status
        self._wand_row = wand_row
        self._controls: tuple[widgets.Widget, ...] = (
            tools, brush_slider, opacity_slider, feather_slider, tolerance_slider, wand_modes,
            *buttons.values(),
        )  # fmt: skip
        self._offer_tools(moving=False)
        self._links = [
            widgets.link((self, "tool"), (tools, "value")),
            widgets.link((self, "tool"), (view, "tool")),
            widgets.link((self, "brush_size"), (brush_slider, "value")),
            widgets.link((self, "brush_size"), (view, "brush_size")),
            widgets.link((self, "opacity"), (opacity_slider, "value")),
            widgets.link((self, "opacity"), (view, "opacity")),
            widgets.link((self, "feather"), (feather_slider, "value")),
            widgets.link((self, "tolerance"), (tolerance_slider, "value")),
            widgets.link((self, "wand_mode"), (wand_modes, "value")),
            widgets.link((self, "wand_mode"), (view, "wand_mode")),
        ]
        buttons["fill"].on_click(lambda _: self.fill())
        buttons["clear"].on_click(lambda _: self.clear())
        buttons["invert"].on_click(lambda _: self.invert())
        buttons["undo"].on_click(lambda _: self.undo())
        buttons["redo"].on_click(lambda _: self.redo())
        view.on_gesture(self._on_gesture)
        view.on_want(self._tell_page)
        self.observe(lambda _change: self._show(("mask",)), ["opacity", "feather"])
        self.observe(lambda _change: self._show(("marks",)), ["brush_size"])
        view.observe(lambda _change: self._update_status(), "zoom")
        self._show_wand_row()
        self.set_image(image)

    # --- Public API -------------------------------------------------------------------------

    @property
    def view(self) -> PainterInput:
        """The input layer over the ipycanvas view: pointer, keys, zoom and the stroke in progress."""
        return self._view

    @property
    def canvas(self) -> MultiCanvas:
        """The ipycanvas ``MultiCanvas`` the painter is drawn on, at the view's size.

        Its layers are redrawn by the painter at every zoom, pan and change: draw your own
        marks with :meth:`draw_overlay`, which keeps them in picture pixels.
        """
        return self._layers.canvas

    @property
    def overlay(self) -> Canvas:
        """The ipycanvas ``Canvas`` for your own drawing, at the picture's resolution, shown over the
        picture and mask. Draw on it through :meth:`draw_overlay`, so it is drawn again when needed."""
        return self._layers.overlay

    def draw_overlay(self, drawing: Callable[[Canvas], Any] | None) -> None:
        """Draw your own guides, grids or boxes over the picture with ipycanvas calls.

        ``drawing(overlay)`` gets :attr:`overlay` (an ipycanvas ``Canvas`` of the picture's size,
        in picture pixels, cleared) and is called now, and again when a page's view appears, when
        the picture changes and when you call this again. ``None`` removes the drawing. It stays
        aligned with the picture under zoom and pan; lines are in picture pixels, so scale their
        width with the picture.
        """
        self._layers.draw_overlay(drawing)

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
        """The picture's size on the page when it fits the view, in CSS pixels (before a page has
        shown it: the largest it may take)."""
        if self._image is None:
            width, height = self._view.box
            return (int(width), int(height))
        return (round(self._image.width / self._scale[0]), round(self._image.height / self._scale[1]))

    @property
    def brush_radius(self) -> float:
        """The brush's radius in image pixels."""
        return max(self.brush_size / 2 * (self._scale[0] + self._scale[1]) / 2, 0.71)

    def set_image(self, source: Any) -> None:
        """Show a new image (path, bytes, PIL image or array) with an empty mask and no history.

        ``None`` removes the image and shows the empty view.
        """
        image = None if source is None else open_image(source)
        self._image = image
        self._pixels = None
        self._after = False
        self._version += 1
        self._stroke_id, self._stroke_last = None, None
        if image is None:
            self._mask, self._scale = None, (1.0, 1.0)
            box = [self._max_display_size, self._max_display_size // 2]
        else:
            width, height = image.size
            view_width, view_height = self._fit(width, height)
            self._mask = EditableMask(width, height)
            self._scale = (width / view_width, height / view_height)
            box = [view_width, view_height]
        self._view.box = box
        self._view.picture = [] if image is None else list(image.size)
        self._view.comparing = []
        self._view.hint = _HINT if image is None else ""
        self._stage.layout.max_width = f"{box[0] + 2}px"  # and its border
        if self._fill:  # as wide as it may be, and no taller than the window leaves room for
            self._stage.layout.width = (
                "min(100%, calc((var(--ipyimagegen-window, 100vh) - var(--ipyimagegen-painter-reserve, 200px))"
                f" * {box[0] / box[1]:.5f} + 2px))"
            )
        previous = self._layers.scene.view
        fitted = ViewState(
            scale=box[0] / image.size[0] if image is not None else 1.0,
            width=box[0], height=box[1], dpr=previous.dpr, version=previous.version,
        )  # fmt: skip
        self._layers.set_picture(
            image, None if self._mask is None else self._mask.array, replace(self._layers.scene, view=fitted)
        )
        self._tell_page()
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

    def soft_mask(self) -> np.ndarray:
        """The mask with its feathered edge: float32, 1 = regenerate, 0 = keep (see :func:`masks.soften`)."""
        return masks.soften(self._require_mask().array, self.feather)

    def image_png(self) -> bytes:
        """The image as PNG bytes."""
        if self._image is None:
            raise RuntimeError("No image yet: call set_image(...) first.")
        return to_png(self._image)

    def paint(self, points: Sequence[tuple[float, float]], erase: bool = False) -> bool:
        """Paint (or erase) a brush stroke through ``points`` (image pixels), as one undoable edit."""
        state = self._require_mask()
        self._end_stroke()
        state.begin_edit()
        radius = self.brush_radius
        previous = points[0] if points else None
        for point in points:
            assert previous is not None
            state.paint_segment(*previous, *point, radius, not erase)
            previous = point
        return self._finish(state.end_edit(), state.last_box)

    def paint_rect(self, x0: float, y0: float, x1: float, y1: float, erase: bool = False) -> bool:
        """Paint (or erase) the rectangle with corners ``(x0, y0)`` and ``(x1, y1)``, as one edit."""
        state = self._require_mask()
        self._end_stroke()
        state.begin_edit()
        state.paint_rect(x0, y0, x1, y1, not erase)
        return self._finish(state.end_edit(), state.last_box)

    def select_colour(self, x: float, y: float, subtract: bool = False) -> bool:
        """The magic wand at ``(x, y)``: the joined area of similar colour (``tolerance``) is added
        to the mask, or removed from it with ``subtract``, as one edit. Returns whether it changed."""
        state = self._require_mask()
        self._end_stroke()
        if self._pixels is None:
            assert self._image is not None
            mode = "RGBA" if "A" in self._image.getbands() else "RGB"
            self._pixels = np.asarray(self._image.convert(mode))
        region = masks.select_colour(self._pixels, x, y, self.tolerance)
        return self._finish(state.combine(region, not subtract), state.last_box)

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

    def on_move(self, callback: Callable[[float, float], Any], remove: bool = False) -> None:
        """Call ``callback(dx, dy)`` (image pixels) when the picture is dragged in its frame."""
        self._move_callbacks.register_callback(callback, remove=remove)

    def on_cycle(self, callback: Callable[[int], Any], remove: bool = False) -> None:
        """Call ``callback(step)`` (-1 or 1) when ← or → is pressed over the picture."""
        self._cycle_callbacks.register_callback(callback, remove=remove)

    def set_placement(self, box: tuple[float, float, float, float] | None) -> None:
        """Where the loaded picture sits in an outpainting frame (x, y, width, height), or ``None``:
        the frame is outlined and the Move tool offered."""
        self._view.placement = [] if box is None else [float(v) for v in box]
        self._offer_tools(moving=box is not None)
        placement = None if box is None else (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
        self._show(("marks",), placement=placement)

    def show_after(self, image: Any | None, show: bool = True, split: float = 0.5) -> None:
        """Compare the picture with ``image`` (an edit's result; scaled to the picture), or stop.
        The picture before is left of the divider at ``split`` (a share of the width), the result
        right of it."""
        if image is None or self._image is None:
            self._after = False
            self._layers.set_after(None)
            self._view.comparing = []
            self._show(LAYER_NAMES, comparing=False)
            return
        after = open_image(image)
        if after.size != self._image.size:
            after = after.resize(self._image.size, Image.Resampling.LANCZOS)
        self._after = True
        self._layers.set_after(after)
        split = min(max(float(split), 0.0), 1.0)
        self._view.comparing = [bool(show), split]
        self._show(LAYER_NAMES, comparing=bool(show), split=split)

    def zoom_to(self, scale: float | str) -> None:
        """Zoom the view: ``"fit"``, or a scale (1.0: one image pixel per screen pixel)."""
        self._view.zoom_to(scale)

    def canvas_to_image(self, x: float, y: float) -> tuple[float, float]:
        """Map a point of the fitted view (display pixels) to continuous image pixel coordinates."""
        return (x * self._scale[0], y * self._scale[1])

    def image_to_canvas(self, x: float, y: float) -> tuple[float, float]:
        """Map continuous image pixel coordinates to a point of the fitted view (display pixels)."""
        return (x / self._scale[0], y / self._scale[1])

    def close(self) -> None:
        """Close the painter and the widgets it owns."""
        links, self._links = getattr(self, "_links", []), []
        for link in links:
            link.unlink()
        for widget in (*getattr(self, "_controls", ()), *getattr(self, "_parts", ())):
            close_tree(widget)
        for widget in self.children:
            widget.close()
        super().close()

    # --- From the page ----------------------------------------------------------------------

    def _on_gesture(self, gesture: dict[str, Any]) -> None:
        kind = gesture["kind"]
        if kind == "view":
            self._show_view(gesture)
            return
        if kind == "hover":
            self._show(("marks",), pointer=gesture["point"])
            return
        if self._mask is None or gesture.get("picture") not in (None, self._version):
            return  # drawn on a picture that has gone since
        if kind == "stroke":
            self._stroke_part(gesture)
        elif kind == "rect":
            self._end_stroke()
            self._upto, self._stroke_points = gesture["id"], 0
            self._mask.begin_edit()
            x0, y0, x1, y1 = gesture["points"]
            self._mask.paint_rect(x0, y0, x1, y1, True)
            box = self._mask.dirty_box
            self._finish(self._mask.end_edit(), box, acknowledge=True)
        elif kind == "wand":
            self.select_colour(gesture["x"], gesture["y"], subtract=gesture["subtract"])
        elif kind == "moving":
            if self.tool == "move" and self._view.placement:  # only during a Move drag
                self._show(("picture", "mask", "marks"), shift=(gesture["dx"], gesture["dy"]))
        elif kind == "move":
            self._show(("picture", "mask", "marks"), shift=(0.0, 0.0))
            self._move_callbacks(gesture["dx"], gesture["dy"])
        elif kind == "compare":
            self._view.comparing = [gesture["on"], gesture["split"]] if self._after else []
            self._show(LAYER_NAMES, comparing=gesture["on"] and self._after, split=gesture["split"])
        elif kind == "cycle":
            self._cycle_callbacks(gesture["step"])
        elif kind == "undo":
            self.undo()
        elif kind == "redo":
            self.redo()

    def _show_view(self, gesture: dict[str, Any]) -> None:
        """The page zoomed, panned or resized: the layers drawn again through the new transform.
        The brush keeps its size in the page's pixels when the picture fits the view there."""
        fields = {name: gesture[name] for name in ("scale", "tx", "ty", "width", "height", "dpr")}
        if self._image is not None:
            fit = min(fields["width"] / self._image.width, fields["height"] / self._image.height)
            self._scale = (1 / fit, 1 / fit)
        view = ViewState(version=gesture["version"], **fields)
        self._show(LAYER_NAMES, view=view)
        # Every page showing this painter shows this view now (one canvas): they take it up.
        self._view.send({"event": "shown", "page": gesture["page"], "view": asdict(view)})
        if abs(self._view.zoom - gesture["scale"]) > 1e-4:
            self._view.zoom = gesture["scale"]

    def _stroke_part(self, gesture: dict[str, Any]) -> None:
        """A batch of a stroke's points: painted into the mask and drawn into ipycanvas's mask
        layer; the stroke's last batch ends the edit."""
        state = self._mask
        assert state is not None
        if gesture["id"] == self._closed_stroke:  # ended here early (an undo, a tool key): the rest is
            self._stroke_points += len(gesture["points"]) // 2  # not painted, only acknowledged
            self._upto = gesture["id"]
            self._layers.update_mask((0, 0, 0, 0), (self._upto, self._stroke_points))
            return
        if gesture["id"] != self._stroke_id:
            self._end_stroke()
            self._stroke_id, self._stroke_last, self._stroke_points = gesture["id"], None, 0
            state.begin_edit()
        value = gesture["tool"] != "eraser"
        radius = self.brush_radius
        # A pointer far outside the picture (a strongly zoomed view) is brought nearer: a line's
        # direction is kept for any point within a few picture sizes, and the float32 rasteriser
        # stays exact.
        reach = 4.0 * max(state.width, state.height)
        points = [min(max(coordinate, -reach), reach) for coordinate in gesture["points"]]
        last = self._stroke_last
        touched: masks.BBox | None = None
        pressures = gesture.get("pressures")
        for index in range(0, len(points), 2):
            point = (points[index], points[index + 1])
            start = last if last is not None else point
            width = radius * pressures[index // 2] if pressures else radius
            segment = (start[0], start[1], point[0], point[1])
            touched = union_box(touched, state.paint_segment(*segment, max(width, 0.71), value))
            last = point
        self._stroke_last = last
        self._stroke_points += len(points) // 2
        self._upto = gesture["id"]
        if last is not None:  # the ring follows the stroke (the page sends no hover meanwhile)
            self._layers.follow(last)
        if gesture["end"]:
            self._stroke_id, self._stroke_last = None, None
            self._finish(state.end_edit(), touched, acknowledge=True)
        else:
            self._layers.update_mask(touched, (self._upto, self._stroke_points))

    def _end_stroke(self) -> None:
        """Finish a stroke whose last batch never came (the page went away mid-stroke)."""
        if self._stroke_id is None or self._mask is None:
            return
        self._closed_stroke = self._stroke_id
        self._stroke_id, self._stroke_last = None, None
        self._finish(self._mask.end_edit(), None, acknowledge=True)

    # --- Keeping the page in step -------------------------------------------------------------

    def _finish(self, changed: bool, box: masks.BBox | None, acknowledge: bool = False) -> bool:
        """After an edit: the region it touched drawn by ipycanvas (also unchanged, for a gesture
        the page drew itself: ``acknowledge``, so the page can drop its drawing), then the listeners."""
        if (changed or acknowledge) and self._mask is not None:
            self._layers.update_mask(
                box if box is not None else (0, 0, 0, 0), (self._upto, self._stroke_points)
            )
        if changed:
            self._changed()
        return changed

    def _apply(self, operation: Callable[[], bool]) -> bool:
        """Run one whole-mask operation, draw what changed and notify. Returns whether it changed."""
        self._end_stroke()
        state = self._mask
        changed = operation()
        return self._finish(changed, state.last_box if state is not None else None)

    def _show(self, layers: tuple[str, ...], **changes: Any) -> None:
        """Draw ``layers`` of the ipycanvas scene again, with ``changes`` to it."""
        scene = self._layers.scene
        tool = self.tool
        ring = self.brush_radius if tool in ("brush", "eraser") else 0.0
        self._layers.show(
            replace(scene, opacity=self.opacity, feather=self.feather, ring=ring,
                    cross=tool in ("rectangle", "wand"), **changes),
            layers,
        )  # fmt: skip

    def _tell_page(self) -> None:
        """What a page showing the input layer starts from: the picture, the last stroke, the view."""
        view = self._layers.scene.view
        picture = [] if self._image is None else list(self._image.size)
        self._view.tell(self._version, picture, self._upto, asdict(view))

    def _changed(self) -> None:
        self._update_controls()
        self._change_callbacks(self)

    # --- Controls -----------------------------------------------------------------------------

    def _offer_tools(self, moving: bool) -> None:
        offered = [tool for tool in _TOOLS if moving or tool[1] != "move"]
        if not moving and self.tool == "move":
            self.tool = "brush"
        self._tools.options = [(label, value) for label, value, _icon, _tip in offered]
        self._tools.icons = [icon for _label, _value, icon, _tip in offered]
        self._tools.tooltips = [tip for _label, _value, _icon, tip in offered]
        self._tools.value = self.tool

    @observe("tool")
    def _on_tool_change(self, change: dict[str, Any]) -> None:
        self._end_stroke()
        self._show_wand_row()
        if hasattr(self, "_layers"):
            self._show(("marks",))

    def _show_wand_row(self) -> None:
        if hasattr(self, "_wand_row"):
            self._wand_row.layout.display = None if self.tool == "wand" else "none"

    def _fit(self, width: int, height: int) -> tuple[int, int]:
        scale = min(1.0, self._max_display_size / max(width, height))
        return (max(1, round(width * scale)), max(1, round(height * scale)))

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
        self._update_status()

    def _update_status(self) -> None:
        state = self._mask
        if state is None or self._image is None:
            self._status.value = _HINT
            return
        zoom = self._view.zoom
        shown = f"shown at {zoom:.0%}" if zoom > 0 else "fitted to the view"
        self._status.value = (
            f"{state.width}×{state.height} image, {shown}; {state.painted_fraction:.1%} marked to regenerate."
        )
