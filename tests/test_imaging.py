"""ipyimagegen.imaging: opening any source safely, preparing uploads, masks, thumbnails, base64."""

from __future__ import annotations

import base64
import io
import os
import struct
import warnings
import zipfile
import zlib
from dataclasses import replace
from pathlib import Path

import ipywidgets
import numpy as np
import pytest
from PIL import Image

from ipyimagegen import imaging, masks
from ipyimagegen.api.types import InputImage
from ipyimagegen.errors import ImageInputError
from ipyimagegen.models import model_spec

DALLE2 = model_spec("dall-e-2")
GPT_IMAGE = model_spec("gpt-image-1")


def pattern(width: int = 64, height: int = 48) -> np.ndarray:
    """An RGB test picture where every pixel differs from its neighbours."""
    ys, xs = np.mgrid[0:height, 0:width]
    return np.dstack(
        [xs * 255 // max(1, width - 1), ys * 255 // max(1, height - 1), (xs * 7 + ys * 13) % 256]
    ).astype(np.uint8)


def encoded(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def pixels(image: Image.Image | bytes, mode: str = "RGBA") -> np.ndarray:
    if isinstance(image, bytes):
        image = Image.open(io.BytesIO(image))
    return np.asarray(image.convert(mode))


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_png(width: int, height: int) -> bytes:
    """A real, valid 1-bit PNG of one colour: tiny on disk, enormous once decoded."""
    row = bytes((width + 7) // 8 + 1)
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row * 1000) for _ in range(height // 1000)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", body) + png_chunk(b"IEND", b"")
    )


@pytest.fixture
def rgb() -> np.ndarray:
    return pattern()


@pytest.fixture
def png(rgb: np.ndarray) -> bytes:
    return encoded(Image.fromarray(rgb))


# --- sources --------------------------------------------------------------------------------


def test_every_source_type_gives_the_same_pixels(tmp_path: Path, rgb: np.ndarray, png: bytes) -> None:
    path = tmp_path / "picture.png"
    path.write_bytes(png)
    upload_entry = {"name": "picture.png", "type": "image/png", "size": len(png), "content": memoryview(png)}
    data_url = "data:image/png;base64," + base64.b64encode(png).decode()
    sources = {
        "str path": str(path),
        "Path": path,
        "bytes": png,
        "bytearray": bytearray(png),
        "memoryview": memoryview(png),
        "BytesIO": io.BytesIO(png),
        "PIL image": Image.fromarray(rgb),
        "array": rgb,
        "float array": rgb / 255.0,
        "InputImage": InputImage.from_bytes(png),
        "FileUpload entry": upload_entry,
        "ipywidgets 7 upload value": {"picture.png": {"metadata": {}, "content": png}},
        "Image widget": ipywidgets.Image(value=png),
        "data URL": data_url,
    }
    for name, source in sources.items():
        image = imaging.open_image(source)
        assert image.mode == "RGB", name
        assert np.array_equal(np.asarray(image), rgb), name
    with path.open("rb") as file:
        assert np.array_equal(np.asarray(imaging.open_image(file)), rgb)


def test_file_upload_widget_value(png: bytes, rgb: np.ndarray) -> None:
    class Upload:  # the shape of ipywidgets 8's FileUpload: a tuple of entries
        value = ({"name": "p.png", "content": memoryview(png)},)

    assert np.array_equal(np.asarray(imaging.open_image(Upload())), rgb)

    class Empty:
        value = ()

    with pytest.raises(ImageInputError, match="No file has been uploaded"):
        imaging.open_image(Empty())


def test_arrays_of_every_shape() -> None:
    mask = np.zeros((10, 20), bool)
    mask[2:5, 3:9] = True
    grey = imaging.open_image(mask)
    assert grey.mode == "RGB" and grey.size == (20, 10)
    assert np.array_equal(np.asarray(grey)[..., 0] == 255, mask)
    rgba = np.zeros((10, 20, 4), np.uint8)
    rgba[..., 3] = 128
    assert imaging.open_image(rgba).mode == "RGBA"
    assert imaging.open_image(np.full((10, 20, 1), 7, np.uint8)).getpixel((0, 0)) == (7, 7, 7)
    assert imaging.open_image(np.full((4, 4), 200, np.int64)).getpixel((0, 0)) == (200, 200, 200)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.full((4, 4, 3), 2.0), "from 0 to 1"),
        (np.full((4, 4), 300, np.int32), "from 0 to 255"),
        (np.zeros((4, 4, 2), np.uint8), "HxW"),
        (np.zeros((0, 4), np.uint8), "empty"),
    ],
)
def test_bad_arrays_say_what_to_do(array: np.ndarray, message: str) -> None:
    with pytest.raises(ImageInputError, match=message):
        imaging.open_image(array)


def test_source_name() -> None:
    assert imaging.source_name("/some/where/cat.jpg") == "cat.jpg"
    assert imaging.source_name({"name": "dog.png", "content": b""}) == "dog.png"
    assert imaging.source_name(b"...") == "image"


# --- bad input ------------------------------------------------------------------------------


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageInputError, match="empty") as caught:
        imaging.open_image(path)
    assert caught.value.hint


def test_zip_renamed_png(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("photo.png", b"not really")
    with pytest.raises(ImageInputError, match="ZIP archive") as caught:
        imaging.open_image(path)
    assert "PNG" in caught.value.hint


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"hello, I am a text file\n", "text, not an image"),
        (b"<!DOCTYPE html><html><body>Not found</body></html>", "HTML page"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
        (b"%PDF-1.7 ...", "PDF"),
    ],
)
def test_other_files_are_named(data: bytes, message: str) -> None:
    with pytest.raises(ImageInputError, match=message):
        imaging.open_image(data)


def test_truncated_png_fails_at_open(png: bytes) -> None:
    noisy = encoded(Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), np.uint8)))
    with pytest.raises(ImageInputError, match="incomplete|damaged"):
        imaging.open_image(noisy[: len(noisy) // 2])


def test_corrupt_png_data(png: bytes) -> None:
    start = png.index(b"IDAT") + 8
    broken = png[:start] + bytes(b ^ 0xFF for b in png[start : start + 40]) + png[start + 40 :]
    with pytest.raises(ImageInputError, match="damaged|incomplete") as caught:
        imaging.open_image(broken)
    assert "again" in caught.value.hint


def test_truncated_jpeg() -> None:
    jpeg = encoded(Image.fromarray(np.random.default_rng(2).integers(0, 256, (96, 96, 3), np.uint8)), "JPEG")
    with pytest.raises(ImageInputError, match="incomplete"):
        imaging.open_image(jpeg[: len(jpeg) // 2])


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageInputError, match="There is no file") as caught:
        imaging.open_image(tmp_path / "nowhere.png")
    assert "path" in caught.value.hint
    with pytest.raises(ImageInputError, match="folder"):
        imaging.open_image(tmp_path)


def test_text_mode_file(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(b"x")
    with path.open() as file, pytest.raises(ImageInputError, match="text mode"):
        imaging.open_image(file)


def test_unreadable_source_type() -> None:
    with pytest.raises(ImageInputError, match="Cannot read an image from a int"):
        imaging.open_image(42)


def test_decompression_bomb_png_fails_before_decoding() -> None:
    bomb = huge_png(20000, 20000)
    assert len(bomb) < 200_000
    filters_before = list(warnings.filters)
    limit_before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(
        ImageInputError, match=r"20000x20000 \(400 megapixels\).*at most 50 megapixels"
    ) as caught:
        imaging.open_image(bomb)
    assert "Scale it down" in caught.value.hint
    assert imaging.image_size(bomb) == (20000, 20000)  # the header alone is fine to read
    assert warnings.filters == filters_before and limit_before == Image.MAX_IMAGE_PIXELS


def test_decompression_bomb_in_other_formats() -> None:
    """Pillow's own check (a BMP header claiming 20000x20000) becomes the same clear error."""
    header = (
        b"BM"
        + struct.pack("<IHHI", 0, 0, 0, 54)
        + struct.pack("<IiiHHIIiiII", 40, 20000, 20000, 1, 24, 0, 0, 0, 0, 0, 0)
    )
    with pytest.raises(ImageInputError, match="too many pixels"):
        imaging.open_image(header)


def test_pixel_limit_is_a_setting(monkeypatch: pytest.MonkeyPatch, png: bytes) -> None:
    monkeypatch.setattr(imaging, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageInputError, match="64x48"):
        imaging.open_image(png)
    with pytest.raises(ImageInputError, match="64x48"):
        imaging.open_image(pattern())


# --- colour modes ---------------------------------------------------------------------------


def test_cmyk_jpeg_becomes_rgb() -> None:
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red in print colours
    image = imaging.open_image(encoded(cmyk, "JPEG", quality=95))
    assert image.mode == "RGB"
    red, green, blue = image.getpixel((8, 8))
    assert red > 230 and green < 25 and blue < 25


def test_sixteen_bit_png_is_scaled_not_clipped() -> None:
    values = np.linspace(0, 65535, 64 * 4).astype(np.uint16).reshape(4, 64)
    data = encoded(Image.fromarray(values))
    assert Image.open(io.BytesIO(data)).mode.startswith("I;16")
    image = imaging.open_image(data)
    assert image.mode == "RGB"
    expected = np.rint(values / 257).astype(np.uint8)
    assert np.abs(np.asarray(image)[..., 0].astype(int) - expected).max() <= 1
    assert np.asarray(image)[..., 0].max() == 255 and np.asarray(image)[..., 0].min() == 0


def test_palette_png_with_transparency_keeps_it() -> None:
    palette_image = Image.new("P", (8, 8), 1)
    palette_image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette_image.paste(0, (0, 0, 4, 8))
    data = encoded(palette_image, transparency=0)
    image = imaging.open_image(data)
    assert image.mode == "RGBA"
    alpha = np.asarray(image)[..., 3]
    assert (alpha[:, :4] == 0).all() and (alpha[:, 4:] == 255).all()
    assert image.getpixel((6, 6)) == (0, 0, 255, 255)


def test_grey_with_alpha_and_plain_grey() -> None:
    la = Image.merge("LA", [Image.new("L", (4, 4), 90), Image.new("L", (4, 4), 30)])
    assert imaging.open_image(encoded(la)).getpixel((1, 1)) == (90, 90, 90, 30)
    assert imaging.open_image(encoded(Image.new("L", (4, 4), 90))).getpixel((1, 1)) == (90, 90, 90)
    assert imaging.open_image(encoded(Image.new("1", (4, 4), 1))).getpixel((1, 1)) == (255, 255, 255)


def test_exif_orientation_is_applied() -> None:
    wide = Image.new("RGB", (40, 20), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: show it rotated 90 degrees
    image = imaging.open_image(encoded(wide, "JPEG", exif=exif))
    assert image.size == (20, 40)


# --- sizes and encoding ---------------------------------------------------------------------


def test_image_size_from_headers(png: bytes) -> None:
    assert imaging.image_size(png) == (64, 48)
    assert imaging.image_size(encoded(Image.new("RGB", (33, 17)), "JPEG")) == (33, 17)
    assert imaging.image_size(encoded(Image.new("RGB", (33, 17)), "WEBP")) == (33, 17)
    with pytest.raises(ImageInputError):
        imaging.image_size(b"definitely not an image")


def test_to_png_and_encode() -> None:
    image = Image.new("RGBA", (8, 8), (10, 20, 30, 0))
    data = imaging.to_png(image, text={"Software": "me"})
    assert Image.open(io.BytesIO(data)).text == {"Software": "me"}
    jpeg = imaging.encode(image, "jpeg", 80, text={"Software": "me"})
    opened = Image.open(io.BytesIO(jpeg))
    assert opened.format == "JPEG" and opened.getpixel((4, 4)) == (255, 255, 255)  # transparent on white
    assert opened.getexif()[0x0131] == "me"
    assert Image.open(io.BytesIO(imaging.encode(image, "webp"))).format == "WEBP"
    assert imaging.mime_type("jpeg") == "image/jpeg"
    with pytest.raises(ValueError, match="fmt"):
        imaging.encode(image, "gif")


# --- squares and uploads --------------------------------------------------------------------


def test_square_crop_and_pad() -> None:
    image = Image.fromarray(pattern(30, 20))
    cropped = imaging.square(image, "crop")
    assert cropped.size == (20, 20)
    assert np.array_equal(np.asarray(cropped), pattern(30, 20)[:, 5:25])
    padded = imaging.square(image, "pad")
    assert padded.size == (30, 30) and padded.mode == "RGBA"
    assert (np.asarray(padded)[:5, :, 3] == 0).all() and (np.asarray(padded)[25:, :, 3] == 0).all()
    assert np.array_equal(np.asarray(padded)[5:25, :, :3], pattern(30, 20))
    with pytest.raises(ValueError, match="crop"):
        imaging.square(image, "stretch")


def test_prepare_square_png_non_square_input() -> None:
    data = imaging.prepare_square_png(encoded(Image.fromarray(pattern(300, 200)), "JPEG"), size=256)
    image = Image.open(io.BytesIO(data))
    assert (image.format, image.mode, image.size) == ("PNG", "RGBA", (256, 256))


def test_prepare_square_png_fits_noise_under_the_limit() -> None:
    """Random RGBA noise does not compress: the PNG is reduced to 256 colours, its alpha kept exactly."""
    noise = np.random.default_rng(3).integers(0, 256, (1024, 1024, 4), np.uint8)
    assert len(imaging.to_png(Image.fromarray(noise))) > 4 * 1024 * 1024
    data = imaging.prepare_square_png(noise)
    assert len(data) <= 4 * 1024 * 1024
    image = Image.open(io.BytesIO(data))
    assert (image.mode, image.size) == ("RGBA", (1024, 1024))
    assert np.array_equal(np.asarray(image)[..., 3], noise[..., 3])


def test_png_within_scales_down_when_colours_are_not_enough() -> None:
    noise = Image.fromarray(np.random.default_rng(4).integers(0, 256, (256, 256, 4), np.uint8))
    data = imaging.png_within(noise, max_bytes=40_000)
    assert len(data) <= 40_000
    assert Image.open(io.BytesIO(data)).size[0] < 256


def test_prepare_input_image_dalle2(tmp_path: Path) -> None:
    path = tmp_path / "holiday.jpg"
    path.write_bytes(encoded(Image.fromarray(pattern(300, 200)), "JPEG"))
    prepared = imaging.prepare_input_image(path, DALLE2, size="512x512", fit="pad")
    assert (prepared.filename, prepared.mime_type) == ("holiday.png", "image/png")
    image = Image.open(io.BytesIO(prepared.data))
    assert (image.mode, image.size) == ("RGBA", (512, 512))
    assert image.getpixel((256, 5))[3] == 0  # the padding is transparent
    default = imaging.prepare_input_image(path, DALLE2)
    assert imaging.image_size(default.data) == (1024, 1024)
    assert imaging.prepare_input_image(default, DALLE2) is default  # already valid: unchanged


def test_prepare_input_image_keeps_accepted_originals(png: bytes) -> None:
    jpeg = encoded(Image.fromarray(pattern()), "JPEG")
    for data, mime in ((png, "image/png"), (jpeg, "image/jpeg")):
        prepared = imaging.prepare_input_image(data, GPT_IMAGE)
        assert prepared.data == data and prepared.mime_type == mime


@pytest.mark.parametrize(
    "make",
    [
        lambda: encoded(Image.new("CMYK", (20, 10), (0, 255, 0, 0)), "JPEG"),
        lambda: encoded(Image.new("RGB", (20, 10), "red"), "GIF"),
        lambda: encoded(Image.new("RGB", (20, 10), "red"), "BMP"),
        lambda: encoded(Image.new("RGB", (20, 10), "red"), "JPEG", exif=_rotated_exif()),
        lambda: Image.new("RGB", (20, 10), "red"),
    ],
    ids=["cmyk-jpeg", "gif", "bmp", "rotated-jpeg", "pil"],
)
def test_prepare_input_image_converts_the_rest_to_png(make) -> None:
    prepared = imaging.prepare_input_image(make(), GPT_IMAGE)
    assert prepared.mime_type == "image/png" and prepared.data.startswith(b"\x89PNG")
    assert imaging.image_size(prepared.data) in ((20, 10), (10, 20))


class DecodeCounter:
    """Counts full decodes of pixels (``Image.load`` on a file) while it is active."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from PIL import ImageFile

        self.count = 0
        original = ImageFile.ImageFile.load

        def counting(image: ImageFile.ImageFile):  # type: ignore[no-untyped-def]
            self.count += image.tile != []  # a load that decodes tiles, not a no-op on a loaded image
            return original(image)

        monkeypatch.setattr(ImageFile.ImageFile, "load", counting)


def test_an_upload_that_meets_the_models_rules_is_sent_untouched_and_never_decoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    photo = encoded(Image.fromarray(pattern(256, 192)))
    square = encoded(Image.fromarray(pattern(256, 256)).convert("RGBA"))
    made_mask = masks.to_png(np.eye(256, dtype=bool))
    decodes = DecodeCounter(monkeypatch)

    kept = imaging.prepare_input_image(photo, GPT_IMAGE)
    kept_square = imaging.prepare_input_image(square, DALLE2, size="256x256")
    kept_mask = imaging.prepare_mask(made_mask, kept_square)

    assert (kept.data, kept_square.data, kept_mask.data) == (photo, square, made_mask)
    assert decodes.count == 0


def test_a_png_turned_by_its_exif_chunk_is_turned_upright() -> None:
    turned = encoded(Image.new("RGB", (20, 10), "red"), "PNG", exif=_rotated_exif())
    assert b"eXIf" in turned
    prepared = imaging.prepare_input_image(turned, GPT_IMAGE)
    assert prepared.data != turned and imaging.image_size(prepared.data) == (10, 20)


def test_a_soft_mask_from_elsewhere_is_sent_as_it_is_and_marks_only_its_transparent_pixels() -> None:
    soft = np.full((32, 32, 4), 200, np.uint8)  # half opaque: kept, for the Images API as for ipyimagegen
    soft[:16, :, 3] = 0
    image = imaging.prepare_input_image(encoded(Image.new("RGBA", (32, 32), "red")), GPT_IMAGE)
    file = encoded(Image.fromarray(soft))
    prepared = imaging.prepare_mask(file, image)
    assert prepared.data == file and prepared.mime_type == "image/png"
    marked = imaging.read_mask(prepared.data, "alpha")
    assert marked[:16].all() and not marked[16:].any()


def _rotated_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = 8
    return exif


def test_prepare_input_image_shrinks_what_is_too_large() -> None:
    small_limit = replace(GPT_IMAGE, max_input_bytes=60_000)
    noise = encoded(Image.fromarray(np.random.default_rng(5).integers(0, 256, (300, 300, 3), np.uint8)))
    prepared = imaging.prepare_input_image(noise, small_limit)
    assert len(prepared.data) <= 60_000 and prepared.mime_type == "image/png"


def test_prepare_input_image_refuses_damaged_originals(png: bytes) -> None:
    noisy = encoded(Image.fromarray(np.random.default_rng(6).integers(0, 256, (64, 64, 3), np.uint8)))
    with pytest.raises(ImageInputError):
        imaging.prepare_input_image(noisy[:-300], GPT_IMAGE)


# --- masks ----------------------------------------------------------------------------------


def test_mask_round_trip_is_exact() -> None:
    mask = np.random.default_rng(7).random((37, 53)) < 0.4
    data = masks.to_png(mask)
    image = Image.open(io.BytesIO(data))
    assert image.mode == "RGBA"
    assert set(np.unique(np.asarray(image)[..., 3])) == {0, 255}
    assert np.array_equal(imaging.read_mask(data), mask)


def test_an_alpha_mask_needs_an_alpha_channel(png: bytes) -> None:
    with pytest.raises(ImageInputError, match="no alpha channel") as caught:
        imaging.read_mask(png, "alpha")
    assert "transparent" in str(caught.value) and caught.value.hint


def _prepared_alpha(mask: InputImage) -> np.ndarray:
    image = Image.open(io.BytesIO(mask.data))
    assert image.mode == "RGBA"
    return np.asarray(image)[..., 3]


def test_prepare_mask_sources() -> None:
    image = InputImage.from_bytes(encoded(Image.new("RGB", (40, 30))))
    regenerate = np.zeros((30, 40), bool)
    regenerate[5:10, 20:35] = True
    as_png = masks.to_png(regenerate)
    rgba = np.dstack([np.zeros((30, 40, 3), np.uint8), np.where(regenerate, 0, 255).astype(np.uint8)])
    for source in (regenerate, regenerate.astype(np.uint8) * 9, as_png, Image.open(io.BytesIO(as_png)), rgba):
        prepared = imaging.prepare_mask(source, image)
        assert prepared.mime_type == "image/png"
        assert np.array_equal(_prepared_alpha(prepared) == 0, regenerate)
        assert set(np.unique(_prepared_alpha(prepared))) == {0, 255}


def test_a_mask_file_already_in_the_api_form_is_sent_as_it_is() -> None:
    image = InputImage.from_bytes(encoded(Image.new("RGB", (40, 30))))
    regenerate = np.zeros((30, 40), bool)
    regenerate[5:10, 20:35] = True
    rgba = np.dstack([np.full((30, 40, 3), 90, np.uint8), np.where(regenerate, 0, 255).astype(np.uint8)])
    ready = encoded(Image.fromarray(rgba), optimize=True)  # not how ipyimagegen would encode it
    assert imaging.prepare_mask(ready, image).data == ready  # no decode-and-encode round trip
    assert imaging.prepare_mask(InputImage.from_bytes(ready, "mask"), image).data == ready
    soft = rgba.copy()
    soft[0, 0, 3] = 100  # partly transparent: only alpha 0 marks a pixel, so this one is kept
    soft_file = encoded(Image.fromarray(soft))
    prepared = imaging.prepare_mask(soft_file, image)
    assert prepared.data == soft_file  # it means to the API what it means here: sent untouched too
    assert np.array_equal(imaging.read_mask(prepared.data, "alpha"), regenerate)
    other_size = imaging.prepare_mask(ready, InputImage.from_bytes(encoded(Image.new("RGB", (80, 60)))))
    assert other_size.data != ready and _prepared_alpha(other_size).shape == (60, 80)


def _editor_mask(kind: str) -> bytes:
    """A 1024x1024 mask as an image editor or Pillow saves it: RGBA, no ipyimagegen marker chunk."""
    rgba = np.zeros((1024, 1024, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[256:768, 256:768, 3] = 0
    if kind == "feathered":  # a soft edge around the hole: 1 to 254 keep their pixels
        ramp = np.linspace(0, 255, 34)[1:-1].astype(np.uint8)
        rgba[224:256, 256:768, 3] = ramp[::-1, None]
        rgba[256:768, 768:800, 3] = ramp[None, :]
    if kind == "coloured":
        rgba[..., :3] = np.random.default_rng(4).integers(0, 256, (1024, 1024, 3), np.uint8)
    return encoded(Image.fromarray(rgba), optimize=kind == "optimized")


@pytest.mark.parametrize("kind", ["plain", "feathered", "coloured", "optimized"])
def test_a_mask_made_elsewhere_is_sent_as_it_is_and_never_decoded(
    monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    file = _editor_mask(kind)
    image = imaging.prepare_input_image(
        encoded(Image.fromarray(pattern(1024, 1024))), model_spec("gpt-image-2")
    )
    decodes = DecodeCounter(monkeypatch)

    prepared = imaging.prepare_mask(file, image)
    prepared_from_upload = imaging.prepare_mask(InputImage.from_bytes(file, "mask"), image)

    assert decodes.count == 0
    assert prepared.data == file and prepared_from_upload.data == file and prepared.mime_type == "image/png"
    assert np.array_equal(imaging.read_mask(prepared.data, "alpha"), imaging.read_mask(file))


def test_a_masks_convention_decides_whether_its_file_is_sent_as_it_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    image = InputImage.from_bytes(encoded(Image.new("RGB", (40, 30))))
    rgba = np.zeros((30, 40, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[5:10, :, 3] = 0  # transparent: the API's mark
    rgba[20:25, :, :3] = 255  # white and opaque: the black-and-white convention's mark
    alpha_mask, opaque = encoded(Image.fromarray(rgba)), rgba.copy()
    opaque[..., 3] = 255
    opaque_mask = encoded(Image.fromarray(opaque))
    decodes = DecodeCounter(monkeypatch)

    as_alpha = imaging.prepare_mask(opaque_mask, image, convention="alpha")  # marks nothing, as sent
    assert as_alpha.data == opaque_mask and decodes.count == 0
    as_white = imaging.prepare_mask(alpha_mask, image, convention="white")
    marked = imaging.read_mask(as_white.data, "alpha")
    assert marked[20:25].all() and not marked[:20].any() and not marked[25:].any()


def test_a_mask_that_is_not_the_apis_is_still_converted_or_refused(png: bytes) -> None:
    image = InputImage.from_bytes(encoded(Image.new("RGB", (64, 48))))
    with pytest.raises(ImageInputError, match="no alpha channel"):  # an RGB file has no transparency
        imaging.prepare_mask(png, image, convention="alpha")
    half = np.zeros((24, 32, 4), np.uint8)
    half[..., 3] = 255
    half[:12, :16, 3] = 0
    scaled = imaging.prepare_mask(encoded(Image.fromarray(half)), image)  # half the size: scaled up
    assert np.array_equal(_prepared_alpha(scaled) == 0, np.kron(half[..., 3] == 0, np.ones((2, 2), bool)))
    grey_alpha = encoded(Image.fromarray(half).convert("LA"))  # grey and alpha: made RGBA
    small_image = InputImage.from_bytes(encoded(Image.new("RGB", (32, 24))))
    made_rgba = imaging.prepare_mask(grey_alpha, small_image)
    assert made_rgba.data != grey_alpha and np.array_equal(_prepared_alpha(made_rgba), half[..., 3])


def test_a_damaged_mask_is_refused_with_what_to_do() -> None:
    image = InputImage.from_bytes(encoded(Image.new("RGB", (64, 48))))
    rgba = np.zeros((48, 64, 4), np.uint8)
    rgba[:10, :, 3] = 255
    truncated = encoded(Image.fromarray(rgba))[:-30]
    with pytest.raises(ImageInputError, match="damaged|incomplete") as caught:
        imaging.prepare_mask(truncated, image)
    assert caught.value.hint
    from ipyimagegen.engines.preview import PreviewEngine

    with pytest.raises(ImageInputError) as through:  # through an edit: which input it was
        PreviewEngine().edit(image=pattern(64, 48), mask=truncated, prompt="a fox", model="gpt-image-2")
    assert through.value.param == "mask" and through.value.hint


def test_prepare_mask_follows_the_crop_of_its_image() -> None:
    source = Image.fromarray(pattern(300, 200))
    regenerate = np.zeros((200, 300), bool)
    regenerate[:, :40] = True  # cropped away with the image's left edge
    regenerate[60:120, 100:180] = True
    prepared_image = imaging.prepare_input_image(source, DALLE2, size="256x256", fit="crop")
    mask = imaging.prepare_mask(regenerate, prepared_image, source=source, fit="crop")
    cropped = Image.fromarray(regenerate[:, 50:250].astype(np.uint8) * 255)
    expected = np.asarray(cropped.resize((256, 256), Image.Resampling.NEAREST)) > 0
    assert np.array_equal(_prepared_alpha(mask) == 0, expected)
    assert not (_prepared_alpha(mask)[:, :5] == 0).any()


def test_prepare_mask_follows_the_padding_of_its_image() -> None:
    source = Image.fromarray(pattern(300, 200))
    regenerate = np.ones((200, 300), bool)
    prepared_image = imaging.prepare_input_image(source, DALLE2, size="300x300", fit="pad")
    alpha = _prepared_alpha(imaging.prepare_mask(regenerate, prepared_image, source=source, fit="pad"))
    assert (alpha[50:250] == 0).all()  # the picture's area, as painted
    assert (alpha[:50] == 255).all() and (alpha[250:] == 255).all()  # the padding is kept


def test_prepare_mask_of_another_size_is_scaled() -> None:
    image = InputImage.from_bytes(encoded(Image.new("RGB", (64, 64))))
    regenerate = np.zeros((32, 32), bool)
    regenerate[0:8, 8:16] = True
    alpha = _prepared_alpha(imaging.prepare_mask(regenerate, image))
    assert alpha.shape == (64, 64)
    assert (alpha[0:16, 16:32] == 0).all() and (alpha == 0).sum() == 16 * 16


# --- outpainting, thumbnails, base64 --------------------------------------------------------


def test_outpaint_frame_geometry() -> None:
    image = pattern(100, 50)
    frame, mask = imaging.outpaint_frame(image, 200)
    assert frame.size == (200, 200) and frame.mode == "RGBA" and mask.shape == (200, 200)
    assert not mask[75:125, 50:150].any()
    assert mask.sum() == 200 * 200 - 100 * 50
    assert np.array_equal(np.asarray(frame)[75:125, 50:150, :3], image)
    assert (np.asarray(frame)[..., 3][mask] == 0).all()


def test_outpaint_frame_scale_and_offset() -> None:
    frame, mask = imaging.outpaint_frame(pattern(100, 50), (120, 80), scale=0.5, offset=(-10, 0))
    assert frame.size == (120, 80)
    assert not mask[0:25, 0:40].any() and mask[0:25, 40:].all() and mask[25:].all()
    with pytest.raises(ImageInputError, match="does not fit") as caught:
        imaging.outpaint_frame(pattern(100, 50), 60)
    assert "scale=0.6" in caught.value.hint


def test_thumbnail_of_an_opaque_photo() -> None:
    photo = encoded(Image.fromarray(pattern(2000, 1000)), "JPEG")
    data, mime = imaging.thumbnail(photo)
    image = Image.open(io.BytesIO(data))
    assert (mime, image.format, image.size) == ("image/jpeg", "JPEG", (256, 128))
    data, mime = imaging.thumbnail(Image.fromarray(pattern(300, 600)), max_side=100)
    assert mime == "image/jpeg" and Image.open(io.BytesIO(data)).size == (50, 100)


def test_thumbnail_keeps_transparency_and_small_sizes() -> None:
    rgba = np.dstack([pattern(400, 400), np.full((400, 400), 255, np.uint8)])
    rgba[:100, :, 3] = 0
    data, mime = imaging.thumbnail(encoded(Image.fromarray(rgba)), max_side=64)
    image = Image.open(io.BytesIO(data))
    assert mime in ("image/webp", "image/png") and image.size == (64, 64)
    assert image.convert("RGBA").getpixel((32, 2))[3] == 0
    data, _ = imaging.thumbnail(encoded(Image.new("RGB", (20, 10))))
    assert Image.open(io.BytesIO(data)).size == (20, 10)  # never enlarged


def test_base64_helpers(png: bytes) -> None:
    text = imaging.b64encode(png)
    assert imaging.b64decode(text) == png
    assert imaging.b64decode(f"data:image/png;base64,{text}") == png
    assert imaging.b64decode(text[:40] + "\n" + text[40:]) == png
    with pytest.raises(ImageInputError, match="not valid base64"):
        imaging.b64decode("not base64!")
    with pytest.raises(ImageInputError, match="not base64-encoded"):
        imaging.b64decode("data:image/png,rawdata")


def _png(image: Image.Image, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **options)
    return buffer.getvalue()


def _photo(mode: str, side: int = 96) -> Image.Image:
    rng = np.random.default_rng(len(mode))
    shape = (side, side + 8, len(mode)) if len(mode) > 1 else (side, side + 8)
    return Image.fromarray(rng.integers(0, 256, size=shape, dtype=np.uint8), mode)


def _need_imagecodecs() -> None:
    """The `fast` extra: the test extra installs it, so in CI a missing one fails."""
    try:
        import imagecodecs  # noqa: F401
    except ImportError:
        reason = "the fast extra is not installed: pip install -e '.[fast]'"
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("rgb", _png(_photo("RGB"))),
        ("rgba", _png(_photo("RGBA"))),
        ("rgb with a gamma and a profile", _png(_photo("RGB"), icc_profile=b"\0" * 64)),
        ("rgb, best compression", _png(_photo("RGB"), compress_level=9)),
    ],
)
def test_the_fast_png_decoder_gives_pillows_pixels(name: str, data: bytes) -> None:
    _need_imagecodecs()
    fast = imaging._fast_png(data)
    assert fast is not None, name
    with Image.open(io.BytesIO(data)) as reference:
        assert fast.mode == reference.mode and np.array_equal(np.asarray(fast), np.asarray(reference))
    imaging.FAST_PNG_DECODE = False
    try:
        assert imaging._fast_png(data) is None
        pillow = imaging.thumbnail(data, max_side=48)
    finally:
        imaging.FAST_PNG_DECODE = True
    assert imaging.thumbnail(data, max_side=48) == pillow  # the same thumbnail bytes either way


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("palette", _png(_photo("RGB").convert("P"))),
        ("grey", _png(_photo("L"))),
        ("16-bit grey", _png(Image.fromarray(np.full((8, 8), 40000, np.uint16)))),
        ("rgb with a transparent colour", _png(_photo("RGB"), transparency=(0, 0, 0))),
        ("truncated", _png(_photo("RGB"))[:300]),
    ],
)
def test_other_pngs_stay_with_pillow(name: str, data: bytes) -> None:
    _need_imagecodecs()
    assert imaging._fast_png(data) is None, name


# --- edits: the picture sent, and a result beside it --------------------------------------------------


def test_prepare_edit_input_says_what_it_did_to_the_picture() -> None:
    photo = Image.fromarray(pattern(300, 200))
    as_file = InputImage.from_bytes(encoded(photo), "photo.png")

    kept = imaging.prepare_edit_input(as_file, photo, GPT_IMAGE, None, "crop")
    assert kept.input.data == as_file.data and kept.note == "the file as it is" and kept.border is None
    assert kept.framing.is_identity and kept.picture.size == (300, 200)

    from_python = imaging.prepare_edit_input(photo, photo, GPT_IMAGE, None, "crop")
    assert from_python.note == "encoded as PNG"

    squared = imaging.prepare_edit_input(as_file, photo, DALLE2, "256x256", "pad")
    assert squared.picture.size == (256, 256) and squared.note == "padded to a square from 300×200"
    assert squared.framing.source_size == (300, 200) and squared.framing.size == (256, 256)


def test_prepare_edit_input_places_the_picture_in_its_outpainting_frame() -> None:
    photo = Image.fromarray(pattern(200, 100))
    placement = masks.Placement((512, 512), scale=0.5)
    prepared = imaging.prepare_edit_input(photo, photo, DALLE2, "512x512", "crop", placement)
    assert prepared.picture.size == (512, 512)
    assert prepared.note == "the image at 50% of a 512×512 frame; the border is to fill"
    alpha = np.asarray(prepared.picture.getchannel("A"))
    assert np.array_equal(alpha == 0, prepared.border)  # the border, and only it, is to fill
    assert not prepared.border[192:320, 128:384].any() and prepared.border[:192].all()

    with pytest.raises(ImageInputError, match="does not fit") as caught:
        imaging.prepare_edit_input(photo, photo, DALLE2, "512x512", "crop", masks.Placement((64, 64), 2.0))
    assert caught.value.param is None  # about the frame, not a mask


def _edited(original: np.ndarray, box: tuple[slice, slice], fmt: str = "PNG") -> bytes:
    """``original`` with ``box`` made white and everything brightened a little, as a file."""
    pixels = original.astype(np.int16) + 40
    pixels[box] = 255
    return encoded(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), fmt)


def test_outside_mask_measures_the_change_and_puts_the_original_back() -> None:
    original = pattern(64, 48)
    mask = np.zeros((48, 64), bool)
    mask[10:30, 20:40] = True
    result = _edited(original, (slice(10, 30), slice(20, 40)))
    picture = Image.fromarray(original)

    outside = imaging.outside_mask(picture, result, "image/png", mask, feather=0.0)
    assert outside is not None and outside.changed > 0.5  # every pixel outside was brightened
    back = np.asarray(Image.open(io.BytesIO(outside.data)).convert("RGB")).astype(int)
    far = np.ones((48, 64), bool)
    far[6:34, 16:44] = False  # away from the mask's edge
    assert np.abs(back[far] - original[far]).max() <= 1  # the original, outside
    assert (back[12:28, 22:38] == 255).all()  # the edit, inside

    measured_only = imaging.outside_mask(picture, result, "image/png", mask, put_back=False)
    assert measured_only is not None and measured_only.data is None
    assert measured_only.changed == pytest.approx(outside.changed)

    whole = imaging.outside_mask(picture, result, "image/png", np.ones((48, 64), bool))
    assert whole is not None and whole.data is None  # all of it is new: nothing to put back

    as_jpeg = imaging.outside_mask(
        picture, _edited(original, (slice(10, 30), slice(20, 40)), "JPEG"), "image/jpeg", mask
    )
    assert as_jpeg is not None and Image.open(io.BytesIO(as_jpeg.data)).format == "JPEG"


def test_outside_mask_leaves_results_it_cannot_compare() -> None:
    original = Image.fromarray(pattern(64, 48))
    mask = np.zeros((48, 64), bool)
    mask[:10] = True
    gif = encoded(original.convert("P"), "GIF")
    assert imaging.outside_mask(original, gif, "image/gif", mask) is None  # frames would be lost
    square = encoded(Image.fromarray(pattern(64, 64)))
    assert imaging.outside_mask(original, square, "image/png", mask) is None  # another shape
    larger = encoded(Image.fromarray(pattern(128, 96)))
    assert imaging.outside_mask(original, larger, "image/png", mask) is not None  # same shape, larger


def test_same_shape_and_encode_like() -> None:
    assert imaging.same_shape((1024, 1024), (512, 512)) and imaging.same_shape((300, 200), (1536, 1026))
    assert not imaging.same_shape((300, 200), (1024, 1024))
    picture = Image.fromarray(pattern(32, 24)).convert("RGBA")
    for mime, fmt in (("image/png", "PNG"), ("image/jpeg", "JPEG"), ("image/webp", "WEBP")):
        with Image.open(io.BytesIO(imaging.encode_like(picture, mime))) as reopened:
            assert reopened.format == fmt and reopened.size == (32, 24)
