"""What a mask means, how masks are read and written, and how an image and its mask are framed together.

**Marked for regeneration** means, everywhere in ipyimagegen:

- in a mask array: ``True`` (a boolean ``height x width`` array at the image's resolution);
- in a mask PNG: alpha 0, fully transparent, as the Images API defines it; any other alpha
  (a soft edge's 1 to 254 included) keeps the pixel (:data:`MARKED_BELOW_ALPHA`);
- in a black-and-white mask (the AUTOMATIC1111 and Gradio convention): white, a luma of at
  least :data:`WHITE_FROM_LUMA`.

A :class:`Framing` says how a source picture lands in a framed one (cropped or padded to a
square, scaled, placed in a larger outpainting frame). It maps the image and its mask with one
geometry, so a painted mask stays on the pixels it was painted on when the framing changes.
A :class:`Placement` says where a picture sits in an outpainting frame, and :func:`extend` where
it goes when the frame grows towards some sides.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, PngImagePlugin

from .errors import ImageInputError

MARKED_BELOW_ALPHA = 1
"""A mask PNG's pixel is marked for regeneration when its alpha is below this (that is, 0)."""

WHITE_FROM_LUMA = 128
"""A black-and-white mask's pixel is marked when its luma is at least this (white means edit)."""

Convention = Literal["auto", "alpha", "white"]
Fit = Literal["crop", "pad"]
Size = tuple[int, int]  # (width, height)


class MaskError(ImageInputError):
    """A mask or framing that cannot be used (``param="mask"``): the message says what happened,
    ``hint`` what to do. One of the package's errors, so it reaches callers with its hint."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(
            message, param="mask", hint=hint or "Paint the mask, or use one made for this image."
        )


# -- reading and writing --------------------------------------------------------------------------


def from_array(array: np.ndarray) -> np.ndarray:
    """A boolean mask from an array: ``HxW`` (True, nonzero or above 0.5 = marked) or ``HxWx4`` RGBA (alpha 0)."""
    array = np.asarray(array)
    if array.ndim == 2:
        if array.dtype == bool:
            copied: np.ndarray = array.copy()
            return copied
        if np.issubdtype(array.dtype, np.floating):
            return array > 0.5
        result: np.ndarray = array != 0
        return result
    if array.ndim == 3 and array.shape[2] == 4:
        return np.asarray(array[..., 3]) < MARKED_BELOW_ALPHA
    if array.ndim == 3 and array.shape[2] == 3:  # black and white, read as the same mask as an RGB PNG
        if array.dtype == bool or np.issubdtype(array.dtype, np.floating):  # True or 1.0 is white
            array = array.astype(np.float32) * 255
        pixels = np.clip(array, 0, 255).astype(np.uint8)
        return from_image(Image.fromarray(pixels, "RGB"), "white")
    raise MaskError(
        f"A mask array must be HxW (True or nonzero = regenerate), HxWx3 black and white (white = "
        f"regenerate) or HxWx4 RGBA (alpha 0 = regenerate); this one is {array.shape}."
    )


def _has_transparency(image: Image.Image) -> bool:
    if "A" not in image.getbands() and "transparency" not in image.info:
        return False
    extrema = image.convert("RGBA").getchannel("A").getextrema()
    return bool(isinstance(extrema[0], (int, float)) and extrema[0] < 255)


def from_image(image: Image.Image, convention: Convention = "auto") -> np.ndarray:
    """The marked pixels of a mask image.

    ``"alpha"``: fully transparent pixels (the Images API's masks). ``"white"``: white pixels
    (black-and-white masks). ``"auto"``: alpha when the image has any transparency, else white.
    """
    if convention not in ("auto", "alpha", "white"):
        raise MaskError(f"convention must be 'auto', 'alpha' or 'white', got {convention!r}.")
    if convention == "auto":
        convention = "alpha" if _has_transparency(image) else "white"
    if convention == "alpha":
        if "A" not in image.getbands() and "transparency" not in image.info:
            raise MaskError(
                "The mask has no alpha channel, so it marks nothing to regenerate: make the area to "
                "regenerate transparent (alpha 0), or read it as a black-and-white mask (white = edit)."
            )
        alpha = image.getchannel("A") if image.mode == "RGBA" else image.convert("RGBA").getchannel("A")
        return np.asarray(alpha) < MARKED_BELOW_ALPHA
    return np.asarray(image.convert("L")) >= WHITE_FROM_LUMA


MADE_BY_KEY, MADE_BY = "Software", "ipyimagegen mask"
"""The text chunk :func:`to_png` writes: each of its pixels is fully transparent or fully opaque."""
MASK_COMPRESS_LEVEL = 3
"""zlib level of mask files: half level 6's time; the files are about 3 times larger, still a few
tens of KB at 1024² (a mask is mostly one value), far under any upload limit."""


def to_png(mask: np.ndarray) -> bytes:
    """The Images API's mask file: an RGBA PNG, alpha 0 where marked and 255 elsewhere."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise MaskError(f"A mask array must be 2-D (height x width), got shape {mask.shape}.")
    rgba = np.zeros((*mask.shape, 4), dtype=np.uint8)
    rgba[..., 3] = np.where(mask.astype(bool), 0, 255)
    buffer = io.BytesIO()
    made_by = PngImagePlugin.PngInfo()
    made_by.add_text(MADE_BY_KEY, MADE_BY)  # names the maker, as image editors do
    Image.fromarray(rgba).save(buffer, format="PNG", compress_level=MASK_COMPRESS_LEVEL, pnginfo=made_by)
    return buffer.getvalue()


def size_of(mask: np.ndarray) -> Size:
    """``(width, height)`` of a mask array."""
    return (int(mask.shape[1]), int(mask.shape[0]))


def marked_fraction(mask: np.ndarray) -> float:
    """The share of pixels marked, from 0 to 1."""
    return float(np.count_nonzero(mask)) / mask.size if mask.size else 0.0


def resize(mask: np.ndarray, size: Size, rule: Literal["nearest", "any"] = "nearest") -> np.ndarray:
    """``mask`` at ``size`` (width, height): the one way masks change size.

    ``"nearest"``: each pixel takes its nearest source pixel. ``"any"``: a pixel is marked when any
    source pixel under it is (shrinking never loses a thin stroke; for a model's working size).
    """
    mask = np.asarray(mask, dtype=bool)
    if size_of(mask) == size:
        result: np.ndarray = mask.copy()
        return result
    if rule == "any":
        return coverage(mask, size) > 0
    return scale_to(size_of(mask), size).mask(mask)


def coverage(mask: np.ndarray, size: Size) -> np.ndarray:
    """For display: the share of marked pixels under each pixel of a smaller view, as uint8 (0-255)."""
    levels = Image.fromarray(np.asarray(mask, dtype=bool).view(np.uint8) * np.uint8(255), mode="L")
    if levels.size != size:
        levels = levels.resize(size, Image.Resampling.BOX)
    return np.asarray(levels)


# -- the painter's strokes (image pixel coordinates: pixel (row, col) covers [col, col + 1) x [row, row + 1)
# and counts as painted when its centre is inside the shape) --------------------------------------

#: A region of the mask as half-open ranges: rows ``y0:y1``, columns ``x0:x1``.
BBox = tuple[int, int, int, int]

#: The smallest brush radius: any point then covers at least one pixel centre.
_MIN_RADIUS = math.sqrt(0.5)


def union_box(a: BBox | None, b: BBox | None) -> BBox | None:
    """The smallest region holding both (either may be None: nothing)."""
    if a is None:
        return b
    if b is None:
        return a
    return (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))


def paint_segment(
    mask: np.ndarray, x0: float, y0: float, x1: float, y1: float, radius: float, value: bool = True
) -> BBox | None:
    """Paint a thick line with round ends from ``(x0, y0)`` to ``(x1, y1)`` into ``mask``.

    Every pixel whose centre lies within ``radius`` of the segment is set to ``value``. Only the
    segment's bounding box is computed, so a short segment costs little on a large mask.
    Returns the bounding box that was visited, or ``None`` when the segment misses the mask.
    """
    height, width = mask.shape
    radius = max(float(radius), _MIN_RADIUS)
    col0 = max(math.floor(min(x0, x1) - radius), 0)
    col1 = min(math.ceil(max(x0, x1) + radius) + 1, width)
    row0 = max(math.floor(min(y0, y1) - radius), 0)
    row1 = min(math.ceil(max(y0, y1) + radius) + 1, height)
    if col0 >= col1 or row0 >= row1:
        return None

    if (col1 - col0) * (row1 - row0) > SPAN_FROM_PIXELS:  # a big brush: row by row, from the shape
        _paint_capsule_rows(mask, (x0, y0, x1, y1), radius, (row0, row1, col0, col1), value)
        return (row0, row1, col0, col1)

    px = np.arange(col0, col1, dtype=np.float32)[np.newaxis, :] + np.float32(0.5 - x0)
    py = np.arange(row0, row1, dtype=np.float32)[:, np.newaxis] + np.float32(0.5 - y0)
    dx, dy = np.float32(x1 - x0), np.float32(y1 - y0)
    length2 = dx * dx + dy * dy
    if length2 > 0:
        t = np.clip((px * dx + py * dy) / length2, 0.0, 1.0)
        px = px - t * dx
        py = py - t * dy
    hit = px * px + py * py <= np.float32(radius * radius)

    region = mask[row0:row1, col0:col1]
    if value:
        region |= hit
    else:
        region &= ~hit
    return (row0, row1, col0, col1)


SPAN_FROM_PIXELS = 65_536
"""A segment whose box has more pixels than this is painted row by row (see :func:`_capsule_spans`)."""


def _capsule_spans(
    segment: tuple[float, float, float, float], radius: float, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Where each row's pixel centres (``y = row + 0.5``) cross the thick line: ``(left, right)`` x
    bounds (left > right where a row misses it). The shape is convex, so a row crosses it in one
    interval: the union of its two end discs and the band between them."""
    x0, y0, x1, y1 = segment
    centre = rows.astype(np.float64) + 0.5
    lefts, rights = [], []
    for cx, cy in ((x0, y0), (x1, y1)):  # the round ends
        half = np.sqrt(np.maximum(radius * radius - (centre - cy) ** 2, 0.0))
        inside = np.abs(centre - cy) <= radius
        lefts.append(np.where(inside, cx - half, np.inf))
        rights.append(np.where(inside, cx + half, -np.inf))
    length = math.hypot(x1 - x0, y1 - y0)
    if length > 0:  # the band: 0 <= along <= length and |across| <= radius, for x on the row
        ux, uy = (x1 - x0) / length, (y1 - y0) / length
        low, high = np.full_like(centre, -np.inf), np.full_like(centre, np.inf)
        for slope, offset, lo, hi in (
            (ux, (centre - y0) * uy - x0 * ux, 0.0, length),  # along = x*ux + offset
            (-uy, (centre - y0) * ux + x0 * uy, -radius, radius),  # across = -x*uy + offset
        ):
            if abs(slope) < 1e-12:
                fits = (offset >= lo) & (offset <= hi)
                low, high = np.where(fits, low, np.inf), np.where(fits, high, -np.inf)
            else:
                a, b = (lo - offset) / slope, (hi - offset) / slope
                low, high = np.maximum(low, np.minimum(a, b)), np.minimum(high, np.maximum(a, b))
        crossed = low <= high  # an empty interval must not widen the others
        lefts.append(np.where(crossed, low, np.inf))
        rights.append(np.where(crossed, high, -np.inf))
    return np.minimum.reduce(lefts), np.maximum.reduce(rights)


def _paint_capsule_rows(
    mask: np.ndarray, segment: tuple[float, float, float, float], radius: float, box: BBox, value: bool
) -> None:
    """Paint a thick line row by row: each row's pixels whose centres are within ``radius`` of it."""
    row0, row1, col0, col1 = box
    left, right = _capsule_spans(segment, radius, np.arange(row0, row1))
    first = np.maximum(np.ceil(left - 0.5), col0)
    last = np.minimum(np.floor(right - 0.5) + 1, col1)
    for row, start, stop in zip(range(row0, row1), first.tolist(), last.tolist(), strict=True):
        if start < stop:
            mask[row, int(start) : int(stop)] = value


def paint_rect(
    mask: np.ndarray, x0: float, y0: float, x1: float, y1: float, value: bool = True
) -> BBox | None:
    """Set the pixels whose centres lie in the rectangle with corners ``(x0, y0)``, ``(x1, y1)``.

    Returns the painted bounding box, or ``None`` when no pixel centre is inside.
    """
    height, width = mask.shape
    col0 = max(math.ceil(min(x0, x1) - 0.5), 0)
    col1 = min(math.floor(max(x0, x1) - 0.5) + 1, width)
    row0 = max(math.ceil(min(y0, y1) - 0.5), 0)
    row1 = min(math.floor(max(y0, y1) - 0.5) + 1, height)
    if col0 >= col1 or row0 >= row1:
        return None
    mask[row0:row1, col0:col1] = value
    return (row0, row1, col0, col1)


# -- selecting by colour, soft edges and putting the original back ----------------------------------

MAX_TOLERANCE = 255
CHANGED_FROM = 24
"""A pixel counts as changed when one of its channels moved by more than this (of 255): more than
the noise of JPEG or WebP output."""


def select_colour(
    pixels: np.ndarray, x: float, y: float, tolerance: int, contiguous: bool = True
) -> np.ndarray:
    """The magic wand: pixels whose colour is within ``tolerance`` of the one at ``(x, y)``.

    ``pixels`` is ``HxW`` or ``HxWxC`` uint8; a colour is within tolerance when no channel differs
    by more. ``contiguous``: only the area joined to the clicked pixel (4-neighbours), else all
    such pixels. Returns a bool array of the picture's shape (all False outside the picture).
    """
    from scipy import ndimage  # imported here: only the wand needs it

    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = pixels[..., np.newaxis]
    height, width = pixels.shape[:2]
    col, row = math.floor(x), math.floor(y)
    if not (0 <= col < width and 0 <= row < height):
        return np.zeros((height, width), dtype=bool)
    tolerance = min(max(int(tolerance), 0), MAX_TOLERANCE)
    seed = pixels[row, col].astype(np.int16)
    close = np.ones((height, width), dtype=bool)
    for channel in range(pixels.shape[2]):
        close &= np.abs(pixels[..., channel].astype(np.int16) - seed[channel]) <= tolerance
    if not contiguous:
        return close
    labels, _count = ndimage.label(close)
    result: np.ndarray = labels == labels[row, col]
    return result


def soften(mask: np.ndarray, feather: float) -> np.ndarray:
    """The mask with a soft edge: float32 from 0 (keep) to 1 (regenerate), blurred by ``feather``
    pixels (a Gaussian's standard deviation, as CSS ``blur()`` and Pillow's ``GaussianBlur`` take it)."""
    levels = np.asarray(mask, dtype=bool).view(np.uint8) * np.uint8(255)
    if feather > 0:
        from PIL import ImageFilter

        levels = np.asarray(Image.fromarray(levels, mode="L").filter(ImageFilter.GaussianBlur(feather)))
    result: np.ndarray = levels.astype(np.float32) / 255.0
    return result


def _as_rgba(image: Image.Image, size: Size) -> np.ndarray:
    image = image.convert("RGBA")
    if image.size != size:
        image = image.resize(size, Image.Resampling.LANCZOS)
    return np.asarray(image)


def changed_outside(
    original: Image.Image, edited: Image.Image, mask: np.ndarray, margin: float = 2.0
) -> float:
    """The share of the pixels outside the mask that the edit changed (see :data:`CHANGED_FROM`), 0 to 1.

    ``original`` and ``mask`` are scaled to the edited picture's size; pixels within ``margin``
    of the mask are left out (scaling blurs the edge).
    """
    size = edited.size
    before = _as_rgba(original, size).astype(np.int16)
    after = _as_rgba(edited, size).astype(np.int16)
    marked = resize(mask, size, rule="any")
    if margin > 0:
        marked = soften(marked, margin) > 0.02
    outside = ~marked & (before[..., 3] > 0)  # transparent padding is not part of the picture
    total = int(np.count_nonzero(outside))
    if not total:
        return 0.0
    moved = (np.abs(after - before)[..., :3].max(axis=2) > CHANGED_FROM) & outside
    return float(np.count_nonzero(moved)) / total


def paste_back(
    original: Image.Image, edited: Image.Image, mask: np.ndarray, feather: float = 0.0
) -> Image.Image:
    """The edited picture with the original's pixels put back outside the mask, the edge blended
    over ``feather`` pixels. ``original`` and ``mask`` are scaled to the edited picture's size;
    where the original is transparent (padding, an outpainting border) the edit is kept."""
    size = edited.size
    before = _as_rgba(original, size).astype(np.float32)
    after = _as_rgba(edited, size).astype(np.float32)
    weight = soften(resize(mask, size), feather)
    weight = np.maximum(weight, 1.0 - before[..., 3] / 255.0)[..., np.newaxis]
    blended = after * weight + before * (1.0 - weight)
    result = Image.fromarray(np.clip(blended + 0.5, 0, 255).astype(np.uint8), mode="RGBA")
    if edited.mode != "RGBA":
        return result.convert(edited.mode if edited.mode in ("RGB", "L") else "RGB")
    return result


# -- framing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Framing:
    """A source picture of ``source_size`` scaled by ``scale`` with its top-left corner at ``offset``
    in a picture of ``size``. Pixels of the frame that no source pixel covers are the border."""

    source_size: Size
    size: Size
    scale: tuple[float, float] = (1.0, 1.0)
    offset: tuple[float, float] = (0.0, 0.0)

    def then(self, after: Framing) -> Framing:
        """This framing followed by ``after`` (whose source is this one's frame)."""
        if after.source_size != self.size:
            raise ValueError(f"cannot chain a framing of {self.size} into one of {after.source_size}")
        sx, sy = self.scale
        ax, ay = after.scale
        return Framing(
            self.source_size,
            after.size,
            (sx * ax, sy * ay),
            (self.offset[0] * ax + after.offset[0], self.offset[1] * ay + after.offset[1]),
        )

    def inverse(self) -> Framing:
        """The framing that takes this one's frame back to its source."""
        sx, sy = self.scale
        return Framing(
            self.size, self.source_size, (1 / sx, 1 / sy), (-self.offset[0] / sx, -self.offset[1] / sy)
        )

    def source_box(self) -> tuple[float, float, float, float]:
        """Where the source picture lies in the frame: left, top, width and height in frame pixels."""
        width, height = self.source_size
        return (self.offset[0], self.offset[1], width * self.scale[0], height * self.scale[1])

    @property
    def is_identity(self) -> bool:
        return self.source_size == self.size and self.scale == (1.0, 1.0) and self.offset == (0.0, 0.0)

    def _source_indices(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """For each frame column and row, the source column and row it shows, and whether there is one."""
        width, height = self.size
        src_w, src_h = self.source_size
        cols = np.floor((np.arange(width) + 0.5 - self.offset[0]) / self.scale[0]).astype(np.int64)
        rows = np.floor((np.arange(height) + 0.5 - self.offset[1]) / self.scale[1]).astype(np.int64)
        col_ok = (cols >= 0) & (cols < src_w)
        row_ok = (rows >= 0) & (rows < src_h)
        return np.clip(cols, 0, src_w - 1), np.clip(rows, 0, src_h - 1), col_ok, row_ok

    def border(self) -> np.ndarray:
        """True where the frame shows no source pixel (padding, an outpainting border)."""
        _cols, _rows, col_ok, row_ok = self._source_indices()
        result: np.ndarray = ~(row_ok[:, None] & col_ok[None, :])
        return result

    def mask(self, mask: np.ndarray, *, border: bool = False) -> np.ndarray:
        """A source-sized mask as the frame shows it; the border is ``border`` (False: not marked)."""
        mask = np.asarray(mask, dtype=bool)
        if size_of(mask) != self.source_size:
            raise MaskError(
                f"The mask is {size_of(mask)[0]}x{size_of(mask)[1]} but the picture is "
                f"{self.source_size[0]}x{self.source_size[1]}: they must be the same size."
            )
        if self.is_identity:
            result: np.ndarray = mask.copy()
            return result
        cols, rows, col_ok, row_ok = self._source_indices()
        framed = mask[rows[:, None], cols[None, :]]
        inside = row_ok[:, None] & col_ok[None, :]
        return np.where(inside, framed, border)

    def unframe(self, mask: np.ndarray) -> np.ndarray:
        """A frame-sized mask back on the source picture (what was marked on the border is dropped)."""
        return self.inverse().mask(mask)

    def image(self, image: Image.Image, resample: Image.Resampling = Image.Resampling.LANCZOS) -> Image.Image:
        """The source image framed: RGBA, the border transparent."""
        if image.size != self.source_size:
            raise ValueError(f"the image is {image.size}, the framing's source {self.source_size}")
        if self.is_identity:
            return image.convert("RGBA")
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA")
        scaled = (
            max(1, round(self.source_size[0] * self.scale[0])),
            max(1, round(self.source_size[1] * self.scale[1])),
        )
        if scaled != image.size:  # scaled first, in its own mode: a large picture is never copied whole
            image = image.resize(scaled, resample)
        frame = Image.new("RGBA", self.size, (0, 0, 0, 0))
        frame.paste(image.convert("RGBA"), (round(self.offset[0]), round(self.offset[1])))
        return frame


def identity(size: Size) -> Framing:
    return Framing(size, size)


def scale_to(source_size: Size, size: Size) -> Framing:
    """Stretch the source to ``size``."""
    return Framing(source_size, size, (size[0] / source_size[0], size[1] / source_size[1]))


def square(source_size: Size, fit: Fit = "crop") -> Framing:
    """The centre square (``crop``) or the whole picture in a transparent square (``pad``)."""
    if fit not in ("crop", "pad"):
        raise MaskError(f"fit must be 'crop' or 'pad', got {fit!r}.")
    width, height = source_size
    if fit == "crop":
        side = min(width, height)
        offset = (-((width - side) // 2), -((height - side) // 2))
    else:
        side = max(width, height)
        offset = ((side - width) // 2, (side - height) // 2)
    return Framing(source_size, (side, side), (1.0, 1.0), (float(offset[0]), float(offset[1])))


def fit_into(source_size: Size, size: Size) -> Framing:
    """The whole source scaled to fit ``size`` and centred (the rest is border)."""
    factor = min(size[0] / source_size[0], size[1] / source_size[1])
    scaled = (
        max(1, min(size[0], round(source_size[0] * factor))),
        max(1, min(size[1], round(source_size[1] * factor))),
    )
    offset = ((size[0] - scaled[0]) // 2, (size[1] - scaled[1]) // 2)
    return Framing(
        source_size,
        size,
        (scaled[0] / source_size[0], scaled[1] / source_size[1]),
        (float(offset[0]), float(offset[1])),
    )


def outpaint(
    source_size: Size, frame_size: Size, scale: float = 1.0, offset: tuple[int, int] | None = None
) -> Framing:
    """The source, scaled by ``scale``, placed in a larger frame (centred, or at ``offset``): the border is to fill."""
    if frame_size[0] < 1 or frame_size[1] < 1:
        raise MaskError(f"The frame must have a positive size, got {frame_size}.")
    if scale <= 0:
        raise MaskError(f"scale must be positive, got {scale!r}.")
    scaled = (max(1, round(source_size[0] * scale)), max(1, round(source_size[1] * scale)))
    if scaled[0] > frame_size[0] or scaled[1] > frame_size[1]:
        fits = min(frame_size[0] / source_size[0], frame_size[1] / source_size[1])
        raise MaskError(
            f"The image ({scaled[0]}x{scaled[1]} after scaling) does not fit in a "
            f"{frame_size[0]}x{frame_size[1]} frame.",
            hint=f"Use a larger frame or scale={int(fits * 100) / 100}.",
        )
    if offset is None:
        offset = ((frame_size[0] - scaled[0]) // 2, (frame_size[1] - scaled[1]) // 2)
    return Framing(
        source_size,
        frame_size,
        (scaled[0] / source_size[0], scaled[1] / source_size[1]),
        (float(offset[0]), float(offset[1])),
    )


# -- outpainting: where a picture sits in a larger frame --------------------------------------------

Side = Literal["left", "right", "up", "down"]
SIDES: tuple[Side, ...] = ("left", "right", "up", "down")


def within_frame(point: tuple[float, float]) -> tuple[float, float]:
    """A point given as fractions of a frame's width and height, moved onto the frame (0 to 1 each)."""
    return (min(max(point[0], 0.0), 1.0), min(max(point[1], 0.0), 1.0))


@dataclass(frozen=True)
class Placement:
    """Where a picture sits in an outpainting ``frame``: at ``scale`` of the largest size at which it
    fits, its centre at ``centre`` (fractions of the frame's width and height)."""

    frame: Size
    scale: float = 1.0
    centre: tuple[float, float] = (0.5, 0.5)

    def framing(self, source_size: Size) -> Framing:
        """A ``source_size`` picture so placed; it stays whole inside the frame wherever its centre is."""
        frame = self.frame
        scale = min(frame[0] / source_size[0], frame[1] / source_size[1]) * self.scale
        scaled = (max(1, round(source_size[0] * scale)), max(1, round(source_size[1] * scale)))
        offset = (
            min(max(round(self.centre[0] * frame[0] - scaled[0] / 2), 0), frame[0] - scaled[0]),
            min(max(round(self.centre[1] * frame[1] - scaled[1] / 2), 0), frame[1] - scaled[1]),
        )
        return outpaint(source_size, frame, scale, offset)


def extended_shape(source_size: Size, extension: Mapping[str, float]) -> tuple[float, float]:
    """The size of a picture grown on each :data:`SIDES` by ``extension`` (a share of its width or height)."""
    width, height = source_size
    return (
        width * (1 + extension.get("left", 0.0) + extension.get("right", 0.0)),
        height * (1 + extension.get("up", 0.0) + extension.get("down", 0.0)),
    )


def extend(source_size: Size, extension: Mapping[str, float], frame: Size) -> Placement:
    """The picture placed in ``frame`` for outpainting by ``extension``: the grown picture
    (:func:`extended_shape`) is scaled to fit the frame and centred, and the picture sits in it where
    the growth leaves it, against the sides that did not grow. The scale is not bounded below."""
    width, height = source_size
    wide, tall = extended_shape(source_size, extension)
    scale = min(frame[0] / wide, frame[1] / tall)
    fits = min(frame[0] / width, frame[1] / height)
    left = (frame[0] - scale * wide) / 2 + scale * width * extension.get("left", 0.0)
    top = (frame[1] - scale * tall) / 2 + scale * height * extension.get("up", 0.0)
    centre = ((left + scale * width / 2) / frame[0], (top + scale * height / 2) / frame[1])
    return Placement(frame, scale / fits, centre)


def row_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The marked pixels of ``mask`` as runs along its rows: ``(x, y, length)`` arrays, row by row.

    A run covers columns ``x`` to ``x + length - 1`` of row ``y``; drawn as one-pixel-high
    rectangles they give back exactly the marked pixels.
    """
    height, width = mask.shape
    padded = np.zeros((height, width + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    steps = np.diff(padded, axis=1)
    rows, starts = np.nonzero(steps == 1)
    _rows, ends = np.nonzero(steps == -1)
    return starts.astype(np.int32), rows.astype(np.int32), (ends - starts).astype(np.int32)
