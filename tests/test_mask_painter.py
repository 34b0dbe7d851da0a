"""MaskPainter and its numpy mask model, driven in pure Python the way its page drives it.

:class:`PageSide` plays the page: it sends gestures as the input layer sends them (stroke points
in batches, in image pixels) and draws ipycanvas's canvases from the commands the kernel sends
them, so tests check that what ipycanvas shows is the kernel's mask.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

from canvas_recorder import CanvasRecorder
from ipyimagegen.masks import paint_rect, paint_segment
from ipyimagegen.widgets.mask_model import EditableMask
from ipyimagegen.widgets.mask_painter import MaskPainter
from ipyimagegen.widgets.painter_input import MAX_POINTS_PER_MESSAGE


def make_image(width: int, height: int) -> Image.Image:
    gradient = np.linspace(0, 255, width, dtype=np.uint8)
    pixels = np.broadcast_to(gradient[np.newaxis, :, np.newaxis], (height, width, 3))
    return Image.fromarray(np.ascontiguousarray(pixels))


class PageSide:
    """The page's side of a painter: its ipycanvas canvases as a browser draws them from the
    kernel's commands (:class:`CanvasRecorder`), and gestures sent as the input layer sends them
    (stroke points in batches, in image pixels). Made after the painter, it is a page that
    appears: every canvas model says it is ready, and the input layer asks for the state."""

    def __init__(self, painter: MaskPainter) -> None:
        self.painter = painter
        self.view = painter.view
        self.layers = painter._layers
        self.messages: list[dict[str, Any]] = []
        self.next_id = painter._upto
        self.recorder = CanvasRecorder().__enter__()  # closed after the test (conftest)
        for source in (self.layers.picture_source, self.layers.after_source, self.layers.mask_source,
                       self.layers.stamp):  # fmt: skip
            self.recorder.track(source)
        original = self.view.send

        def record(content: dict[str, Any], buffers: list[bytes] | None = None) -> None:
            self.messages.append(content)
            original(content, buffers=buffers)

        self.view.send = record
        for canvas in (*(self.layers.canvas[i] for i in range(4)), self.layers.picture_source, self.layers.after_source,
                       self.layers.mask_source, self.layers.overlay, self.layers.checker, self.layers.stamp):  # fmt: skip
            canvas._handle_frontend_event(canvas, {"event": "client_ready"}, [])
        self.send({"kind": "want"})

    @property
    def shown(self) -> bool:
        return bool(self.view.picture)

    @property
    def mask(self) -> np.ndarray | None:
        """The mask as ipycanvas holds it: where its mask source is painted."""
        return self.recorder.rgba(self.layers.mask_source)[..., 3] == 255 if self.shown else None

    @property
    def picture(self) -> Image.Image | None:
        return Image.fromarray(self.recorder.rgba(self.layers.picture_source)) if self.shown else None

    @property
    def after(self) -> Image.Image | None:
        pixels = self.recorder.rgba(self.layers.after_source)
        return Image.fromarray(pixels) if pixels[..., 3].any() else None

    @property
    def stamp(self) -> tuple[int, ...]:
        """What the last batch says it drew: (stroke id, its points applied, view version, batch)."""
        pixels = self.recorder.rgba(self.layers.stamp).astype(int)
        return tuple(int((p[0] << 16) | (p[1] << 8) | p[2]) for p in pixels[0])

    @property
    def version(self) -> int:
        return int(self.sent("state")[-1]["version"])

    def send(self, message: dict[str, Any]) -> None:
        self.view._handle_message(self.view, message, [])

    def sent(self, event: str) -> list[dict[str, Any]]:
        return [content for content in self.messages if content.get("event") == event]

    def stroke(
        self, *points: tuple[float, float], tool: str = "brush", batch: int = 3, end: bool = True
    ) -> int:
        """A stroke through ``points`` (image pixels), in batches as the page sends it; its id."""
        self.next_id += 1
        flat = [v for point in points for v in point]
        chunks = [flat[i : i + 2 * batch] for i in range(0, len(flat), 2 * batch)] or [[]]
        for number, chunk in enumerate(chunks):
            last = number == len(chunks) - 1
            self.send({"kind": "stroke", "id": self.next_id, "tool": tool, "points": chunk,
                       "first": number == 0, "end": end and last})  # fmt: skip
        return self.next_id

    def rect(self, x0: float, y0: float, x1: float, y1: float) -> None:
        self.next_id += 1
        self.send({"kind": "rect", "id": self.next_id, "points": [x0, y0, x1, y1]})


def stroke(painter: MaskPainter, *points: tuple[float, float]) -> None:
    """A stroke through ``points`` given in pixels of the fitted view, as the page sends it."""
    page = getattr(painter, "_test_page", None) or PageSide(painter)
    painter._test_page = page
    image_points = [painter.canvas_to_image(*point) for point in points]
    if painter.tool == "rectangle":
        page.rect(*image_points[0], *image_points[-1])
    else:
        page.stroke(*image_points, tool=painter.tool if painter.tool in ("brush", "eraser") else "brush")


def painted_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(first row, last row, first column, last column) of the painted pixels."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return (int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1]))


@pytest.fixture
def painter() -> MaskPainter:
    """A 1024x1024 image shown at 512x512 (two image pixels per display pixel), brush 10."""
    widget = MaskPainter(make_image(1024, 1024))
    widget.brush_size = 10
    return widget


# --- Strokes into the full-resolution mask ----------------------------------------------------


def test_stroke_is_scaled_from_display_to_image_pixels(painter: MaskPainter) -> None:
    stroke(painter, (100, 100), (150, 100), (200, 100))
    mask = painter.mask
    assert mask.shape == (1024, 1024)
    assert painted_box(mask) == (190, 209, 190, 409)
    assert mask[191:209, 200:400].all()
    assert painter.painted_fraction == pytest.approx(mask.sum() / mask.size)


def test_brush_size_sets_the_stroke_width(painter: MaskPainter) -> None:
    painter.brush_size = 40
    stroke(painter, (100, 100), (200, 100))
    assert painted_box(painter.mask)[:2] == (160, 239)


def test_distant_move_events_give_a_continuous_line(painter: MaskPainter) -> None:
    stroke(painter, (10, 10), (480, 300))
    mask = painter.mask
    for t in np.linspace(0, 1, 500):
        x, y = (10 + 470 * t) * 2, (10 + 290 * t) * 2
        assert mask[int(y), int(x)], f"gap at image ({x:.0f}, {y:.0f})"
    assert not mask[900, 100]


def test_eraser_removes_paint_along_its_stroke(painter: MaskPainter) -> None:
    stroke(painter, (100, 100), (300, 100))
    painter.tool = "eraser"
    stroke(painter, (200, 50), (200, 150))
    mask = painter.mask
    assert not mask[:, 391:409].any()
    assert mask[191:209, 200:385].all() and mask[191:209, 415:600].all()


def test_rectangle_dragged_in_any_direction(painter: MaskPainter) -> None:
    painter.tool = "rectangle"
    stroke(painter, (60, 50), (10, 20))
    assert painted_box(painter.mask) == (40, 99, 20, 119)


# --- Operations and history -------------------------------------------------------------------


def test_undo_and_redo_whole_strokes(painter: MaskPainter) -> None:
    stroke(painter, (100, 100), (150, 100), (200, 100))
    first = painter.mask
    stroke(painter, (100, 300), (200, 300))
    both = painter.mask
    assert painter.undo()
    assert np.array_equal(painter.mask, first)
    assert painter.undo()
    assert not painter.mask.any()
    assert not painter.undo()
    assert painter.redo()
    assert painter.redo()
    assert np.array_equal(painter.mask, both)
    assert not painter.redo()


def test_new_stroke_drops_the_redo_history(painter: MaskPainter) -> None:
    stroke(painter, (100, 100), (200, 100))
    painter.undo()
    stroke(painter, (100, 300), (200, 300))
    assert not painter.redo()
    assert painted_box(painter.mask)[0] >= 590


def test_fill_clear_and_invert_are_undoable(painter: MaskPainter) -> None:
    stroke(painter, (100, 100), (200, 100))
    line = painter.mask
    painter.invert()
    assert np.array_equal(painter.mask, ~line)
    painter.fill()
    assert painter.painted_fraction == 1.0
    painter.clear()
    assert painter.painted_fraction == 0.0
    painter.undo()
    assert painter.mask.all()
    painter.undo()
    assert np.array_equal(painter.mask, ~line)
    painter.undo()
    assert np.array_equal(painter.mask, line)


def test_buttons_run_the_operations_and_follow_the_history(painter: MaskPainter) -> None:
    buttons = painter._buttons
    assert buttons["undo"].disabled and buttons["redo"].disabled
    buttons["fill"].click()
    assert painter.mask.all()
    assert not buttons["undo"].disabled
    buttons["undo"].click()
    assert not painter.mask.any()
    assert not buttons["redo"].disabled
    buttons["redo"].click()
    buttons["invert"].click()
    assert not painter.mask.any()
    buttons["clear"].click()  # nothing left to clear: no new history entry
    buttons["undo"].click()
    assert painter.mask.all()


def test_history_is_capped() -> None:
    state = EditableMask(64, 64, history_limit=5)
    for row in range(8):
        state.begin_edit()
        state.paint_rect(0, row, 64, row + 1, True)
        state.end_edit()
    undone = 0
    while state.undo():
        undone += 1
    assert undone == 5
    assert state.array[:3].all() and not state.array[3:].any()


def test_history_stores_only_the_changed_region() -> None:
    state = EditableMask(1024, 1024)
    state.begin_edit()
    state.paint_segment(100, 100, 140, 100, 10, True)
    assert state.end_edit()
    (edit,) = state._undo
    row0, row1, col0, col1 = edit.bbox
    assert (row1 - row0) * (col1 - col0) < 100 * 100
    assert edit.flipped.nbytes < 2000


# --- Mask import and export -------------------------------------------------------------------


def test_mask_png_is_transparent_exactly_where_painted() -> None:
    painter = MaskPainter(make_image(800, 600))
    painter.brush_size = 16
    stroke(painter, (50, 60), (300, 200))
    png = painter.mask_png()
    with Image.open(io.BytesIO(png)) as exported:
        assert exported.format == "PNG" and exported.mode == "RGBA"
        assert exported.size == (800, 600)
        alpha = np.asarray(exported)[..., 3]
    mask = painter.mask
    assert mask.any()
    assert np.array_equal(alpha == 0, mask)
    assert (alpha[~mask] == 255).all()


def test_mask_import_round_trip_and_resize() -> None:
    painter = MaskPainter(make_image(800, 600))
    stroke(painter, (50, 60), (300, 200))
    png, mask = painter.mask_png(), painter.mask
    painter.clear()
    painter.set_mask(png)
    assert np.array_equal(painter.mask, mask)

    small = np.zeros((300, 400), dtype=bool)
    small[30:60, 100:150] = True
    painter.set_mask(small)
    assert painter.mask.shape == (600, 800)
    assert painted_box(painter.mask) == (60, 119, 200, 299)
    assert painter.mask.sum() == 60 * 100
    painter.undo()
    assert np.array_equal(painter.mask, mask)


def test_set_mask_marks_only_fully_transparent_pixels() -> None:
    painter = MaskPainter(make_image(64, 48))
    rgba = np.full((48, 64, 4), 255, dtype=np.uint8)
    rgba[10:20, 5:15, 3] = 0
    rgba[30:40, 30:40, 3] = 100  # half transparent: kept, as the Images API keeps it
    painter.set_mask(Image.fromarray(rgba, mode="RGBA"))
    assert painted_box(painter.mask) == (10, 19, 5, 14)
    assert painter.mask.sum() == 100


def test_set_mask_reads_black_and_white_masks_and_refuses_them_as_alpha() -> None:
    painter = MaskPainter(make_image(64, 64))
    buffer = io.BytesIO()
    black_and_white = Image.new("RGB", (64, 64))
    black_and_white.paste((255, 255, 255), (0, 0, 16, 64))  # white = edit (AUTOMATIC1111, Gradio)
    black_and_white.save(buffer, format="PNG")
    painter.set_mask(buffer.getvalue())
    assert painter.painted_fraction == pytest.approx(0.25) and painter.mask[:, :16].all()
    with pytest.raises(ValueError, match="alpha"):
        painter.set_mask(buffer.getvalue(), convention="alpha")


def test_image_png_keeps_the_image() -> None:
    image = make_image(300, 200)
    painter = MaskPainter(image)
    with Image.open(io.BytesIO(painter.image_png())) as exported:
        assert exported.size == (300, 200)
        assert np.array_equal(np.asarray(exported.convert("RGB")), np.asarray(image))
    assert painter.image.size == (300, 200)


# --- Geometry ---------------------------------------------------------------------------------


def test_non_square_image_mapping() -> None:
    painter = MaskPainter(make_image(800, 600))
    assert painter.display_size == (512, 384)
    assert painter.canvas_to_image(256, 192) == pytest.approx((400, 300))
    assert painter.image_to_canvas(400, 300) == pytest.approx((256, 192))
    assert painter.canvas_to_image(512, 384) == pytest.approx((800, 600))
    painter.brush_size = 8  # radius 4 display px = 6.25 image px
    stroke(painter, (256, 192), (256, 192))
    top, bottom, left, right = painted_box(painter.mask)
    assert (top + bottom + 1) / 2 == pytest.approx(300, abs=0.5)
    assert (left + right + 1) / 2 == pytest.approx(400, abs=0.5)
    assert bottom - top + 1 == pytest.approx(12.5, abs=1)


def test_large_image_is_shown_scaled_small_image_is_not_enlarged() -> None:
    painter = MaskPainter(make_image(2048, 1024), max_display_size=400)
    assert painter.display_size == (400, 200)
    assert painter.mask.shape == (1024, 2048)
    painter.set_image(make_image(256, 128))
    assert painter.display_size == (256, 128)
    assert painter.canvas_to_image(10, 10) == (10, 10)
    assert painter.view.box == [256, 128]


def test_set_image_accepts_bytes_and_arrays_and_resets_the_mask(painter: MaskPainter) -> None:
    stroke(painter, (100, 100), (200, 100))
    buffer = io.BytesIO()
    make_image(640, 480).save(buffer, format="PNG")
    painter.set_image(buffer.getvalue())
    assert painter.mask.shape == (480, 640) and not painter.mask.any()
    assert not painter.undo()
    painter.set_image(np.zeros((100, 200, 3), dtype=np.uint8))
    assert painter.image.size == (200, 100)


# --- Controls ----------------------------------------------------------------------------------


def test_controls_are_linked_to_the_traits(painter: MaskPainter) -> None:
    tools, brush_slider, opacity_slider = painter._controls[:3]
    tools.value = "eraser"
    assert painter.tool == "eraser"
    painter.tool = "rectangle"
    assert tools.value == "rectangle"
    brush_slider.value = 33
    assert painter.brush_size == 33
    painter.opacity = 0.25
    assert opacity_slider.value == 0.25


def test_max_display_size_is_checked() -> None:
    with pytest.raises(ValueError, match="max_display_size"):
        MaskPainter(max_display_size=0)


# --- Rasterisation ------------------------------------------------------------------------------


def test_paint_segment_is_a_round_ended_thick_line() -> None:
    mask = np.zeros((100, 100), dtype=bool)
    bbox = paint_segment(mask, 20, 50, 80, 50, 10)
    assert bbox is not None
    rows, cols = np.nonzero(mask)
    distance = np.hypot(np.clip(cols + 0.5, 20, 80) - (cols + 0.5), rows + 0.5 - 50)
    assert (distance <= 10).all()
    assert mask[50, 10] and mask[50, 89] and not mask[50, 8] and not mask[38, 50]
    assert not mask[42, 12]  # outside the round cap, inside a square one


def test_paint_segment_clips_and_paints_a_point() -> None:
    mask = np.zeros((10, 10), dtype=bool)
    assert paint_segment(mask, -50, -50, -40, -40, 3) is None
    paint_segment(mask, 5.0, 5.0, 5.0, 5.0, 0.1)
    assert 1 <= mask.sum() <= 4
    paint_segment(mask, 5, 5, 50, 5, 2, value=True)
    assert mask[5, 9]
    paint_segment(mask, 0, 0, 10, 10, 20, value=False)
    assert not mask.any()


def test_paint_rect_uses_pixel_centres() -> None:
    mask = np.zeros((10, 10), dtype=bool)
    assert paint_rect(mask, 2.6, 3.9, 2.9, 3.6) is None
    assert paint_rect(mask, 1, 1, 4, 3) == (1, 3, 1, 4)
    assert mask.sum() == 6


# --- The page and the kernel -------------------------------------------------------------------


def test_a_page_that_appears_gets_the_picture_once_and_the_whole_mask(painter: MaskPainter) -> None:
    stroke(painter, (100, 100), (200, 100))
    page = PageSide(painter)  # a page that connects now (a reload, Voila, a second window)
    puts = [
        data
        for name, _args, data in page.recorder.sent_to(page.layers.picture_source)
        if name == "putImageData"
    ]
    assert len(puts) == 1 and puts[0][0][:3] == b"\xff\xd8\xff"  # one JPEG, at full resolution
    assert page.picture is not None and page.picture.size == (1024, 1024)
    shown = np.asarray(page.picture.convert("RGB")).astype(int)
    assert np.abs(shown - np.asarray(make_image(1024, 1024))).max() <= 12
    assert np.array_equal(page.mask, painter.mask)
    (state,) = page.sent("state")
    assert state["picture"] == [1024, 1024] and state["upto"] == painter._upto


def test_a_picture_with_transparency_keeps_it_exactly() -> None:
    rgba = np.zeros((64, 96, 4), dtype=np.uint8)
    rgba[:, :48] = (10, 200, 30, 255)  # an outpainting frame: the picture, then a transparent border
    page = PageSide(MaskPainter(Image.fromarray(rgba, "RGBA")))
    puts = [
        data
        for name, _args, data in page.recorder.sent_to(page.layers.picture_source)
        if name == "putImageData"
    ]
    assert puts[-1][0][:3] == b"\xff\xd8\xff"  # the colours as a JPEG, the border cut out by rectangles
    shown = np.asarray(page.picture)
    assert np.array_equal(shown[..., 3], rgba[..., 3])
    assert np.abs(shown[:, :40, :3].astype(int) - rgba[:, :40, :3]).max() <= 12
    rgba[:, 40:48, 3] = 128  # a soft edge goes as a PNG, exactly
    page = PageSide(MaskPainter(Image.fromarray(rgba, "RGBA")))
    puts = [
        data
        for name, _args, data in page.recorder.sent_to(page.layers.picture_source)
        if name == "putImageData"
    ]
    assert puts[-1][0][:4] == b"\x89PNG" and np.array_equal(np.asarray(page.picture), rgba)


def test_what_the_page_shows_is_the_kernels_mask_after_every_change(painter: MaskPainter) -> None:
    page = PageSide(painter)
    page.stroke((100, 100), (300, 140), (500, 120), (520, 400))
    page.rect(600, 600, 900, 800)
    painter.tool = "eraser"
    page.stroke((0, 700), (1024, 700), tool="eraser")
    assert np.array_equal(page.mask, painter.mask)
    for operation in (painter.invert, painter.undo, painter.undo, painter.redo, painter.fill, painter.clear):
        operation()
        assert np.array_equal(page.mask, painter.mask), operation.__name__
    painter.set_mask(np.eye(1024, dtype=bool))
    assert np.array_equal(page.mask, painter.mask)


def test_each_batch_is_drawn_into_the_mask_layer_and_stamped_with_what_was_applied(
    painter: MaskPainter,
) -> None:
    page = PageSide(painter)
    first = page.stroke((100, 100), (200, 100))
    assert page.stamp[:2] == (first, 2) and np.array_equal(page.mask, painter.mask)
    batches = page.stamp[3]
    # A stroke's first batch is in ipycanvas's mask before the stroke ends.
    page.next_id += 1
    page.send(
        {"kind": "stroke", "id": page.next_id, "tool": "brush", "points": [100, 400, 200, 400, 300, 400]}
    )
    assert page.stamp[:2] == (page.next_id, 3) and page.stamp[3] > batches
    assert page.mask[400, 100:300].all() and painter.mask[400, 100:300].all()
    # Only what the batch touched is drawn again, not the whole mask.
    cleared = [
        args for name, args, _data in page.recorder.sent_to(page.layers.mask_source) if name == "clearRect"
    ]
    assert cleared[-1][2] * cleared[-1][3] < 1024 * 1024 / 10
    # The mask layer shows the source through the view's transform, at the mask's opacity.
    mask_layer = page.layers.canvas[1]
    names = [name for name, _args, _data in page.recorder.sent_to(mask_layer)]
    assert names[-5:] == ["setTransform", "set", "set", "drawImage", "restore"]


def test_a_stroke_in_many_batches_is_one_edit_and_lines_join_across_batches(painter: MaskPainter) -> None:
    page = PageSide(painter)
    page.stroke(*[(100 + 40 * i, 500) for i in range(20)], batch=1)
    mask = painter.mask
    assert mask[495:505, 100:860].all()
    assert painter.undo() and not painter.mask.any()


def test_a_stroke_whose_end_never_came_is_finished_by_the_next(painter: MaskPainter) -> None:
    page = PageSide(painter)
    page.stroke((100, 100), (300, 100), end=False)
    assert painter.mask[100, 200]
    page.stroke((100, 600), (300, 600))
    assert painter.undo()
    assert painter.mask[100, 200] and not painter.mask[600, 200]
    assert painter.undo() and not painter.mask.any()


def test_on_change_fires_once_per_completed_change(painter: MaskPainter) -> None:
    calls: list[float] = []
    painter.on_change(lambda widget: calls.append(widget.painted_fraction))
    page = PageSide(painter)
    page.stroke((100, 100), (300, 100), end=False)
    assert calls == []
    page.send({"kind": "stroke", "id": page.next_id, "tool": "brush", "points": [400, 100], "end": True})
    assert len(calls) == 1 and calls[0] > 0
    page.stroke((10, 900), (50, 900), tool="eraser")  # erases nothing: no change
    painter.fill()
    painter.undo()
    assert len(calls) == 3 and calls[1] == 1.0
    painter.on_change(calls.append, remove=True)
    painter.clear()
    assert len(calls) == 4


def test_a_failing_callback_does_not_stop_the_page_being_told(painter: MaskPainter) -> None:
    def broken(widget: MaskPainter) -> None:
        raise RuntimeError("callback failed")

    painter.on_change(broken)
    page = PageSide(painter)
    page.stroke((100, 100), (200, 100))
    assert painter.mask.any() and np.array_equal(page.mask, painter.mask)
    page.stroke((100, 300), (200, 300))
    assert np.array_equal(page.mask, painter.mask)


def test_undo_and_redo_from_the_keyboard_in_the_page(painter: MaskPainter) -> None:
    page = PageSide(painter)
    page.stroke((100, 100), (200, 100))
    page.send({"kind": "undo"})
    assert not painter.mask.any() and not page.mask.any()
    page.send({"kind": "redo"})
    assert painter.mask.any() and np.array_equal(page.mask, painter.mask)


@pytest.mark.parametrize(
    "message",
    [
        {"kind": "stroke", "id": 1, "tool": "brush", "points": [float("nan"), 3.0]},
        {"kind": "stroke", "id": 1, "tool": "brush", "points": [1.0, float("inf")]},
        {"kind": "stroke", "id": 1, "tool": "brush", "points": [1.0, 2.0, 3.0]},
        {"kind": "stroke", "id": 1, "tool": "brush", "points": "100,100"},
        {"kind": "stroke", "id": 1, "tool": "brush", "points": [True, 5]},
        {"kind": "stroke", "id": "1", "tool": "brush", "points": [1, 2]},
        {"kind": "stroke", "id": 1, "tool": "rectangle", "points": [1, 2]},
        {"kind": "rect", "id": 1, "points": [0, 0, 100]},
        {"kind": "wand", "x": "10", "y": 10},
        {"kind": "move", "dx": None, "dy": 1},
        {"kind": "fill"},
        {"kind": "__class__"},
        ["stroke"],
    ],
)
def test_malformed_messages_from_the_page_change_nothing(painter: MaskPainter, message: Any) -> None:
    page = PageSide(painter)
    page.send(message)
    assert not painter.mask.any()
    assert not painter.undo()


def test_a_huge_batch_is_cut_and_points_outside_the_picture_are_clipped(painter: MaskPainter) -> None:
    page = PageSide(painter)
    points = [v for i in range(MAX_POINTS_PER_MESSAGE + 500) for v in (-5000.0 + i, 1e7)]
    page.send({"kind": "stroke", "id": 1, "tool": "brush", "points": points, "end": True})
    assert not painter.mask.any()
    page.stroke((-1e9, 500), (1e9, 500))
    assert painter.mask[500].all()


def test_a_new_picture_resizes_the_sources_and_starts_an_empty_mask(painter: MaskPainter) -> None:
    page = PageSide(painter)
    page.stroke((100, 100), (200, 100))
    old = page.version
    painter.set_image(make_image(300, 200))
    assert page.version == old + 1 and page.mask.shape == (200, 300) and not page.mask.any()
    assert page.picture is not None and page.picture.size == (300, 200)
    assert page.sent("state")[-1]["picture"] == [300, 200]


# --- The wand, feather, frame and comparison ---------------------------------------------------


def _blocks() -> Image.Image:
    """Red on the left, blue on the right, and a red square inside the blue, not touching the left."""
    pixels = np.zeros((100, 200, 3), dtype=np.uint8)
    pixels[:, :100] = (200, 30, 30)
    pixels[:, 100:] = (30, 30, 200)
    pixels[40:60, 150:170] = (205, 35, 28)  # close to the red, but apart from it
    return Image.fromarray(pixels)


def test_the_wand_adds_the_joined_area_of_similar_colour() -> None:
    painter = MaskPainter(_blocks())
    page = PageSide(painter)
    page.send({"kind": "wand", "x": 20.5, "y": 50.2, "subtract": False})
    mask = painter.mask
    assert mask[:, :100].all() and not mask[:, 100:].any()
    assert np.array_equal(page.mask, mask)
    page.send({"kind": "wand", "x": 160, "y": 50, "subtract": False})
    assert painter.mask[40:60, 150:170].all() and painter.mask.sum() == 100 * 100 + 400
    painter.undo()
    assert np.array_equal(painter.mask, mask)


def test_the_wand_subtracts_and_follows_the_tolerance() -> None:
    painter = MaskPainter(_blocks())
    painter.fill()
    painter.tolerance = 2  # the square is 5 levels from the clicked red: not taken
    painter.select_colour(160, 50, subtract=True)
    assert painter.mask[:, :100].all() and painter.mask[:, 100:150].all()
    assert not painter.mask[40:60, 150:170].any() and painter.mask.sum() == 200 * 100 - 400
    painter.undo()
    painter.select_colour(120, 10, subtract=True)  # the blue goes; the square in it is not blue
    square = np.zeros((100, 100), dtype=bool)
    square[40:60, 50:70] = True
    assert np.array_equal(painter.mask[:, 100:], square) and painter.mask[:, :100].all()


def test_the_wand_outside_the_picture_does_nothing() -> None:
    painter = MaskPainter(_blocks())
    assert not painter.select_colour(-3, 50) and not painter.select_colour(50, 100)
    assert not painter.mask.any()


def test_the_feather_softens_the_edge_of_the_exported_soft_mask(painter: MaskPainter) -> None:
    painter.paint_rect(400, 400, 600, 600)
    hard = painter.soft_mask()
    assert set(np.unique(hard)) == {0.0, 1.0}
    page = PageSide(painter)
    painter.feather = 8
    mask_layer = page.layers.canvas[1]
    filters = [args[1] for name, args, _data in page.recorder.sent_to(mask_layer) if name == "set"]
    assert "blur(4.00px)" in filters  # ipycanvas shows the same blur, at the view's scale (1/2)
    soft = painter.soft_mask()
    assert soft[500, 500] == pytest.approx(1.0, abs=1e-3) and soft[100, 100] == 0.0
    edge = soft[500, 395:405]
    assert 0.05 < edge[0] < edge[5] < edge[-1] < 0.999
    assert np.array_equal(painter.mask, hard > 0.5)  # the mask itself stays a hard one


def test_the_move_tool_is_offered_with_a_frame_and_reports_drags(painter: MaskPainter) -> None:
    assert "move" not in painter._tools.options[-1]
    moves: list[tuple[float, float]] = []
    painter.on_move(lambda dx, dy: moves.append((dx, dy)))
    painter.set_placement((10, 20, 300, 200))
    assert painter.view.placement == [10, 20, 300, 200]
    assert [value for _label, value in painter._tools.options][-1] == "move"
    painter.tool = "move"
    page = PageSide(painter)
    page.send({"kind": "move", "dx": 12.5, "dy": -4})
    assert moves == [(12.5, -4.0)]
    painter.set_placement(None)
    assert painter.tool == "brush" and painter.view.placement == []


def test_show_after_sends_the_result_at_the_pictures_size(painter: MaskPainter) -> None:
    page = PageSide(painter)
    painter.show_after(make_image(512, 512).transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    assert page.after is not None and page.after.size == (1024, 1024)
    assert painter.view.comparing == [True, 0.5]
    page.send({"kind": "compare", "on": True, "split": 0.25})  # the slider in the page
    picture_layer = page.layers.canvas[0]
    rects = [args for name, args, _data in page.recorder.sent_to(picture_layer) if name == "rect"]
    assert rects[-1] == [256.0, 0, 768.0, 1024]  # the picture before left of the divider, the result right
    painter.show_after(None)
    assert page.after is None and painter.view.comparing == []


def test_zoom_to_asks_the_page(painter: MaskPainter) -> None:
    page = PageSide(painter)
    painter.zoom_to("fit")
    painter.zoom_to(1)
    assert page.sent("view") == [{"event": "view", "mode": "fit"}, {"event": "view", "scale": 1.0}]
    painter.view.zoom = 0.5  # the page reports what it shows
    assert "shown at 50%" in painter._status.value


# --- Controls and life cycle -------------------------------------------------------------------


def test_the_page_gets_the_tool_keys_and_the_brush_limit(painter: MaskPainter) -> None:
    keys = painter.view.tool_keys
    assert keys["b"] == "brush" and keys["e"] == "eraser" and keys["r"] == "rectangle" and keys["w"] == "wand"
    assert painter.view.max_brush == 200
    painter.view.tool = "wand"  # a key pressed in the page
    assert painter.tool == "wand" and painter._wand_row.layout.display is None
    painter.view.brush_size = 40
    assert painter.brush_size == 40


def test_without_image_nothing_is_painted() -> None:
    painter = MaskPainter()
    assert painter.mask is None and painter.image is None
    assert painter.painted_fraction == 0.0
    page = PageSide(painter)
    assert page.picture is None and "No image" in painter.view.hint
    page.stroke((10, 10), (100, 100))
    page.send({"kind": "wand", "x": 1, "y": 1})
    assert not painter.fill() and not painter.undo()
    assert painter._buttons["fill"].disabled
    assert "No image" in painter._status.value
    with pytest.raises(RuntimeError, match="set_image"):
        painter.mask_png()
    with pytest.raises(RuntimeError, match="set_image"):
        painter.set_mask(np.zeros((4, 4), dtype=bool))


def test_css_classes_for_browser_tests(painter: MaskPainter) -> None:
    assert "ipyimagegen-mask-painter" in painter._dom_classes
    stage = painter._stage
    assert stage in painter.children and "ipyimagegen-painter" in stage._dom_classes
    assert stage.children == (painter.canvas, painter.view)  # the input layer over the ipycanvas view
    assert painter.canvas.layout.grid_area == painter.view.layout.grid_area == "1 / 1"
    assert "ipyimagegen-painter-canvas" in painter.canvas._dom_classes


def test_close_closes_the_owned_widgets(painter: MaskPainter) -> None:
    painter.close()
    assert painter.comm is None and painter.view.comm is None
    assert all(control.comm is None for control in painter._controls)
    assert all(widget.comm is None for widget in painter._layers.widgets)


# --- ipycanvas: the view, the overlay, the ring --------------------------------------------------


def _view(page: PageSide, version: int, scale: float, tx: float, ty: float, dpr: float = 2.0) -> None:
    page.send({"kind": "view", "version": version, "scale": scale, "tx": tx, "ty": ty,
               "width": 512, "height": 512, "dpr": dpr})  # fmt: skip


def test_a_zoom_or_pan_redraws_every_layer_by_transforms_and_sends_no_image_bytes(
    painter: MaskPainter,
) -> None:
    page = PageSide(painter)
    page.stroke((100, 100), (400, 300))
    page.recorder.clear_log()
    _view(page, 7, scale=2.0, tx=-300.0, ty=-100.0, dpr=2.0)
    sent = page.recorder.commands
    assert not [name for _canvas, name, _args, _data in sent if name == "putImageData"]
    assert sum(len(chunk) for *_rest, data in sent for chunk in data) < 1024
    assert (painter.canvas.width, painter.canvas.height) == (
        1024,
        1024,
    )  # 512 CSS pixels at 2 device pixels each
    for index in range(3):  # picture, mask and overlay: the picture pixels through the view's transform
        transforms = [
            args
            for name, args, _data in page.recorder.sent_to(painter.canvas[index])
            if name == "setTransform"
        ]
        assert transforms[-1] == [4.0, 0.0, 0.0, 4.0, -600.0, -200.0]
    assert page.stamp[2] == 7 and painter.view.zoom == 2.0
    assert np.array_equal(page.mask, painter.mask)  # the mask source is untouched by a zoom


@pytest.mark.parametrize(
    "fields",
    [
        {"scale": 0},
        {"scale": float("nan")},
        {"tx": float("inf")},
        {"width": -5},
        {"dpr": 100},
        {"version": "7"},
        {"scale": True},
    ],
)
def test_a_malformed_view_from_the_page_changes_nothing(painter: MaskPainter, fields: dict[str, Any]) -> None:
    page = PageSide(painter)
    before = (painter.canvas.width, painter.canvas.height, painter._layers.scene.view)
    message = {
        "kind": "view",
        "version": 3,
        "scale": 1.0,
        "tx": 0,
        "ty": 0,
        "width": 512,
        "height": 512,
        "dpr": 1,
    }
    page.send({**message, **fields})
    assert (painter.canvas.width, painter.canvas.height, painter._layers.scene.view) == before


def test_a_huge_view_is_capped(painter: MaskPainter) -> None:
    page = PageSide(painter)
    page.send(
        {"kind": "view", "version": 3, "scale": 1e9, "tx": 0, "ty": 0, "width": 1e6, "height": 1e6, "dpr": 8}
    )
    assert painter.canvas.width <= 4096 * 8 and painter._layers.scene.view.scale <= 64


def test_draw_overlay_draws_in_picture_pixels_and_again_when_a_page_appears(painter: MaskPainter) -> None:
    calls: list[Any] = []

    def guides(overlay: Any) -> None:
        calls.append(overlay)
        overlay.stroke_style = "cyan"
        overlay.stroke_rect(100, 200, 300, 400)

    page = PageSide(painter)
    painter.draw_overlay(guides)
    assert calls == [painter.overlay] and (painter.overlay.width, painter.overlay.height) == (1024, 1024)
    names = [name for name, _args, _data in page.recorder.sent_to(painter.overlay)]
    assert names[-5:] == ["clear", "save", "set", "strokeRect", "restore"]
    _view(page, 2, scale=1.5, tx=-40.0, ty=10.0, dpr=1.0)
    overlay_layer = [(name, args) for name, args, _data in page.recorder.sent_to(painter.canvas[2])]
    assert overlay_layer[-4:] == [
        ("setTransform", [1.5, 0.0, 0.0, 1.5, -40.0, 10.0]),
        ("set", [painter.canvas[2].ATTRS["image_smoothing_enabled"], True]),
        ("drawImage", [f"IPY_MODEL_{painter.overlay.model_id}", 0, 0]),
        ("restore", []),
    ]
    PageSide(painter)  # a reload: the overlay canvas model is new and empty, so it is drawn again
    assert len(calls) == 2
    painter.draw_overlay(None)
    assert len(calls) == 2 and page.recorder.sent_to(painter.overlay)[-1][0] == "clear"


def test_the_brush_ring_follows_the_pointer_in_the_marks_layer(painter: MaskPainter) -> None:
    page = PageSide(painter)
    _view(page, 1, scale=0.5, tx=0.0, ty=0.0, dpr=1.0)
    page.send({"kind": "hover", "x": 400, "y": 300})
    marks = painter.canvas[3]
    circles = [args for name, args, _data in page.recorder.sent_to(marks) if name == "strokeCircle"]
    assert circles[-1] == [200.0, 150.0, pytest.approx(painter.brush_radius * 0.5)]
    painter.tool = "rectangle"
    lines = [args for name, args, _data in page.recorder.sent_to(marks) if name == "strokeLine"]
    assert lines[-1] == [200.0, 142.0, 200.0, 158.0]  # a crosshair for the rectangle and the wand
    page.send({"kind": "hover", "x": None})  # the pointer left the view: no ring, no crosshair
    names = [name for name, _args, _data in page.recorder.sent_to(marks)]
    since_clear = names[len(names) - 1 - names[::-1].index("clear") :]
    assert "strokeCircle" not in since_clear and "strokeLine" not in since_clear


def test_pen_pressure_narrows_the_stroke(painter: MaskPainter) -> None:
    page = PageSide(painter)
    painter.brush_size = 40  # a radius of 40 image pixels
    page.send({"kind": "stroke", "id": 1, "tool": "brush", "points": [100, 200, 900, 200],
               "pressures": [0.25, 0.25], "end": True})  # fmt: skip
    page.send({"kind": "stroke", "id": 2, "tool": "brush", "points": [100, 600, 900, 600], "end": True})
    column = painter.mask[:, 500]
    assert column[150:250].sum() == pytest.approx(20, abs=2) and column[550:650].sum() == pytest.approx(
        80, abs=2
    )


def test_a_noisy_mask_goes_to_ipycanvas_as_a_picture(monkeypatch: pytest.MonkeyPatch) -> None:
    from ipyimagegen.widgets import painter_layers

    monkeypatch.setattr(painter_layers, "MAX_RUNS", 100)
    painter = MaskPainter(make_image(256, 256))
    page = PageSide(painter)
    noise = np.random.default_rng(1).random((256, 256)) > 0.5
    painter.set_mask(noise)
    names = [name for name, _args, _data in page.recorder.sent_to(page.layers.mask_source)]
    assert names[-1] == "putImageData" and np.array_equal(page.mask, noise)


def test_an_undo_in_the_middle_of_a_stroke_ends_it_and_its_last_batches_are_only_acknowledged(
    painter: MaskPainter,
) -> None:
    page = PageSide(painter)
    page.send({"kind": "stroke", "id": 1, "tool": "brush", "points": [100, 100, 200, 100]})
    painted = painter.mask.copy()
    painter.undo()  # Ctrl+Z mid-drag (or a tool key): the stroke so far is one edit, taken back
    assert not painter.mask.any()
    page.send(
        {"kind": "stroke", "id": 1, "tool": "brush", "points": [300, 100, 400, 100, 500, 100], "end": True}
    )
    assert not painter.mask.any() and not painter._mask.can_undo  # not painted, no second edit
    assert page.stamp[:2] == (1, 5)  # every point acknowledged: the page drops its drawing of the stroke
    assert painted[100, 150]


def test_a_gesture_drawn_on_a_picture_that_has_gone_is_dropped(painter: MaskPainter) -> None:
    page = PageSide(painter)
    old = painter._version
    painter.set_image(make_image(300, 300))
    page.send({"kind": "stroke", "id": 9, "tool": "brush", "points": [10, 10, 200, 200], "end": True,
               "picture": old})  # fmt: skip
    page.send({"kind": "rect", "id": 10, "points": [0, 0, 100, 100], "picture": old})
    assert not painter.mask.any()
    page.send({"kind": "rect", "id": 11, "points": [0, 0, 100, 100], "picture": painter._version})
    assert painter.mask[50, 50]
    page.send({"kind": "rect", "id": 12, "points": [0, 0, 100, 100], "picture": True})  # not a version
    assert painter._upto == 11


def test_a_late_shift_after_the_drop_is_ignored(painter: MaskPainter) -> None:
    page = PageSide(painter)
    painter.set_placement((0, 0, 512, 512))
    page.send({"kind": "moving", "dx": 30, "dy": 0})  # the Move tool is not chosen
    assert painter._layers.scene.shift == (0.0, 0.0)
    painter.tool = "move"
    page.send({"kind": "moving", "dx": 30, "dy": 0})
    assert painter._layers.scene.shift == (30.0, 0.0)
    page.send({"kind": "move", "dx": 30, "dy": 0})
    assert painter._layers.scene.shift == (0.0, 0.0)


def test_an_overlay_drawing_that_fails_is_said_and_leaves_ipycanvas_working(painter: MaskPainter) -> None:
    from ipycanvas.canvas import _CANVAS_MANAGER

    page = PageSide(painter)
    good: list[int] = []
    painter.draw_overlay(lambda overlay: good.append(1) or overlay.fill_rect(0, 0, 10, 10))

    def broken(overlay: Any) -> None:
        overlay.stroke_line(0, 0, 10, 10)
        raise ValueError("a bug in the notebook's drawing")

    with pytest.raises(ValueError, match="a bug"):
        painter.draw_overlay(broken)
    assert _CANVAS_MANAGER._caching is False  # ipycanvas sends commands again
    assert len(good) == 2  # the drawing before is kept, and drawn again
    assert page.recorder.sent_to(painter.overlay)[-1][0] == "restore"
    page.stroke((100, 100), (200, 100))
    assert np.array_equal(page.mask, painter.mask)


def test_a_view_far_off_or_too_big_is_brought_within_bounds(painter: MaskPainter) -> None:
    page = PageSide(painter)
    page.send({"kind": "view", "version": 4, "scale": 1, "tx": 1e308, "ty": -1e308, "width": 4096,
               "height": 4096, "dpr": 8, "page": "a"})  # fmt: skip
    view = painter._layers.scene.view
    assert abs(view.tx) <= 1e6 and abs(view.ty) <= 1e6
    assert painter.canvas.width <= 8192 and painter.canvas.height <= 8192
    shown = page.sent("shown")[-1]
    assert shown["page"] == "a" and shown["view"]["version"] == 4  # every page of the painter takes it up


def test_the_ring_follows_a_stroke_with_no_hover_messages(painter: MaskPainter) -> None:
    page = PageSide(painter)
    _view(page, 1, scale=0.5, tx=0.0, ty=0.0, dpr=1.0)
    page.send({"kind": "stroke", "id": 1, "tool": "brush", "points": [100, 100, 300, 200]})
    circles = [
        args for name, args, _data in page.recorder.sent_to(painter.canvas[3]) if name == "strokeCircle"
    ]
    assert circles[-1][:2] == [150.0, 100.0]  # the stroke's last point, on screen
