"""Pillow helpers: open any image safely, prepare uploads for a model, masks, thumbnails, base64.

Everything that reads an image goes through :func:`open_image`, which accepts paths, bytes, file
objects, PIL images, numpy arrays and upload widgets' values, loads the whole image at once (so a
damaged file fails here, with a clear message, not later), turns it upright from its EXIF
orientation and gives back an ``RGB`` or ``RGBA`` image.

What a mask means is :mod:`ipyimagegen.masks`'s to say; here masks are read from any source
and prepared for a model with their image.
"""

from __future__ import annotations

import base64
import binascii
import functools
import io
import math
import os
import struct
import warnings
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
from PIL import ExifTags, Image, ImageOps, ImageSequence, PngImagePlugin, UnidentifiedImageError

from . import masks, svg
from .errors import ImageInputError
from .media import MIME_BY_FORMAT, InputImage, sniff_mime_type
from .models import ModelSpec, parse_size
from .pngtext import GIF_SIGNATURES, PNG_SIGNATURE, GifFormatError, gif_frames, png_chunks_of

MAX_IMAGE_PIXELS = 50_000_000
"""The largest image (width x height) opened; larger ones are refused before they are decoded."""

MAX_UPLOAD_BYTES = 4 * 1024 * 1024
"""The Images API's limit for a dall-e-2 input image or mask."""

READABLE_FORMATS = ("PNG", "JPEG", "MPO", "WEBP", "GIF", "BMP", "TIFF", "AVIF", "HEIF")
"""Pillow formats :func:`open_image` decodes (AVIF and HEIF where Pillow has a plugin for them)."""

FITS = ("crop", "pad")

_DAMAGED_HINT = "Export or download the image again, then retry."
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})
_ALPHA_MODES = frozenset({"RGBA", "LA", "La", "PA", "RGBa"})


# --- opening -----------------------------------------------------------------------------------


def open_image(source: Any) -> Image.Image:
    """An ``RGB`` or ``RGBA`` image from a path, bytes, file object, PIL image, array or upload.

    Accepted sources: ``str``/``Path`` (a ``data:`` URL too), ``bytes``/``bytearray``/
    ``memoryview``, a binary file object, a PIL image, a numpy array (HxW bool or uint8, HxWx3,
    HxWx4; float arrays in 0..1), an :class:`~ipyimagegen.api.types.InputImage`, an ipywidgets
    ``FileUpload`` entry (``{"name": ..., "content": ...}``), or an object with a ``.value``
    holding any of these (an ``Image`` or ``FileUpload`` widget). Raises
    :class:`~ipyimagegen.errors.ImageInputError` for anything that is not a usable image.
    """
    if isinstance(source, Image.Image):
        return _from_pil(source)
    if isinstance(source, np.ndarray):
        return _from_array(source)
    return _decode(encoded_bytes(source))


def encoded_bytes(source: Any) -> bytes:
    """The file bytes of a source that is an encoded image (path, bytes, file object, upload...)."""
    if isinstance(source, InputImage):
        return source.data
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, str) and source.lstrip().startswith("data:"):
        return b64decode(source)
    if isinstance(source, (str, os.PathLike)):
        return _read_file(Path(source))
    if isinstance(source, dict):
        return encoded_bytes(_upload_content(source))
    if hasattr(source, "read"):
        data = source.read()
        if isinstance(data, str):
            raise ImageInputError(
                "The file was opened in text mode.", hint="Open it in binary mode: open(path, 'rb')."
            )
        return bytes(data)
    if hasattr(source, "value"):
        value = source.value
        if isinstance(value, (tuple, list)):
            if not value:
                raise ImageInputError("No file has been uploaded yet.", hint="Choose an image file first.")
            value = value[0]
        return encoded_bytes(value)
    raise ImageInputError(
        f"Cannot read an image from a {type(source).__name__}.",
        hint="Pass a file path, bytes, a binary file object, a PIL image or a numpy array.",
    )


def source_name(source: Any, default: str = "image") -> str:
    """A file name for a source (the path's or upload's name), for uploads and saved files."""
    if isinstance(source, InputImage):
        return source.filename
    if isinstance(source, os.PathLike) or (isinstance(source, str) and not source.startswith("data:")):
        return Path(source).name or default
    if isinstance(source, dict) and isinstance(source.get("name"), str):
        return source["name"]
    name = getattr(source, "name", None)
    if isinstance(name, str) and name and not name.startswith("<"):
        return Path(name).name
    return default


def _read_file(path: Path) -> bytes:
    path = path.expanduser()
    if not path.exists():
        raise ImageInputError(
            f"There is no file {_shorten(str(path))!r}.",
            hint=f"Check the path; a relative path starts from {os.getcwd()!r}.",
        )
    if path.is_dir():
        raise ImageInputError(f"{str(path)!r} is a folder, not an image file.", hint="Name an image file.")
    return path.read_bytes()


def _shorten(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _upload_content(entry: dict[str, Any]) -> Any:
    """The content of an ipywidgets ``FileUpload`` entry (version 8, or version 7's dict of dicts)."""
    if "content" in entry:
        return entry["content"]
    if len(entry) == 1:
        (inner,) = entry.values()
        if isinstance(inner, dict) and "content" in inner:
            return inner["content"]
    raise ImageInputError(
        "This dict is not an uploaded file: it has no 'content'.",
        hint="Pass one entry of a FileUpload widget's value, or the widget itself.",
    )


def _too_large(width: int | None = None, height: int | None = None, detail: str = "") -> ImageInputError:
    limit = f"{MAX_IMAGE_PIXELS / 1e6:.0f} megapixels"
    if width is not None and height is not None:
        what = f"The image is {width}x{height} ({width * height / 1e6:.0f} megapixels)"
    else:
        what = f"The image has too many pixels{f' ({detail})' if detail else ''}"
    side = int(math.sqrt(MAX_IMAGE_PIXELS))
    return ImageInputError(
        f"{what}; ipyimagegen opens images of at most {limit}.",
        hint=f"Scale it down (to at most {side}x{side}, say) in an image editor first.",
    )


@functools.cache
def _readable_formats() -> tuple[str, ...]:
    Image.init()  # registers every plugin Pillow has, WebP and AVIF included
    return tuple(name for name in READABLE_FORMATS if name in Image.OPEN)


def _check_pixels(width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise ImageInputError(
            f"The image is {width}x{height} pixels, so there is no picture in it.",
            hint="Use an image with pixels in it.",
        )
    if width * height > MAX_IMAGE_PIXELS:
        raise _too_large(width, height)


def _describe_unknown(data: bytes) -> str:
    """What some bytes that are not a readable image seem to be."""
    head = data[:64].lstrip()
    if data.startswith(b"PK\x03\x04"):
        return "a ZIP archive (or an Office document), not an image"
    if data.startswith(b"%PDF"):
        return "a PDF document, not an image"
    if data.startswith(b"\x1f\x8b"):
        return "a gzip archive, not an image"
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftyphevc"):
        return "a HEIC photo, which Pillow cannot read here (install pillow-heif, or export it as JPEG)"
    if head.startswith((b"<svg", b"<?xml")) or b"<svg" in data[:1024]:
        return "an SVG drawing, which is not a bitmap image (export it as PNG)"
    if head[:15].lower().startswith((b"<!doctype html", b"<html")):
        return "an HTML page, not an image (was a download link saved instead of the picture?)"
    try:
        data[:256].decode("utf-8")
    except UnicodeDecodeError:
        return "not an image in a format ipyimagegen reads"
    return "text, not an image"


def _open_lazy(data: bytes) -> Image.Image:
    """Identify an image and read its header (no pixels yet), refusing decompression bombs."""
    if not data:
        raise ImageInputError(
            "The image file is empty (0 bytes).", hint="The upload or download failed: get the file again."
        )
    header = _png_header_size(data)
    if header is not None:
        _check_pixels(*header)
    formats = _readable_formats()
    # Turn Pillow's bomb warning into an error only here; the filter is restored on exit.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=formats)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _too_large(detail=str(exc).split(",")[0]) from exc
        except UnidentifiedImageError as exc:
            if data.startswith(PNG_SIGNATURE) or data.startswith(b"\xff\xd8\xff"):
                kind = "PNG" if data.startswith(PNG_SIGNATURE) else "JPEG"
                raise ImageInputError(
                    f"This {kind} file is damaged: its picture cannot be read.", hint=_DAMAGED_HINT
                ) from exc
            raise ImageInputError(
                f"This file is {_describe_unknown(data)}.",
                hint=f"Use an image file: {', '.join(formats)}.",
            ) from exc
        except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
            raise ImageInputError(f"The image file is damaged ({exc}).", hint=_DAMAGED_HINT) from exc
    _check_pixels(*image.size)
    return image


def _load(image: Image.Image) -> Image.Image:
    """Decode all the pixels now, so that a truncated or corrupt file fails here."""
    try:
        image.load()
    except _READ_ERRORS as exc:
        raise _damaged(exc) from exc
    return image


_READ_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error)


def _damaged(exc: BaseException) -> ImageInputError:
    reason = str(exc) or type(exc).__name__
    if "truncated" in reason.lower() or isinstance(exc, EOFError):
        message = f"The image file is incomplete: it ends before the picture does ({reason})."
    else:
        message = f"The image file is damaged and cannot be decoded ({reason})."
    return ImageInputError(message, hint=_DAMAGED_HINT)


def _decode(data: bytes, draft: tuple[int, int] | None = None) -> Image.Image:
    image = _open_lazy(data)
    if draft is not None and image.format in ("JPEG", "MPO"):
        image.draft("RGB", draft)  # let the JPEG decoder scale down: much faster for thumbnails
    return normalize_mode(upright(_load(image)))


def _from_pil(image: Image.Image) -> Image.Image:
    _check_pixels(*image.size)
    _load(image)
    return normalize_mode(upright(image.copy()))


def _from_array(array: np.ndarray) -> Image.Image:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise ImageInputError(
            f"An image array must be HxW, HxWx3 (RGB) or HxWx4 (RGBA); this one is {array.shape}.",
            hint="Reshape or slice the array.",
        )
    height, width = array.shape[:2]
    if width == 0 or height == 0:
        raise ImageInputError("The image array is empty.", hint="Pass an array with pixels in it.")
    _check_pixels(width, height)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
            raise ImageInputError(
                "A float image array must hold values from 0 to 1.",
                hint="Scale it (array / 255 for 0..255 values) or convert it to uint8.",
            )
        array = np.rint(array * 255).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.integer):
        if array.dtype != np.uint8 and (array.min() < 0 or array.max() > 255):
            raise ImageInputError(
                f"An integer image array must hold values from 0 to 255 (this {array.dtype} array does not).",
                hint="Scale it to 0..255 and convert it with array.astype('uint8').",
            )
        array = array.astype(np.uint8, copy=False)
    else:
        raise ImageInputError(f"Cannot make an image from a {array.dtype} array.", hint="Use uint8 or bool.")
    return normalize_mode(Image.fromarray(np.ascontiguousarray(array)))


def _png_header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk, or None when ``data`` is not a PNG."""
    if len(data) >= 24 and data.startswith(PNG_SIGNATURE) and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    return None


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) of an encoded image, read from its header only (EXIF orientation ignored).

    For an SVG drawing: the size it asks to be shown at (see :func:`ipyimagegen.svg.size`).
    """
    data = bytes(data)
    header = _png_header_size(data)
    if header is not None:
        return header
    if svg.is_svg(data):
        try:
            return svg.size(data)
        except svg.SvgError as exc:
            raise ImageInputError(str(exc), hint=_DAMAGED_HINT) from None
    return _open_lazy(data).size


_SVG_HINT = "Open the drawing in a browser or a vector editor, export it as PNG, and use that file."


def open_picture(source: Any, max_side: int | None = None) -> Image.Image:
    """:func:`open_image` where a raster picture is needed, an SVG drawing included: it is drawn at
    its own size, its longer side at most ``max_side`` (:data:`ipyimagegen.svg.RASTER_MAX_SIDE`
    when None). Raises :class:`ImageInputError` saying what to do for a drawing that cannot be drawn
    (never a placeholder card: that is for thumbnails)."""
    if isinstance(source, (Image.Image, np.ndarray)):
        return open_image(source)
    data = encoded_bytes(source)
    if not svg.is_svg(data):
        return open_image(data)
    if not svg.can_rasterise():
        raise ImageInputError("Drawing an SVG needs the resvg-py package.", hint="pip install resvg-py")
    side = svg.RASTER_MAX_SIDE if max_side is None else max_side
    try:
        return svg.rasterise(data, min(side, max(svg.size(data))))
    except svg.SvgError as exc:
        raise ImageInputError(str(exc), hint=_SVG_HINT) from None


def raster_file(data: bytes) -> tuple[bytes, str]:
    """An image file (bytes, MIME type) where a raster image is needed: ``data`` as it is, or for an
    SVG drawing a PNG of it (:func:`open_picture`, which raises :class:`ImageInputError` when it
    cannot be drawn)."""
    data = bytes(data)
    if svg.is_svg(data):
        return to_png(open_picture(data)), "image/png"
    return data, sniff_mime_type(data)


def upright(image: Image.Image) -> Image.Image:
    """``image`` turned as its EXIF orientation says (the image itself when there is nothing to do)."""
    try:
        orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:  # a broken EXIF block is no reason to refuse the picture
        return image
    if orientation in (2, 3, 4, 5, 6, 7, 8):
        return ImageOps.exif_transpose(image)
    return image


def normalize_mode(image: Image.Image) -> Image.Image:
    """``image`` as ``RGB``, or ``RGBA`` where it has transparency (palette ``tRNS`` included).

    16-bit and 32-bit images are scaled to 8 bits, CMYK and other colour spaces converted.
    """
    mode = image.mode
    if mode in ("RGB", "RGBA"):
        return image
    if mode in _SIXTEEN_BIT_MODES:
        return _eight_bit(image)
    has_alpha = mode in _ALPHA_MODES or "transparency" in image.info
    try:
        return image.convert("RGBA" if has_alpha else "RGB")
    except ValueError as exc:
        raise ImageInputError(
            f"Cannot convert an image in colour mode {mode!r} to RGB.", hint="Save it as an RGB PNG or JPEG."
        ) from exc


def _eight_bit(image: Image.Image) -> Image.Image:
    """A 16-bit, 32-bit integer or float grey image as 8-bit RGB (RGBA with its tRNS colour)."""
    values = np.asarray(image)
    if image.mode.startswith("I;16"):
        grey = (values.astype(np.uint32) + 128) // 257
    elif image.mode == "F" and np.nanmax(values) <= 1.0:
        grey = np.rint(np.nan_to_num(values) * 255)
    elif np.nanmax(values) > 255:
        grey = np.rint(np.clip(values, 0, 65535) / 257)
    else:
        grey = np.clip(np.nan_to_num(values), 0, 255)
    channel = grey.astype(np.uint8)
    transparent = image.info.get("transparency")
    if isinstance(transparent, int):
        alpha = np.where(values == transparent, 0, 255).astype(np.uint8)
        return Image.fromarray(np.dstack([channel, channel, channel, alpha]))
    return Image.fromarray(np.dstack([channel, channel, channel]))


def has_transparency(image: Image.Image) -> bool:
    """True when some pixel of ``image`` is not fully opaque."""
    if image.mode not in _ALPHA_MODES and "transparency" not in image.info:
        return False
    alpha = image.getchannel("A") if "A" in image.getbands() else image.convert("RGBA").getchannel("A")
    lowest, _ = cast(tuple[int, int], alpha.getextrema())
    return lowest < 255


# --- encoding ----------------------------------------------------------------------------------


def to_png(
    image: Image.Image, *, compress_level: int = 6, optimize: bool = False, text: dict[str, str] | None = None
) -> bytes:
    """PNG bytes of ``image``; ``text`` becomes tEXt chunks (metadata such as "Software")."""
    info = None
    if text:
        info = PngImagePlugin.PngInfo()
        for key, value in text.items():
            info.add_text(key, value)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=compress_level, optimize=optimize, pnginfo=info)
    return buffer.getvalue()


def encode(
    image: Image.Image, fmt: str = "png", quality: int | None = None, *, text: dict[str, str] | None = None
) -> bytes:
    """``image`` as PNG, JPEG or WebP bytes. ``quality`` (0-100) applies to JPEG and WebP.

    JPEG has no transparency: a transparent image is laid on white. For JPEG and WebP the
    "Software" entry of ``text`` goes into the EXIF block.
    """
    fmt = fmt.lower()
    if fmt == "png":
        return to_png(image, text=text)
    if fmt not in ("jpeg", "jpg", "webp"):
        raise ValueError(f"fmt must be 'png', 'jpeg' or 'webp', got {fmt!r}")
    options: dict[str, Any] = {"quality": 90 if quality is None else int(quality)}
    if text and "Software" in text:
        exif = Image.Exif()
        exif[ExifTags.Base.Software] = text["Software"]
        options["exif"] = exif
    if fmt == "webp":
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA")
        options["method"] = 4
    else:
        if image.mode != "RGB":
            image = _on_white(image)
        fmt = "jpeg"
    buffer = io.BytesIO()
    image.save(buffer, format=fmt.upper(), **options)
    return buffer.getvalue()


def mime_type(fmt: str) -> str:
    """The MIME type of an output format name (``png``, ``jpeg``, ``webp``, ``gif``, ``svg``)."""
    return MIME_BY_FORMAT.get(fmt.lower(), "image/png")


GIF_TRANSPARENT_INDEX = 255
"""The palette entry of transparent pixels in the GIFs made here (the other 255 hold colours)."""


def encode_gif(
    frames: Iterable[Image.Image], duration_ms: int | Sequence[int], *, loop: int = 0, comment: str = ""
) -> bytes:
    """An animated GIF of ``frames``, each shown ``duration_ms`` (one number, or one per frame).

    ``loop=0`` plays it forever. All frames share one palette of 255 colours, made from the first
    (fast, and colours do not flicker from frame to frame); in RGBA frames, pixels less than half
    opaque are transparent. Each frame is reduced to its palette as it comes, so ``frames`` may be
    a generator that draws them one at a time. GIF counts time in hundredths of a second, so
    durations are rounded down to tens of milliseconds. ``comment`` goes into a comment extension.
    """
    palette: Image.Image | None = None
    coded: list[Image.Image] = []
    transparent = False
    for frame in frames:
        if palette is None:
            palette = frame.convert("RGB").quantize(
                GIF_TRANSPARENT_INDEX, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE
            )
        indexed = frame.convert("RGB").quantize(palette=palette, dither=Image.Dither.NONE)
        if has_transparency(frame):
            transparent = True
            clear = frame.convert("RGBA").getchannel("A").point(lambda a: 255 if a < 128 else 0)
            indexed.paste(GIF_TRANSPARENT_INDEX, mask=clear)
        coded.append(indexed)
    if not coded:
        raise ValueError("A GIF needs at least one frame.")
    options: dict[str, Any] = {"save_all": True, "append_images": coded[1:], "loop": loop, "optimize": False}
    options["duration"] = duration_ms if isinstance(duration_ms, int) else list(duration_ms)
    if transparent:
        options.update(transparency=GIF_TRANSPARENT_INDEX, disposal=2)  # each frame on a clear canvas
    if comment:
        options["comment"] = comment.encode("utf-8")
    buffer = io.BytesIO()
    coded[0].save(buffer, format="GIF", **options)
    return buffer.getvalue()


MAX_ANIMATED_THUMBNAIL_FRAMES = 64
"""An animated GIF with more frames than this gets a still thumbnail (its first frame)."""

MAX_ANIMATED_THUMBNAIL_PIXELS = 64_000_000
"""The most pixels an animated thumbnail decodes (frames x the width and height of the canvas they
are drawn on); a GIF that would need more gets a still thumbnail (its first frame)."""


def animated_thumbnail(source: Any, max_side: int = 256) -> tuple[bytes, str] | None:
    """A small animated GIF of an animated GIF (its timing and looping kept), and its MIME type; None
    for anything else: a still picture, a damaged GIF, or one of more than
    ``MAX_ANIMATED_THUMBNAIL_FRAMES`` frames or ``MAX_ANIMATED_THUMBNAIL_PIXELS`` pixels to decode
    (counted from its blocks before any is decoded)."""
    if isinstance(source, (Image.Image, np.ndarray)):
        return None
    data = encoded_bytes(source)
    if data[:6] not in GIF_SIGNATURES:
        return None
    try:
        frames_in, (width, height) = gif_frames(data)
    except GifFormatError:
        return None  # the still thumbnail says what is wrong with it, or shows what can be read
    pixels = frames_in * width * height
    if not 1 < frames_in <= MAX_ANIMATED_THUMBNAIL_FRAMES or pixels > MAX_ANIMATED_THUMBNAIL_PIXELS:
        return None
    image = _open_lazy(data)
    if image.format != "GIF":
        return None
    frames, durations = [], []
    try:
        for frame in ImageSequence.Iterator(image):
            small = frame.convert("RGBA")
            small.thumbnail((max_side, max_side), Image.Resampling.BICUBIC, reducing_gap=1.0)
            frames.append(small)
            durations.append(int(frame.info.get("duration", 100)))
    except _READ_ERRORS as exc:
        raise _damaged(exc) from exc
    return encode_gif(frames, durations, loop=int(image.info.get("loop", 0))), "image/gif"


def _on_white(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


# --- preparing uploads -------------------------------------------------------------------------


def _check_fit(fit: str) -> None:
    if fit not in FITS:
        raise ValueError(f"fit must be 'crop' or 'pad', got {fit!r}")


def _square_box(width: int, height: int, fit: str) -> tuple[int, int, int]:
    """(side, x, y): the square's side and where the image's top-left corner lands in it (the mask
    module's square framing, so an image and its mask are squared alike)."""
    _check_fit(fit)
    framing = masks.square((width, height), fit)  # type: ignore[arg-type]
    return framing.size[0], int(framing.offset[0]), int(framing.offset[1])


def square(image: Image.Image, fit: str = "crop") -> Image.Image:
    """A square ``image``: its centre cropped (``fit="crop"``), or padded with transparent pixels."""
    width, height = image.size
    side, x, y = _square_box(width, height, fit)
    if width == height:
        return image
    if fit == "crop":
        return image.crop((-x, -y, -x + side, -y + side))
    canvas = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    canvas.paste(image.convert("RGBA"), (x, y))
    return canvas


def png_within(image: Image.Image, max_bytes: int = MAX_UPLOAD_BYTES) -> bytes:
    """PNG bytes of at most ``max_bytes``: compressed harder, then 256 colours, then scaled down."""
    data = to_png(image)
    if len(data) <= max_bytes:
        return data
    if len(data) <= max_bytes * 1.1:  # the hardest compression gains a few percent at most
        data = to_png(image, compress_level=9)
        if len(data) <= max_bytes:
            return data
    image = _fewer_colours(image)
    data = to_png(image)
    while len(data) > max_bytes:
        factor = max(0.5, min(0.95, math.sqrt(max_bytes / len(data)) * 0.95))
        width, height = image.size
        if min(width, height) * factor < 16:
            raise ImageInputError(
                f"Cannot make a PNG of at most {max_bytes} bytes from this image.",
                hint="Use a smaller or simpler image.",
            )
        image = image.resize((round(width * factor), round(height * factor)), Image.Resampling.LANCZOS)
        data = to_png(image)
    return data


def _fewer_colours(image: Image.Image) -> Image.Image:
    """``image`` reduced to 256 colours, its alpha channel kept exactly (masks depend on it)."""
    rgb = image.convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE).convert("RGB")
    if "A" in image.getbands():
        rgb.putalpha(image.getchannel("A"))
    return rgb


def prepare_square_png(
    source: Any, size: int = 1024, fit: str = "crop", max_bytes: int = MAX_UPLOAD_BYTES
) -> bytes:
    """A square RGBA PNG of ``size`` pixels a side, at most ``max_bytes`` long (dall-e-2 inputs)."""
    image = square(open_image(source).convert("RGBA"), fit)
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.LANCZOS)
    return png_within(image, max_bytes)


def _square_side(spec: ModelSpec, size: str | None) -> int:
    for candidate in (size, spec.default_size):
        try:
            width, height = parse_size(candidate or "")
        except ValueError:
            continue
        if width == height:
            return width
    return 1024


def _is_valid_upload(image: InputImage, spec: ModelSpec) -> bool:
    if not image.data or len(image.data) > spec.max_input_bytes:
        return False
    if sniff_mime_type(image.data) not in spec.input_mime_types:
        return False
    if spec.needs_square_png_input:
        try:
            width, height = image_size(image.data)
        except ImageInputError:
            return False
        return width == height
    return True


def _orientation(data: bytes, image: Image.Image) -> int | None:
    """The EXIF orientation of an encoded image, read without decoding its pixels (1: upright;
    None when the EXIF block is broken)."""
    try:
        if data.startswith(PNG_SIGNATURE):  # a PNG's EXIF, rare, is its own chunk, often after the pixels
            for chunk in png_chunks_of(data):
                if chunk.type == b"eXIf":
                    exif = Image.Exif()
                    exif.load(data[chunk.offset : chunk.end])
                    return int(exif.get(ExifTags.Base.Orientation, 1))
            return 1
        return int(image.getexif().get(ExifTags.Base.Orientation, 1))  # JPEG, WebP: in the header
    except Exception:  # a broken EXIF block is no reason to refuse the picture; it is re-encoded
        return None


def _verify(data: bytes) -> None:
    """Check that a file is whole without decoding its pixels (a PNG's chunks and their checksums)."""
    image = _open_lazy(data)
    try:
        image.verify()
    except _READ_ERRORS as exc:
        raise _damaged(exc) from None


def _keeps_original(data: bytes, spec: ModelSpec, image: Image.Image) -> bool:
    """Whether the file can be uploaded as it is: an accepted type, small enough, plain colours, upright."""
    if sniff_mime_type(data) not in spec.input_mime_types or len(data) > spec.max_input_bytes:
        return False
    if image.mode not in ("RGB", "RGBA", "L", "LA", "P"):
        return False
    return _orientation(data, image) in (0, 1)


def _is_rgba8_png(data: bytes, size: tuple[int, int]) -> bool:
    """Whether ``data`` is an 8-bit RGBA PNG of ``size``, by its header alone."""
    return len(data) > 25 and data[24] == 8 and data[25] == 6 and _png_header_size(data) == size


def _is_square_upload(data: bytes, spec: ModelSpec, side: int) -> bool:
    """Whether a file already is dall-e-2's input: an 8-bit RGBA PNG, ``side`` pixels square, small enough."""
    return _is_rgba8_png(data, (side, side)) and len(data) <= spec.max_input_bytes


def prepare_input_image(
    source: Any, spec: ModelSpec, *, size: str | None = None, fit: str = "crop"
) -> InputImage:
    """An image file the model accepts, made from any source :func:`open_image` reads.

    For dall-e-2: a square RGBA PNG ``size`` pixels a side (``"512x512"``; the model's default
    size otherwise), cropped or padded by ``fit``, under the model's byte limit. For the other
    models the original file is kept when it is a PNG, JPEG or WebP the model accepts, small
    enough and upright; anything else is converted to PNG (scaled down if still too large).
    An :class:`InputImage` that is already valid for the model is returned unchanged.
    """
    _check_fit(fit)
    if isinstance(source, InputImage) and _is_valid_upload(source, spec):
        return source
    stem = Path(source_name(source)).stem or "image"
    encoded = not isinstance(source, (Image.Image, np.ndarray))
    raw = encoded_bytes(source) if encoded else b""
    if spec.needs_square_png_input:
        side = _square_side(spec, size)
        if encoded and _is_square_upload(raw, spec, side):
            _verify(raw)  # already what the model takes: sent untouched, once known to be whole
            return InputImage(data=raw, filename=f"{stem}.png", mime_type="image/png")
        data = prepare_square_png(raw if encoded else source, side, fit, spec.max_input_bytes)
        return InputImage(data=data, filename=f"{stem}.png", mime_type="image/png")
    if not encoded:
        image = open_image(source)
    else:
        lazy = _open_lazy(raw)
        if _keeps_original(raw, spec, lazy):
            _verify(raw)  # a damaged file fails now, not at the server
            return InputImage.from_bytes(raw, stem)
        image = normalize_mode(upright(_load(lazy)))
    data = png_within(image, spec.max_input_bytes)
    return InputImage(data=data, filename=f"{stem}.png", mime_type="image/png")


# --- masks (what they mean, and their framing, is :mod:`ipyimagegen.masks`'s) ----------------------


def read_mask(source: Any, convention: masks.Convention = "auto") -> np.ndarray:
    """The marked pixels (``True`` = regenerate) of any mask source: an array, or an image file,
    PIL image or upload read by :func:`open_image` (see :func:`ipyimagegen.masks.from_image`)."""
    if isinstance(source, InputImage):
        source = source.data
    if isinstance(source, np.ndarray) and (source.ndim == 2 or convention == "auto"):
        return masks.from_array(source)
    try:
        return masks.from_image(
            open_image(source) if not isinstance(source, Image.Image) else source, convention
        )
    except masks.MaskError as exc:
        raise ImageInputError(
            str(exc), hint="Paint the mask here, or import one made for this image."
        ) from None


def _source_size(source: Any) -> tuple[int, int] | None:
    if isinstance(source, np.ndarray):
        return source.shape[1], source.shape[0]
    try:
        if hasattr(source, "seek"):
            source.seek(0)  # prepare_input_image has read the file already
        return open_image(source).size
    except (ImageInputError, OSError):
        return None


def _is_api_mask(data: bytes, size: tuple[int, int], convention: masks.Convention = "auto") -> bool:
    """Whether a mask file is sent as it is, as the official client sends it: a whole 8-bit RGBA PNG
    of ``size``, known from its header and chunks alone (its pixels are never decoded here).

    Its alpha means to the Images API what it means to ipyimagegen (alpha 0 regenerates; a soft
    edge's 1 to 254 keep their pixels), so nothing is gained by rewriting it; the engines that use
    the mask decode it when they run. Other files (another size, no alpha channel, grey and alpha,
    16 bits, a palette, JPEG...) and ``convention="white"`` are read and converted by the caller.
    """
    if convention == "white" or not _is_rgba8_png(data, size):
        return False
    try:
        _verify(data)  # chunks and checksums: a damaged file goes to read_mask, which says what is wrong
    except ImageInputError:
        return False
    return True


def input_framing(source_size: tuple[int, int], spec: ModelSpec, size: str | None, fit: str) -> masks.Framing:
    """How :func:`prepare_input_image` frames a picture of ``source_size`` for ``spec`` (before any
    shrinking to fit the byte limit): a square cropped or padded and scaled, or the picture as it is."""
    _check_fit(fit)
    if not spec.needs_square_png_input:
        return masks.identity(source_size)
    side = _square_side(spec, size)
    squared = masks.square(source_size, fit)  # type: ignore[arg-type]
    return squared.then(masks.scale_to(squared.size, (side, side)))


def prepare_mask(
    mask: Any,
    image: InputImage,
    *,
    source: Any = None,
    fit: str = "crop",
    convention: masks.Convention = "auto",
) -> InputImage:
    """A mask PNG for ``image``: RGBA, the image's size, alpha 0 exactly where to regenerate.

    ``mask`` is a boolean/uint8 array (True or nonzero = regenerate), or a mask image: alpha 0
    marks the area to regenerate, or, in an image with no transparency, white does (``convention``
    says which). A mask the size of ``source`` (the image before :func:`prepare_input_image`) is
    cropped or padded and scaled as the image was; a mask of another size is scaled to the image.
    A mask file in the API's form (an 8-bit RGBA PNG the image's size) is sent as it is, its pixels
    never decoded, as the official client sends it: it is read by its alpha, as the API reads it
    (with ``convention="white"`` it is read as black and white and converted).
    """
    _check_fit(fit)
    raw = mask.data if isinstance(mask, InputImage) else mask
    target = image_size(image.data)
    if isinstance(raw, (bytes, bytearray)) and _is_api_mask(bytes(raw), target, convention):
        return InputImage(data=bytes(raw), filename="mask.png", mime_type="image/png")
    marked = read_mask(raw, convention)
    mask_size = masks.size_of(marked)
    framing = masks.identity(mask_size)
    image_was_squared = target[0] == target[1] and mask_size[0] != mask_size[1]
    if image_was_squared and source is not None and _source_size(source) == mask_size:
        framing = masks.square(mask_size, fit)  # type: ignore[arg-type]
    if framing.size != target:
        framing = framing.then(masks.scale_to(framing.size, target))
    return InputImage(data=masks.to_png(framing.mask(marked)), filename="mask.png", mime_type="image/png")


def outpaint_frame(
    source: Any,
    frame_size: tuple[int, int] | int,
    scale: float = 1.0,
    offset: tuple[int, int] | None = None,
) -> tuple[Image.Image, np.ndarray]:
    """The image (scaled by ``scale``) placed in a larger transparent frame, and the mask to fill.

    ``frame_size`` is (width, height) or one side of a square; ``offset`` is where the image's
    top-left corner goes (centred when None). The mask is ``True`` on the empty border.
    """
    frame = (frame_size, frame_size) if isinstance(frame_size, int) else frame_size
    image = open_image(source)
    try:
        framing = masks.outpaint(image.size, frame, scale, offset)
    except masks.MaskError as exc:
        raise ImageInputError(str(exc), hint=exc.hint or None) from None
    return framing.image(image), framing.border()


# --- edits: the picture sent, and a result beside it ------------------------------------------------


@dataclass(frozen=True)
class PreparedEdit:
    """What an edit sends: the image file, the picture it shows (the file decoded), how the loaded
    picture was framed into that picture (crop, pad, scale, an outpainting frame), the outpainting
    border to fill (None without a frame) and a note that says what was done."""

    input: InputImage
    picture: Image.Image = field(repr=False)
    framing: masks.Framing
    border: np.ndarray | None = field(repr=False)
    note: str


def prepare_edit_input(
    source: Any,
    image: Image.Image,
    spec: ModelSpec,
    size: str | None,
    fit: str,
    outpaint: masks.Placement | None = None,
) -> PreparedEdit:
    """The file to send for a loaded picture (``source``: its file as an :class:`InputImage`, or the
    picture; ``image``: the picture decoded), placed in an outpainting frame when ``outpaint`` says where."""
    original = image.size
    outpainting = None
    if outpaint is not None:
        try:
            outpainting = outpaint.framing(original)
        except masks.MaskError as exc:
            raise ImageInputError(str(exc), hint=exc.hint or None) from None
        framed = outpainting.image(image)
        prepared = prepare_input_image(framed, spec, size=size, fit=fit)
        framing = outpainting.then(input_framing(framed.size, spec, size, fit))
        frame = outpaint.frame
        note = f"the image at {outpaint.scale:.0%} of a {frame[0]}×{frame[1]} frame; the border is to fill"
    else:
        prepared = prepare_input_image(source, spec, size=size, fit=fit)
        framing = input_framing(original, spec, size, fit)
        as_it_is = isinstance(source, InputImage) and prepared.data == source.data
        note = "the file as it is" if as_it_is else "encoded as " + prepared.mime_type[6:].upper()
    picture = open_image(prepared.data)
    if framing.size != picture.size:  # shrunk to fit the model's byte limit
        framing = framing.then(masks.scale_to(framing.size, picture.size))
    if outpainting is None and spec.needs_square_png_input and original[0] != original[1]:
        note = f"{'cropped' if fit == 'crop' else 'padded'} to a square from {original[0]}×{original[1]}"
    elif outpainting is None and picture.size != original:
        note = f"scaled from {original[0]}×{original[1]}"
    border = framing.border() if outpainting is not None else None
    return PreparedEdit(prepared, picture, framing, border, note)


ANIMATED_OR_VECTOR = ("image/gif", "image/svg+xml")
"""Results the original is not pasted back into (a GIF's frames, an SVG's shapes would be lost)."""


@dataclass(frozen=True)
class OutsideMask:
    """An edit's result beside its original, outside the mask: the share of those pixels the model
    changed, and the result with the original put back there (None when that was not asked for, or
    the whole picture was marked)."""

    changed: float
    data: bytes | None = field(default=None, repr=False)


def outside_mask(
    original: Image.Image,
    data: bytes,
    mime_type: str,
    mask: np.ndarray,
    feather: float = 0.0,
    put_back: bool = True,
) -> OutsideMask | None:
    """How much an edit's result (the file ``data``) changed ``original`` outside ``mask`` and, with
    ``put_back``, the result with the original's pixels back there, blended over ``feather`` pixels
    and saved in the result's own format. None when the two cannot be compared pixel for pixel: an
    animated or vector result (:data:`ANIMATED_OR_VECTOR`), or one of another shape."""
    if mime_type in ANIMATED_OR_VECTOR:
        return None
    edited = Image.open(io.BytesIO(data))
    edited.load()
    if not same_shape(original.size, edited.size):
        return None
    changed = masks.changed_outside(original, edited, mask, margin=2 * feather + 2)
    if not put_back or bool(np.all(mask)):
        return OutsideMask(changed)
    return OutsideMask(changed, encode_like(masks.paste_back(original, edited, mask, feather), mime_type))


def same_shape(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Whether two sizes have the same width to height ratio (within 1%)."""
    return abs(a[0] * b[1] - a[1] * b[0]) <= 0.01 * a[0] * b[1]


def encode_like(image: Image.Image, mime_type: str) -> bytes:
    """``image`` as a file of the given type (PNG, JPEG or WebP, as the model sent it)."""
    buffer = io.BytesIO()
    if mime_type == "image/jpeg":
        image.convert("RGB").save(buffer, format="JPEG", quality=95)
    elif mime_type == "image/webp":
        image.save(buffer, format="WEBP", quality=95)
    else:
        image.save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


# --- display -----------------------------------------------------------------------------------


FAST_PNG_DECODE = True
"""Decode plain 8-bit RGB/RGBA PNGs for thumbnails with imagecodecs (libpng) when the ``fast`` extra
is installed: the same pixels as Pillow's, in about half the time. Other files go to Pillow."""


@functools.cache
def _png_decoder() -> Callable[[bytes], np.ndarray] | None:
    try:
        from imagecodecs import png_decode
    except ImportError:
        return None
    return png_decode  # type: ignore[no-any-return]


def _fast_png(data: bytes) -> Image.Image | None:
    """``data`` decoded by the fast PNG decoder, or None where Pillow must do it: the decoder is
    not installed, or the file is not a plain 8-bit RGB/RGBA PNG (palettes, 16 bits, a tRNS
    transparency colour, an EXIF orientation and animations stay with Pillow)."""
    decode = _png_decoder() if FAST_PNG_DECODE else None
    if decode is None or len(data) < 26 or not data.startswith(PNG_SIGNATURE):
        return None
    if data[24] != 8 or data[25] not in (2, 6) or data[28] != 0:  # bit depth, colour type, interlace
        return None
    if any(chunk.type in (b"tRNS", b"eXIf", b"acTL") for chunk in png_chunks_of(data)):
        return None
    header = _png_header_size(data)
    if header is None:
        return None
    _check_pixels(*header)
    try:
        pixels = decode(data)
    except Exception:  # Pillow reads it, or says clearly why not
        return None
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
        return None
    return Image.fromarray(pixels, "RGB" if pixels.shape[2] == 3 else "RGBA")


def thumbnail(source: Any, max_side: int = 256) -> tuple[bytes, str]:
    """Small display bytes and their MIME type: JPEG for opaque images, WebP (PNG) with transparency.

    An animated GIF gives its first frame (:func:`animated_thumbnail` gives all of them). An SVG
    drawing gives a raster copy (or, where it cannot be drawn, a card that says "SVG" and its size):
    its markup never reaches the page.
    """
    if isinstance(source, (Image.Image, np.ndarray)):
        image = open_image(source)
    else:
        data = encoded_bytes(source)
        if svg.is_svg(data):
            image = svg.picture(data, max_side)
        else:
            image = _fast_png(data) or _decode(data, draft=(max_side, max_side))
    # A box reduce by the whole factor, then bicubic for what is left: at thumbnail size it looks
    # the same as a gap of 2 (a mean difference of about 1/255) at a quarter of the time.
    image.thumbnail((max_side, max_side), Image.Resampling.BICUBIC, reducing_gap=1.0)
    if has_transparency(image):
        from PIL import features

        if features.check("webp"):
            return encode(image, "webp", 85), "image/webp"
        return to_png(image), "image/png"
    return encode(image.convert("RGB"), "jpeg", 85), "image/jpeg"


def b64encode(data: bytes) -> str:
    """Base64 text of some bytes (as the API's ``b64_json``)."""
    return base64.b64encode(bytes(data)).decode("ascii")


def b64decode(text: str | bytes) -> bytes:
    """The bytes of base64 text, or of a ``data:...;base64,`` URL."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    text = text.strip()
    if text.startswith("data:"):
        header, comma, payload = text.partition(",")
        if not comma or not header.endswith(";base64"):
            raise ImageInputError(
                "This data: URL is not base64-encoded.", hint="Use a 'data:image/png;base64,...' URL."
            )
        text = payload
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageInputError(
            f"The text is not valid base64 ({exc}).", hint="Check the copied text."
        ) from exc


def prepare_markup(markup: Any, image: InputImage) -> InputImage:
    """A markup PNG for ``image`` (GPT Image 2.5 and later): drawings over transparency, the image's size."""
    overlay = open_image(markup).convert("RGBA")
    target = image_size(image.data)
    if overlay.size != target:
        overlay = overlay.resize(target, Image.Resampling.LANCZOS)
    return InputImage(data=to_png(overlay), filename="markup.png", mime_type="image/png")
