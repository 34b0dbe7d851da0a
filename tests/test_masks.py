"""One meaning of "marked", one resizer, and framings that carry image and mask together."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image

from edit_helpers import picture
from ipyimagegen import imaging, masks
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.widgets.mask_painter import MaskPainter
from ipyimagegen.widgets.studio import Studio


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def _soft_mask(width: int = 64, height: int = 32) -> bytes:
    """Alpha ramps from 0 (left) to 255 (right): a feathered edge."""
    rgba = np.zeros((height, width, 4), np.uint8)
    rgba[..., 3] = np.linspace(0, 255, width).astype(np.uint8)[None, :]
    return _png(rgba)


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    return np.count_nonzero(a & b) / max(1, np.count_nonzero(a | b))


def test_a_soft_mask_marks_the_same_pixels_everywhere() -> None:
    soft = _soft_mask()
    expected = np.zeros((32, 64), bool)
    expected[:, 0] = True  # alpha 0 only: the API's "fully transparent"

    read = imaging.read_mask(soft)
    painter = MaskPainter(picture(64, 32))
    painter.set_mask(soft)
    prepared = imaging.prepare_mask(
        soft, imaging.prepare_input_image(picture(64, 32), PreviewEngine().spec_for("gpt-image-2"))
    )
    source = picture(64, 32)
    edited = PreviewEngine().edit(image=source, mask=soft, prompt="a red sky", model="gpt-image-2")[0]
    changed = (np.asarray(edited.to_pil().convert("RGB")) != source[..., :3]).any(axis=2)

    assert np.array_equal(read, expected)
    assert np.array_equal(painter.mask, expected)
    assert np.array_equal(imaging.read_mask(prepared.data, "alpha"), expected)
    assert not changed[~expected].any()  # outside the mask the preview engine keeps every pixel


def test_black_and_white_masks_mark_white() -> None:
    grey = np.zeros((20, 30), np.uint8)
    grey[:, :10] = 255
    grey[:, 10:12] = 127  # below the threshold: kept
    assert np.array_equal(imaging.read_mask(_png(grey)), grey >= masks.WHITE_FROM_LUMA)
    rgba_opaque = np.dstack([np.repeat(grey[..., None], 3, axis=2), np.full((20, 30), 255, np.uint8)])
    assert np.array_equal(
        imaging.read_mask(_png(rgba_opaque)), grey >= 128
    )  # no transparency: read as black and white
    with pytest.raises(ValueError, match="no alpha channel"):
        imaging.read_mask(_png(grey), "alpha")


@pytest.mark.parametrize("fit", ["crop", "pad"])
def test_square_framings_carry_the_mask_with_the_image(fit: str) -> None:
    marked = np.zeros((200, 300), bool)
    marked[50:150, 120:200] = True
    framing = masks.square((300, 200), fit).then(
        masks.scale_to(masks.square((300, 200), fit).size, (256, 256))
    )  # type: ignore[arg-type]
    image = np.zeros((200, 300, 4), np.uint8)
    image[marked] = (255, 0, 0, 255)
    framed_image = np.asarray(framing.image(Image.fromarray(image), Image.Resampling.NEAREST))
    framed_mask = framing.mask(marked)
    red = (framed_image[..., 0] == 255) & (framed_image[..., 3] == 255)
    assert _overlap(framed_mask, red) > 0.97  # the mask lands on the pixels it marked
    assert _overlap(framing.unframe(framed_mask), marked) > 0.95
    assert framing.border().any() == (fit == "pad")


def test_outpainting_frame_marks_the_border_to_fill() -> None:
    framing = masks.outpaint((100, 50), (120, 80), scale=0.5, offset=(-10, 0))
    border = framing.border()
    assert not border[0:25, 0:40].any() and border[0:25, 40:].all() and border[25:].all()
    with pytest.raises(masks.MaskError, match="does not fit") as caught:
        masks.outpaint((100, 50), (60, 60))
    assert "scale=0.6" in caught.value.hint


def test_one_resizer_nearest_or_keeping_thin_strokes() -> None:
    thin = np.zeros((64, 64), bool)
    thin[:, 31] = True
    assert not masks.resize(
        thin, (8, 8)
    ).any()  # nearest samples columns 4, 12, ... 28, 36: the stroke is lost
    assert masks.resize(thin, (8, 8), rule="any")[:, 3].all()
    assert masks.resize(thin, (128, 128)).sum() == 2 * 128


def _painted_on_original(tab, region: tuple[slice, slice]) -> np.ndarray:
    original = np.zeros(tab.picture.loaded.image.size[::-1], bool)
    original[region] = True
    tab.use_mask(original)
    return original


def test_a_painted_mask_follows_the_crop_pad_and_model_changes() -> None:
    tab = Studio(PreviewEngine()).edit_tab
    tab.params.model = "dall-e-2"
    tab.params.size = "256x256"
    tab.use_image(picture(300, 200))
    original = _painted_on_original(tab, (slice(50, 150), slice(120, 200)))
    cropped_fraction = tab.painter.painted_fraction

    tab.fit = "pad"
    padded = tab.prepared
    expected = padded.framing.mask(original)
    assert _overlap(tab.painter.mask, expected) > 0.95
    assert tab.painter.painted_fraction < cropped_fraction  # the padded picture shows more around it
    assert f"{tab.painter.painted_fraction:.1%}" in tab.summary.value

    tab.params.model = "gpt-image-2"  # not square: the whole photo, as it is
    assert tab.prepared.picture.size == (300, 200)
    assert _overlap(tab.painter.mask, original) > 0.95

    tab.params.model = "dall-e-2"
    tab.fit = "crop"
    assert _overlap(tab.painter.mask, tab.prepared.framing.mask(original)) > 0.95


def test_a_mask_that_cannot_be_used_is_one_of_the_packages_errors_with_its_hint() -> None:
    from ipyimagegen.engines.preview import PreviewEngine
    from ipyimagegen.errors import ImageInputError, ImagesError

    with pytest.raises(ImagesError) as caught:
        masks.from_array(np.zeros((8, 8, 2), bool))
    assert isinstance(caught.value, ImageInputError) and caught.value.param == "mask" and caught.value.hint
    with pytest.raises(ImageInputError) as through:  # the same through a backend, with which input it was
        PreviewEngine().edit(
            image=np.zeros((64, 64, 3), np.uint8), mask=np.zeros((64, 64, 2)), prompt="a fox"
        )
    assert through.value.param == "mask" and "The mask cannot be used" in through.value.message


def test_a_black_and_white_rgb_array_is_the_same_mask_as_its_png() -> None:
    rgb = np.zeros((16, 24, 3), np.uint8)
    rgb[4:10, 5:15] = 255
    png = io.BytesIO()
    Image.fromarray(rgb).save(png, "PNG")
    from_png = masks.from_image(Image.open(io.BytesIO(png.getvalue())))
    assert np.array_equal(masks.from_array(rgb), from_png) and from_png.sum() == 60
    assert np.array_equal(masks.from_array(rgb > 0), from_png)  # True is white
    assert np.array_equal(masks.from_array(rgb / 255.0), from_png)  # 1.0 is white


# --- outpainting placement ------------------------------------------------------------------------


def test_a_placement_scales_the_picture_into_its_frame_and_keeps_it_whole_there() -> None:
    centred = masks.Placement((512, 512), scale=0.5).framing((200, 100))
    # the largest fit is 512 wide; half of it is 256x128, centred
    assert centred.source_box() == (128.0, 192.0, 256.0, 128.0)
    assert centred.border().sum() == 512 * 512 - 256 * 128

    far = masks.Placement((512, 512), scale=0.5, centre=(1.0, 0.0)).framing((200, 100))
    assert far.source_box() == (256.0, 0.0, 256.0, 128.0)  # against the right and top edges, not past them
    assert not far.border()[:128, 256:].any() and far.border()[128:].all()

    with pytest.raises(masks.MaskError, match="does not fit"):
        masks.Placement((512, 512), scale=1.5).framing((200, 100))


def test_a_placement_is_a_value_two_equal_choices_compare_equal() -> None:
    assert masks.Placement((512, 512), 0.75, (0.25, 0.5)) == masks.Placement((512, 512), 0.75, (0.25, 0.5))
    assert masks.Placement((512, 512), 0.75) != masks.Placement((512, 512), 0.8)


def test_within_frame_brings_a_point_onto_the_frame() -> None:
    assert masks.within_frame((-0.2, 1.7)) == (0.0, 1.0)
    assert masks.within_frame((0.3, 0.6)) == (0.3, 0.6)


def test_extending_grows_the_shape_and_places_the_picture_against_the_far_side() -> None:
    assert masks.extended_shape((1000, 800), {"right": 0.5}) == (1500.0, 800.0)
    assert masks.extended_shape((1000, 800), {"left": 0.25, "up": 1.0, "down": 0.5}) == (1250.0, 2000.0)

    right = masks.extend((1024, 1024), {"right": 0.5}, (1536, 1024))
    assert right.scale == pytest.approx(1.0)  # the grown picture is the frame's shape: full size
    framing = right.framing((1024, 1024))
    assert framing.source_box() == (0.0, 0.0, 1024.0, 1024.0)
    assert framing.border()[:, 1024:].all() and not framing.border()[:, :1024].any()

    left = masks.extend((512, 512), {"left": 1.0}, (1024, 1024))  # a 2:1 shape in a square frame
    assert left.scale == pytest.approx(0.5)  # 1:1 at its own size, half the largest that fits the frame
    x, y, width, height = left.framing((512, 512)).source_box()
    assert (x, width) == (512.0, 512.0) and y == 256.0 and height == 512.0

    both = masks.extend((100, 100), {"right": 1.0, "down": 1.0}, (200, 200))
    assert both.framing((100, 100)).source_box() == (0.0, 0.0, 100.0, 100.0)  # top-left corner


def test_a_big_brush_painted_row_by_row_covers_the_same_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past SPAN_FROM_PIXELS a segment is painted from its shape, row by row: the same pixels as the
    per-pixel distance test, but for centres that lie on the edge itself (rounding)."""
    from ipyimagegen import masks as module

    rng = np.random.default_rng(7)
    for _ in range(120):
        x0, y0, x1, y1 = (float(v) for v in rng.uniform(-40, 340, 4))
        radius = float(rng.uniform(0.8, 150))
        by_pixel, by_row = np.zeros((300, 300), dtype=bool), np.zeros((300, 300), dtype=bool)
        monkeypatch.setattr(module, "SPAN_FROM_PIXELS", 10**12)
        module.paint_segment(by_pixel, x0, y0, x1, y1, radius)
        monkeypatch.setattr(module, "SPAN_FROM_PIXELS", 0)
        module.paint_segment(by_row, x0, y0, x1, y1, radius)
        rows, cols = np.nonzero(by_pixel != by_row)
        for row, col in zip(rows, cols, strict=True):
            px, py = col + 0.5 - x0, row + 0.5 - y0
            dx, dy = x1 - x0, y1 - y0
            t = min(max((px * dx + py * dy) / (dx * dx + dy * dy), 0.0), 1.0) if dx or dy else 0.0
            assert abs(math.hypot(px - t * dx, py - t * dy) - max(radius, math.sqrt(0.5))) < 1e-3
