"""MaskPainter and its numpy mask model, driven in pure Python through the canvas event handlers."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field

import numpy as np
import pytest
from ipycanvas import Canvas
from ipycanvas.canvas import _CANVAS_MANAGER, _CMD_LIST
from PIL import Image

from ipyimagegen.masks import paint_rect, paint_segment
from ipyimagegen.widgets.mask_model import EditableMask
from ipyimagegen.widgets.mask_painter import MAX_BRUSH_SIZE, MaskPainter

_ATTR_NAMES = {index: name for name, index in Canvas.ATTRS.items()}


def make_image(width: int, height: int) -> Image.Image:
    gradient = np.linspace(0, 255, width, dtype=np.uint8)
    pixels = np.broadcast_to(gradient[np.newaxis, :, np.newaxis], (height, width, 3))
    return Image.fromarray(np.ascontiguousarray(pixels))


def stroke(painter: MaskPainter, *points: tuple[float, float]) -> None:
    """Press at the first point, move through the others and release at the last."""
    painter._on_mouse_down(*points[0])
    for point in points[1:]:
        painter._on_mouse_move(*point)
    painter._on_mouse_up(*points[-1])


def painted_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(first row, last row, first column, last column) of the painted pixels."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return (int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1]))


@dataclass
class CommandLog:
    """Canvas messages the widget sends, decoded as (layer model id, command, arguments)."""

    messages: list[list[tuple[str | None, str, list]]] = field(default_factory=list)
    images: list[tuple[str | None, np.ndarray]] = field(default_factory=list)
    current: str | None = None

    def record(self, content: dict, buffers: list) -> None:
        commands = json.loads(bytes(buffers[0]))
        if commands and not isinstance(commands[0], list):
            commands = [commands]
        data = iter(buffers[1:])
        decoded = []
        for command in commands:
            name, args = _CMD_LIST[command[0]], command[1]
            attached = [bytes(next(data)) for _ in range(command[2] if len(command) > 2 else 0)]
            if name == "switchCanvas":
                self.current = args[0].removeprefix("IPY_MODEL_")
                continue
            if name == "set":
                name, args = f"set:{_ATTR_NAMES[args[0]]}", [args[1]]
            if name == "putImageData":
                with Image.open(io.BytesIO(attached[0])) as picture:
                    self.images.append((self.current, np.asarray(picture)))
            decoded.append((self.current, name, args))
        self.messages.append(decoded)

    def on(self, layer: Canvas) -> list[tuple[str, list]]:
        return [
            (name, args) for message in self.messages for lid, name, args in message if lid == layer.model_id
        ]

    def last_image_on(self, layer: Canvas) -> np.ndarray:
        return [image for lid, image in self.images if lid == layer.model_id][-1]


@pytest.fixture
def command_log(monkeypatch: pytest.MonkeyPatch) -> CommandLog:
    current = _CANVAS_MANAGER._current_canvas
    log = CommandLog(current=current.model_id if current is not None else None)
    monkeypatch.setattr(_CANVAS_MANAGER, "send", log.record)
    return log


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


def test_rectangle_paints_on_release_only(painter: MaskPainter) -> None:
    painter.tool = "rectangle"
    painter._on_mouse_down(10, 20)
    painter._on_mouse_move(60, 50)
    assert not painter.mask.any()
    painter._on_mouse_up(60, 50)
    mask = painter.mask
    assert painted_box(mask) == (40, 99, 20, 119)
    assert mask[40:100, 20:120].all()
    assert mask.sum() == 60 * 100


def test_rectangle_dragged_in_any_direction(painter: MaskPainter) -> None:
    painter.tool = "rectangle"
    stroke(painter, (60, 50), (10, 20))
    assert painted_box(painter.mask) == (40, 99, 20, 119)


def test_mouse_move_without_press_paints_nothing(painter: MaskPainter) -> None:
    for x in range(0, 500, 20):
        painter._on_mouse_move(x, 250)
    painter._on_mouse_up(480, 250)
    assert not painter.mask.any()
    assert not painter.undo()


def test_leaving_the_canvas_ends_the_stroke(painter: MaskPainter) -> None:
    painter._on_mouse_down(100, 100)
    painter._on_mouse_move(200, 100)
    painter._on_mouse_out(511, 100)
    painted = painter.mask
    painter._on_mouse_move(200, 400)  # back inside: no button press was seen, so no paint
    painter._on_mouse_up(200, 400)
    assert np.array_equal(painter.mask, painted)
    assert painted_box(painted)[:2] == (190, 209)
    painter.undo()
    assert not painter.mask.any()


def test_rectangle_leaving_the_canvas_is_kept(painter: MaskPainter) -> None:
    painter.tool = "rectangle"
    painter._on_mouse_down(400, 400)
    painter._on_mouse_move(511, 511)
    painter._on_mouse_out(530, 530)
    assert painted_box(painter.mask) == (800, 1021, 800, 1021)


def test_touch_uses_the_first_touch(painter: MaskPainter) -> None:
    painter._on_touch_start([(100, 100), (400, 400)])
    painter._on_touch_move([(150, 100), (400, 450)])
    painter._on_touch_move([(200, 100), (400, 500)])
    painter._on_touch_end([])
    mask = painter.mask
    assert painted_box(mask) == (190, 209, 190, 409)
    painter._on_touch_move([(300, 300)])  # finger lifted: moves paint nothing
    assert np.array_equal(painter.mask, mask)


def test_touch_cancel_ends_the_stroke(painter: MaskPainter) -> None:
    painter._on_touch_start([(100, 100)])
    painter._on_touch_move([(200, 100)])
    painter._on_touch_cancel([])
    painter._on_touch_move([(200, 300)])
    assert painted_box(painter.mask) == (190, 209, 190, 409)


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


def test_on_change_fires_once_per_completed_change(painter: MaskPainter) -> None:
    calls: list[float] = []
    painter.on_change(lambda widget: calls.append(widget.painted_fraction))
    painter._on_mouse_down(100, 100)
    painter._on_mouse_move(150, 100)
    painter._on_mouse_move(200, 100)
    assert calls == []
    painter._on_mouse_up(200, 100)
    assert len(calls) == 1 and calls[0] > 0
    painter.tool = "eraser"
    stroke(painter, (10, 400), (50, 400))  # erases nothing: no change
    painter.fill()
    painter.undo()
    assert len(calls) == 3 and calls[1] == 1.0
    painter.on_change(calls.append, remove=True)
    painter.clear()
    assert len(calls) == 4


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
    layout = painter.canvas.layout
    assert (layout.max_width, layout.width, layout.height) == ("256px", "100%", "auto")
    assert painter.canvas.width == 256 and painter.canvas[1].height == 128


def test_set_image_accepts_bytes_and_arrays_and_resets_the_mask(painter: MaskPainter) -> None:
    stroke(painter, (100, 100), (200, 100))
    buffer = io.BytesIO()
    make_image(640, 480).save(buffer, format="PNG")
    painter.set_image(buffer.getvalue())
    assert painter.mask.shape == (480, 640) and not painter.mask.any()
    assert not painter.undo()
    painter.set_image(np.zeros((100, 200, 3), dtype=np.uint8))
    assert painter.image.size == (200, 100)


def test_css_classes_for_browser_tests(painter: MaskPainter) -> None:
    assert "ipyimagegen-mask-painter" in painter._dom_classes
    assert "ipyimagegen-mask-canvas" in painter.canvas._dom_classes
    assert painter.canvas in painter.children


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


def test_bracket_keys_change_the_brush_size(painter: MaskPainter) -> None:
    painter.brush_size = 20
    painter._on_key_down("]", False, False, False)
    assert painter.brush_size == 24
    painter._on_key_down("[", False, False, False)
    painter._on_key_down("[", False, False, False)
    assert painter.brush_size < 20
    painter.brush_size = MAX_BRUSH_SIZE
    painter._on_key_down("]", False, False, False)
    assert painter.brush_size == MAX_BRUSH_SIZE
    painter.brush_size = 1
    painter._on_key_down("[", False, False, False)
    assert painter.brush_size == 1


def test_ctrl_z_undoes_and_ctrl_shift_z_redoes(painter: MaskPainter) -> None:
    stroke(painter, (100, 100), (200, 100))
    painter._on_key_down("z", False, True, False)
    assert not painter.mask.any()
    painter._on_key_down("Z", True, False, True)
    assert painter.mask.any()


def test_without_image_nothing_is_painted() -> None:
    painter = MaskPainter()
    assert painter.mask is None and painter.image is None
    assert painter.painted_fraction == 0.0
    stroke(painter, (10, 10), (100, 100))
    painter._on_touch_start([(10, 10)])
    painter._on_touch_end([])
    assert not painter.fill() and not painter.undo()
    assert painter._buttons["fill"].disabled
    assert "No image" in painter._status.value
    with pytest.raises(RuntimeError, match="set_image"):
        painter.mask_png()
    with pytest.raises(RuntimeError, match="set_image"):
        painter.set_mask(np.zeros((4, 4), dtype=bool))


def test_close_closes_the_owned_widgets(painter: MaskPainter) -> None:
    layers = painter.canvas._canvases
    painter.close()
    assert painter.comm is None and painter.canvas.comm is None
    assert all(layer.comm is None for layer in layers)
    assert all(control.comm is None for control in painter._controls)


def test_max_display_size_is_checked() -> None:
    with pytest.raises(ValueError, match="max_display_size"):
        MaskPainter(max_display_size=0)


# --- What reaches the canvas ------------------------------------------------------------------


def test_each_mouse_move_sends_one_message_with_the_segment(
    painter: MaskPainter, command_log: CommandLog
) -> None:
    image_layer, mask_layer, cursor_layer = painter.canvas._canvases
    painter._on_mouse_down(100, 100)
    command_log.messages.clear()
    painter._on_mouse_move(150, 100)
    painter._on_mouse_move(200, 120)
    assert len(command_log.messages) == 2
    on_mask = command_log.on(mask_layer)
    assert ("strokeLine", [150, 100, 200, 120]) in on_mask
    assert ("set:line_width", [10]) in on_mask
    assert ("set:line_cap", ["round"]) in on_mask
    assert ("strokeCircle", [200, 120, 5.0]) in command_log.on(cursor_layer)
    assert command_log.on(image_layer) == []


def test_stroke_end_redraws_the_overlay_from_the_mask(painter: MaskPainter, command_log: CommandLog) -> None:
    mask_layer = painter.canvas[1]
    stroke(painter, (100, 100), (200, 100))
    names = [name for name, _ in command_log.on(mask_layer)]
    assert names[-1] == "putImageData"
    assert "clear" in names[names.index("strokeLine") :]


def test_overlay_shows_the_mask_in_colour_at_the_chosen_opacity(
    painter: MaskPainter, command_log: CommandLog
) -> None:
    mask_layer = painter.canvas[1]
    stroke(painter, (100, 100), (200, 100))
    overlay = command_log.last_image_on(mask_layer)
    assert overlay.shape == (512, 512, 4)
    shown = overlay[..., 3] > 0
    assert painted_box(shown) == (95, 104, 95, 204)
    assert overlay[..., 3].max() == 127
    assert (overlay[shown][:, :3] == (255, 0, 255)).all()
    painter.opacity = 1.0
    assert command_log.last_image_on(mask_layer)[..., 3].max() == 255


def test_image_layer_shows_the_image_scaled_to_fit(command_log: CommandLog) -> None:
    image = make_image(1024, 512)
    painter = MaskPainter(image)
    shown = command_log.last_image_on(painter.canvas[0])
    assert shown.shape == (256, 512, 4)
    expected = np.asarray(image.resize((512, 256), Image.Resampling.LANCZOS))
    assert np.abs(shown[..., :3].astype(int) - expected).max() <= 1


def test_hover_draws_only_the_cursor(painter: MaskPainter, command_log: CommandLog) -> None:
    image_layer, mask_layer, cursor_layer = painter.canvas._canvases
    painter._on_mouse_move(30, 40)
    assert command_log.on(mask_layer) == [] and command_log.on(image_layer) == []
    assert ("strokeCircle", [30, 40, 5.0]) in command_log.on(cursor_layer)


def test_client_ready_redraws_image_and_mask(painter: MaskPainter, command_log: CommandLog) -> None:
    stroke(painter, (100, 100), (200, 100))
    command_log.messages.clear()
    painter._on_client_ready()
    assert len(command_log.messages) == 1
    assert ("putImageData", [0, 0]) in command_log.on(painter.canvas[0])
    assert ("putImageData", [0, 0]) in command_log.on(painter.canvas[1])


def test_empty_painter_shows_a_hint(command_log: CommandLog) -> None:
    painter = MaskPainter()
    texts = [args[0] for name, args in command_log.on(painter.canvas[0]) if name == "fillText"]
    assert texts and "image" in texts[0]


def test_a_failing_callback_does_not_break_drawing(painter: MaskPainter, command_log: CommandLog) -> None:
    def broken(widget: MaskPainter) -> None:
        raise RuntimeError("callback failed")

    painter.on_change(broken)
    stroke(painter, (100, 100), (200, 100))
    assert painter.mask.any()
    assert not _CANVAS_MANAGER._caching
    command_log.messages.clear()
    painter._on_mouse_move(10, 10)
    assert len(command_log.messages) == 1


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


def test_b_e_r_pick_the_tool_and_ctrl_does_not(painter: MaskPainter) -> None:
    painter._on_key_down("e", False, False, False)
    assert painter.tool == "eraser"
    painter._on_key_down("R", True, False, False)
    assert painter.tool == "rectangle"
    painter._on_key_down("b", False, True, False)  # Ctrl+B is not a tool key
    assert painter.tool == "rectangle"
    painter._on_key_down("b", False, False, False)
    assert painter.tool == "brush"


def test_the_canvas_takes_the_width_it_is_given_up_to_its_drawing_size(painter: MaskPainter) -> None:
    layout = painter.canvas.layout
    assert (layout.width, layout.height) == ("100%", "auto")
    assert layout.max_width == f"{painter.display_size[0]}px"
