"""The offline preview engine: deterministic pictures drawn from the prompt, with no model and no network.

It stands in for a real model in workshops, on Binder and in tests. Every model of the capability
table is offered, so the widgets show the real choices and validation. A picture is made from the
prompt's words (colour words give real colours, other words hashed hues, a few words add simple
motifs) and the prompt itself is written on it, with an "offline preview" label in the corner so
nobody mistakes it for a model's work. Edits change only the mask's transparent pixels; variations
keep the input's layout. A GIF is a loop of the same scene with its shapes moving; an SVG is the
same scene drawn as vector shapes and text.
"""

from __future__ import annotations

import colorsys
import functools
import hashlib
import math
import re
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFont

from .. import imaging, masks
from ..api.backend import BaseBackend
from ..api.types import (
    CallHooks,
    EditRequest,
    GeneratedImage,
    GenerateRequest,
    ImagesResponse,
    PartialImage,
    VariationRequest,
)
from ..errors import ValidationError
from ..models import auto_size, model_spec, parse_size
from ..moderation import WordSource, word_list
from ..pngtext import gif_timing
from ..pricing import estimated_usage, resolved_quality
from .svg_canvas import SvgCanvas

SOFTWARE = "ipyimagegen offline preview engine"
LABEL = "offline preview"
PNG_TEXT = {"Software": SOFTWARE}

RGB = tuple[int, int, int]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
Canvas = ImageDraw.ImageDraw | SvgCanvas
"""Where a scene is drawn: a picture (Pillow) or an SVG document, with the same calls."""

DEFAULT_FRAME_COUNT = 9
"""Frames of a GIF when the request names no ``frame_count`` (the Images API's default)."""
DEFAULT_FRAME_DURATION_MS = 200
"""How long each GIF frame shows when the request names no ``frame_duration_ms`` (the API's default)."""

COLOUR_WORDS: dict[str, RGB] = {
    "red": (214, 40, 40),
    "crimson": (170, 20, 50),
    "orange": (245, 140, 30),
    "yellow": (245, 215, 50),
    "gold": (212, 175, 55),
    "golden": (212, 175, 55),
    "green": (60, 160, 70),
    "grass": (90, 170, 60),
    "forest": (30, 90, 45),
    "jungle": (40, 120, 50),
    "teal": (0, 128, 128),
    "cyan": (40, 200, 220),
    "turquoise": (64, 210, 200),
    "blue": (40, 90, 210),
    "sky": (120, 180, 235),
    "sea": (20, 100, 160),
    "ocean": (15, 80, 150),
    "water": (50, 130, 190),
    "navy": (20, 30, 90),
    "purple": (120, 50, 160),
    "violet": (140, 80, 200),
    "lavender": (180, 160, 220),
    "pink": (240, 130, 170),
    "magenta": (210, 40, 160),
    "brown": (120, 75, 40),
    "wood": (140, 95, 55),
    "desert": (220, 190, 130),
    "sand": (225, 200, 150),
    "white": (245, 245, 242),
    "snow": (235, 240, 250),
    "ice": (200, 230, 245),
    "silver": (190, 195, 200),
    "grey": (128, 128, 128),
    "gray": (128, 128, 128),
    "black": (20, 20, 22),
    "dark": (30, 30, 40),
    "night": (16, 24, 60),
    "midnight": (10, 14, 40),
    "space": (8, 8, 24),
    "sunset": (250, 120, 60),
    "sunrise": (255, 170, 90),
    "dawn": (250, 190, 150),
    "fire": (240, 80, 20),
    "lava": (200, 50, 10),
    "neon": (60, 255, 170),
    "autumn": (200, 100, 40),
    "spring": (150, 220, 120),
}

_STOP_WORDS = frozenset(
    {"a", "an", "the", "of", "in", "on", "at", "by", "for", "to", "with", "and", "or", "from", "into"}
    | {"over", "under", "is", "are", "its", "it", "this", "that", "as", "very", "some"}
)

_EMBELLISHMENTS = (
    "in soft natural light, with fine detail and a calm, balanced composition",
    "rendered with rich colour and gentle depth of field",
    "in a painterly style with warm light and clear shapes",
    "with crisp detail, dramatic lighting and a clean background",
)


def prompt_seed(prompt: str) -> int:
    """The seed a prompt gets when the request names none (stable across runs and machines)."""
    return int.from_bytes(hashlib.sha256(prompt.encode("utf-8")).digest()[:4], "big")


def _word_seed(word: str) -> int:
    return zlib.crc32(word.encode("utf-8"))


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed & 0xFFFF_FFFF_FFFF_FFFF)


def words_of(prompt: str) -> list[str]:
    """The prompt's words, lower case, without the little ones."""
    return [word for word in re.findall(r"[a-z]+", prompt.lower()) if word not in _STOP_WORDS]


def palette(prompt: str, count: int = 6) -> list[RGB]:
    """Colours for a prompt: its colour words first, then a hue hashed from each other word."""
    words = words_of(prompt)
    colours = list(dict.fromkeys(COLOUR_WORDS[word] for word in words if word in COLOUR_WORDS))
    for word in words:
        if len(colours) >= count:
            break
        if word not in COLOUR_WORDS:
            bits = _word_seed(word)
            hue = (bits & 0xFFFF) / 0x10000
            saturation = 0.45 + ((bits >> 16) & 0xFF) / 255 * 0.4
            value = 0.55 + ((bits >> 24) & 0xFF) / 255 * 0.4
            colours.append(_rgb(colorsys.hsv_to_rgb(hue, saturation, value)))
    while len(colours) < 3:  # few distinct words: add hues around the prompt's own
        hue = (_word_seed(prompt) % 360 + 110 * len(colours)) / 360
        colours.append(_rgb(colorsys.hsv_to_rgb(hue % 1, 0.6, 0.8)))
    return colours[:count]


def _rgb(unit: tuple[float, float, float]) -> RGB:
    return (round(unit[0] * 255), round(unit[1] * 255), round(unit[2] * 255))


def _styled(colours: Sequence[RGB], style: str | None) -> list[RGB]:
    """``natural`` mutes the colours a little, ``vivid`` pushes them."""
    if style not in ("natural", "vivid"):
        return list(colours)
    factor = 0.7 if style == "natural" else 1.25
    out = []
    for colour in colours:
        h, s, v = colorsys.rgb_to_hsv(*(c / 255 for c in colour))
        out.append(_rgb(colorsys.hsv_to_rgb(h, min(1.0, s * factor), v)))
    return out


# --- drawing -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def _font(size: int) -> Font:
    return ImageFont.load_default(size=size)


def _gradient(size: tuple[int, int], start: RGB, end: RGB, angle: float) -> Image.Image:
    """A linear gradient (RGB), computed small and scaled up (it is smooth, so nothing is lost)."""
    width, height = size
    small_w, small_h = max(2, min(width, 64)), max(2, min(height, 64))
    ys, xs = np.mgrid[0:small_h, 0:small_w].astype(np.float32)
    t = xs / (small_w - 1) * np.cos(angle) + ys / (small_h - 1) * np.sin(angle)
    t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    colours = np.asarray(start, np.float32) * (1 - t[..., None]) + np.asarray(end, np.float32) * t[..., None]
    small = Image.fromarray(np.rint(colours).astype(np.uint8))
    return small.resize(size, Image.Resampling.BILINEAR)


def _with_alpha(colour: RGB, alpha: int) -> tuple[int, int, int, int]:
    return (*colour, alpha)


Motif = Callable[[Canvas, int, int, np.random.Generator, Sequence[RGB]], None]


def _sun(draw: Canvas, w: int, h: int, rng: np.random.Generator, colours: Sequence[RGB]) -> None:
    r = min(w, h) * rng.uniform(0.08, 0.13)
    cx, cy = w * rng.uniform(0.15, 0.85), h * rng.uniform(0.12, 0.3)
    draw.ellipse((cx - 1.8 * r, cy - 1.8 * r, cx + 1.8 * r, cy + 1.8 * r), fill=(255, 220, 120, 60))
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(255, 214, 80, 255))


def _moon(draw: Canvas, w: int, h: int, rng: np.random.Generator, colours: Sequence[RGB]) -> None:
    r = min(w, h) * rng.uniform(0.05, 0.08)
    cx, cy = w * rng.uniform(0.15, 0.85), h * rng.uniform(0.1, 0.25)
    draw.ellipse((cx - 1.6 * r, cy - 1.6 * r, cx + 1.6 * r, cy + 1.6 * r), fill=(230, 235, 255, 40))
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(240, 240, 225, 255))
    draw.ellipse((cx - 0.5 * r, cy - 0.3 * r, cx - 0.1 * r, cy + 0.1 * r), fill=(200, 200, 190, 255))


def _stars(draw: Canvas, w: int, h: int, rng: np.random.Generator, colours: Sequence[RGB]) -> None:
    for x, y, r in zip(
        rng.uniform(0, w, 60), rng.uniform(0, h * 0.6, 60), rng.uniform(0.5, 2.2, 60), strict=True
    ):
        r *= max(1.0, min(w, h) / 512)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(255, 255, 235, 230))


def _mountains(draw: Canvas, w: int, h: int, rng: np.random.Generator, colours: Sequence[RGB]) -> None:
    for k in range(3):
        peak_x, peak_y = w * rng.uniform(0.1, 0.9), h * rng.uniform(0.35, 0.6)
        spread = w * rng.uniform(0.3, 0.55)
        shade = tuple(int(c * (0.45 + 0.15 * k)) for c in colours[k % len(colours)])
        draw.polygon([(peak_x - spread, h), (peak_x, peak_y), (peak_x + spread, h)], fill=(*shade, 235))


def _water(draw: Canvas, w: int, h: int, rng: np.random.Generator, colours: Sequence[RGB]) -> None:
    top = h * rng.uniform(0.62, 0.75)
    draw.rectangle((0, top, w, h), fill=(30, 100, 170, 200))
    step = max(4, w // 24)
    for row in range(4):
        y = top + (h - top) * (row + 1) / 5
        points = [(x, y + np.sin(x / step + row) * step / 4) for x in range(0, w + step, step)]
        draw.line(points, fill=(200, 230, 255, 170), width=max(1, w // 256))


def _trees(draw: Canvas, w: int, h: int, rng: np.random.Generator, colours: Sequence[RGB]) -> None:
    for _ in range(int(rng.integers(3, 7))):
        x, base = w * rng.uniform(0.05, 0.95), h * rng.uniform(0.8, 0.97)
        size = min(w, h) * rng.uniform(0.08, 0.16)
        draw.rectangle((x - size * 0.08, base - size * 0.5, x + size * 0.08, base), fill=(90, 60, 30, 255))
        draw.polygon(
            [
                (x - size * 0.5, base - size * 0.4),
                (x, base - size * 1.6),
                (x + size * 0.5, base - size * 0.4),
            ],
            fill=(35, 120, 55, 245),
        )


def _city(draw: Canvas, w: int, h: int, rng: np.random.Generator, colours: Sequence[RGB]) -> None:
    x = 0.0
    while x < w:
        width = w * rng.uniform(0.05, 0.12)
        top = h * rng.uniform(0.45, 0.75)
        draw.rectangle((x, top, x + width, h), fill=(35, 38, 55, 240))
        for wy in np.arange(top + width * 0.2, h - width * 0.2, width * 0.35):
            draw.rectangle(
                (x + width * 0.25, wy, x + width * 0.45, wy + width * 0.15), fill=(250, 220, 120, 200)
            )
        x += width * rng.uniform(1.0, 1.2)


MOTIFS: dict[str, Motif] = {
    "sun": _sun,
    "sunny": _sun,
    "moon": _moon,
    "night": _stars,
    "stars": _stars,
    "space": _stars,
    "mountain": _mountains,
    "mountains": _mountains,
    "sea": _water,
    "ocean": _water,
    "lake": _water,
    "river": _water,
    "beach": _water,
    "tree": _trees,
    "trees": _trees,
    "forest": _trees,
    "city": _city,
    "skyline": _city,
    "town": _city,
}


_GOLDEN_ANGLE = math.pi * (3 - math.sqrt(5))


def _drift(k: int, side: int, phase: float) -> tuple[float, float]:
    """How far shape ``k`` has moved at ``phase`` (0 to 1) of a loop: a small circle, back where it
    started at 1, so an animation loops without a jump. Shapes turn different ways from different
    places on their circles."""
    amplitude = max(3.0, side * 0.035)
    start = k * _GOLDEN_ANGLE
    turn = 2 * math.pi * phase * (1 if k % 2 == 0 else -1)
    return (
        amplitude * (math.cos(start + turn) - math.cos(start)),
        amplitude * (math.sin(start + turn) - math.sin(start)),
    )


def _shapes(
    draw: Canvas,
    w: int,
    h: int,
    rng: np.random.Generator,
    colours: Sequence[RGB],
    phase: float | None = None,
) -> None:
    """The scene's shapes; ``phase`` (0 to 1) moves them along their loops (None: where they rest)."""
    side = min(w, h)
    for k in range(int(rng.integers(4, 8))):
        colour = _with_alpha(colours[(k + 2) % len(colours)], int(rng.integers(120, 230)))
        cx, cy = w * rng.uniform(0.1, 0.9), h * rng.uniform(0.1, 0.8)
        r = side * rng.uniform(0.06, 0.22)
        kind = int(rng.integers(0, 4))
        if phase is not None:
            dx, dy = _drift(k, side, phase)
            cx, cy = cx + dx, cy + dy
        if kind == 0:
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
        elif kind == 1:
            draw.rectangle((cx - r, cy - r * 0.6, cx + r, cy + r * 0.6), fill=colour)
        elif kind == 2:
            # a loop turns it a third of a turn, which brings the same triangle back
            rotation = float(rng.uniform(0, 120)) + 120 * (phase or 0.0)
            draw.regular_polygon((cx, cy, r), n_sides=3, rotation=rotation, fill=colour)
        else:
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=colour, width=max(2, int(r / 5)))


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: Font, width: float, max_lines: int) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}".strip()
        if line and draw.textlength(candidate, font=font) > width:
            lines.append(line)
            line = word
        else:
            line = candidate
    if line:
        lines.append(line)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1].rstrip(".,;") + " ..."
    return lines


@dataclass(frozen=True)
class _CaptionLayout:
    """Where the caption's parts go on a picture of some size: the same for a PNG and an SVG."""

    font: Font
    lines: list[str]
    line_h: int
    margin: int
    top: int
    label_font: Font
    label_box: tuple[float, float, float, float]
    pad: int


def _caption_layout(
    size: tuple[int, int], prompt: str, draw: ImageDraw.ImageDraw | None = None
) -> _CaptionLayout:
    w, h = size
    measure = draw if draw is not None else ImageDraw.Draw(Image.new("L", (1, 1)))
    side = min(w, h)
    font = _font(max(12, side // 22))
    margin = max(6, side // 40)
    lines = _wrap(measure, prompt, font, w - 4 * margin, max_lines=3)
    line_h = int(font.getbbox("Ag")[3]) + margin // 2
    label_font = _font(max(10, side // 40))
    x0, y0, x1, y1 = measure.textbbox((margin, margin), LABEL, font=label_font)
    pad = max(3, side // 128)
    return _CaptionLayout(
        font=font,
        lines=lines,
        line_h=line_h,
        margin=margin,
        top=h - len(lines) * line_h - 2 * margin,
        label_font=label_font,
        label_box=(x0 - pad, y0 - pad, x1 + pad, y1 + pad),
        pad=pad,
    )


def _caption(image: Image.Image, prompt: str) -> None:
    """The prompt, wrapped, in a dark band at the bottom; the "offline preview" label at the top left.

    The band and label blend into an RGB image; on an RGBA one they replace the pixels.
    """
    w, h = image.size
    draw = ImageDraw.Draw(image, "RGBA")
    at = _caption_layout(image.size, prompt, draw)
    draw.rectangle((0, at.top, w, h), fill=(0, 0, 0, 150))
    for k, line in enumerate(at.lines):
        place = (2 * at.margin, at.top + at.margin + k * at.line_h)
        draw.text(place, line, font=at.font, fill=(255, 255, 255, 255))
    draw.rounded_rectangle(at.label_box, radius=at.pad, fill=(0, 0, 0, 170))
    draw.text((at.margin, at.margin), LABEL, font=at.label_font, fill=(255, 255, 255, 235))


def _font_size_and_ascent(font: Font) -> tuple[float, float]:
    """A font's size in pixels and the height of its ascender (where its text's baseline lies)."""
    if isinstance(font, ImageFont.FreeTypeFont):
        return float(font.size), float(font.getmetrics()[0])
    top_to_bottom = float(font.getbbox("Ag")[3])
    return top_to_bottom, top_to_bottom * 0.8


def _svg_caption(canvas: SvgCanvas, prompt: str) -> None:
    """The caption and label of :func:`_caption`, as SVG text (escaped) and shapes."""
    w, h = canvas.size
    measure = ImageDraw.Draw(Image.new("L", (1, 1)))
    at = _caption_layout(canvas.size, prompt, measure)
    canvas.rectangle((0, at.top, w, h), fill=(0, 0, 0, 150))
    size, ascent = _font_size_and_ascent(at.font)
    for k, line in enumerate(at.lines):
        baseline = (2 * at.margin, at.top + at.margin + k * at.line_h + ascent)
        width = measure.textlength(line, font=at.font)
        canvas.text(baseline, line, size=size, fill=(255, 255, 255, 255), length=width)
    canvas.rounded_rectangle(at.label_box, radius=at.pad, fill=(0, 0, 0, 170))
    label_size, label_ascent = _font_size_and_ascent(at.label_font)
    canvas.text(
        (at.margin, at.margin + label_ascent),
        LABEL,
        size=label_size,
        fill=(255, 255, 255, 235),
        length=measure.textlength(LABEL, font=at.label_font),
    )


def _scene_colours(prompt: str, rng: np.random.Generator, style: str | None) -> list[RGB]:
    """The prompt's colours, the two of the background first (its colour words where it has them)."""
    colours = _styled(palette(prompt), style)
    named = len({COLOUR_WORDS[word] for word in words_of(prompt) if word in COLOUR_WORDS})
    first = [int(k) for k in rng.permutation(named if named >= 2 else len(colours))[:2]]
    if named == 1 and 0 not in first:
        first[0] = 0
    return [colours[k] for k in first] + [c for k, c in enumerate(colours) if k not in first]


def _motifs(prompt: str) -> list[Motif]:
    return list(dict.fromkeys(MOTIFS[word] for word in words_of(prompt) if word in MOTIFS))


def render_scene(
    prompt: str,
    size: tuple[int, int],
    seed: int,
    *,
    transparent: bool = False,
    caption: bool = True,
    style: str | None = None,
    phase: float | None = None,
) -> Image.Image:
    """The preview picture of a prompt: a gradient, the prompt's motifs, shapes and caption.

    RGB, or RGBA on a transparent background. The background takes the prompt's colour words
    where it has them; the seed picks the layout. ``phase`` (0 to 1) is a moment of the scene's
    animation loop: the shapes move along small circles (0 is the still picture).
    """
    rng = _rng(seed)
    colours = _scene_colours(prompt, rng, style)
    if transparent:
        image = Image.new("RGBA", size, (0, 0, 0, 0))
    else:
        image = _gradient(size, colours[0], colours[1], float(rng.uniform(0, np.pi)))
    draw = ImageDraw.Draw(image, "RGBA")
    w, h = size
    for motif in _motifs(prompt):
        motif(draw, w, h, rng, colours)
    _shapes(draw, w, h, rng, colours, phase)
    if caption:
        _caption(image, prompt)
    return image


def render_svg(
    prompt: str,
    size: tuple[int, int],
    seed: int,
    *,
    transparent: bool = False,
    caption: bool = True,
    style: str | None = None,
) -> bytes:
    """The scene of :func:`render_scene` as an SVG document (UTF-8 bytes) of ``size`` pixels: the same
    gradient, motifs, shapes, caption and label, the prompt escaped as text and given as the title."""
    rng = _rng(seed)
    colours = _scene_colours(prompt, rng, style)
    canvas = SvgCanvas(size)
    if not transparent:
        canvas.linear_gradient(colours[0], colours[1], float(rng.uniform(0, np.pi)))
    w, h = size
    for motif in _motifs(prompt):
        motif(canvas, w, h, rng, colours)
    _shapes(canvas, w, h, rng, colours)
    if caption:
        _svg_caption(canvas, prompt)
    return canvas.document(title=prompt, description=SOFTWARE)


# --- results -----------------------------------------------------------------------------------


def output_size(size: str | None, model: str) -> tuple[int, int]:
    """(width, height) for a request's size: the model's default when unset, 1024x1024 for auto."""
    if size is None:
        size = model_spec(model).default_size
    if size == "auto":
        return 1024, 1024
    return parse_size(size)


def _encoded(image: Image.Image, output_format: str | None, compression: int | None) -> tuple[bytes, str]:
    fmt = (output_format or "png").lower()
    if fmt == "png" and not imaging.has_transparency(image):
        image = image.convert("RGB")
    return imaging.encode(image, fmt, compression, text=PNG_TEXT), imaging.mime_type(fmt)


def _unfinished(image: Image.Image, step: int, steps: int) -> Image.Image:
    """A blurry stage of ``image``: step 0 of ``steps`` is the roughest."""
    factor = 2 ** (steps - step + 1)
    factor = max(1, min(factor, min(image.size) // 4))
    return image.reduce(factor).resize(image.size, Image.Resampling.BILINEAR)


def _surroundings(source: Image.Image, regenerate: Image.Image) -> Image.Image:
    """For every pixel, the mean colour of the kept pixels near it (RGB), spread smoothly.

    All in 8 bits: the kept pixels are averaged by a box resize of the picture with the kept
    area as its alpha (Pillow weighs colours by alpha), into a grid of at most 32x32 cells.
    """
    width, height = source.size
    grid = (max(1, min(32, width // 8)), max(1, min(32, height // 8)))
    kept = source.convert("RGB")
    kept.putalpha(ImageChops.invert(regenerate))
    cells = np.asarray(kept.resize(grid, Image.Resampling.BOX), dtype=np.float32)
    mean = cells[..., :3].copy()
    known = cells[..., 3] > 0
    if not known.any():
        mean[:] = 128.0
        known[:] = True
    while not known.all():  # spread the known cells' colours into the unknown ones
        padded_mean = np.pad(mean * known[..., None], ((1, 1), (1, 1), (0, 0)))
        padded_known = np.pad(known.astype(np.float32), 1)
        total = np.sum(
            [padded_mean[1 + dy : 1 + dy + grid[1], 1 + dx : 1 + dx + grid[0]] for dy, dx in _NEIGHBOURS],
            axis=0,
        )
        count = np.sum(
            [padded_known[1 + dy : 1 + dy + grid[1], 1 + dx : 1 + dx + grid[0]] for dy, dx in _NEIGHBOURS],
            axis=0,
        )
        reached = ~known & (count > 0)
        mean[reached] = total[reached] / count[reached][:, None]
        known |= reached
    small = Image.fromarray(np.clip(np.rint(mean), 0, 255).astype(np.uint8))
    return small.resize((width, height), Image.Resampling.BILINEAR)


_NEIGHBOURS = ((-1, 0), (1, 0), (0, -1), (0, 1))


def _hue_shifted(image: Image.Image, shift: int) -> Image.Image:
    hsv = np.asarray(image.convert("RGB").convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(np.int16) + shift) % 256
    return Image.frombytes("HSV", image.size, hsv.tobytes()).convert("RGB")


def _blotches(shape: tuple[int, ...], rng: np.random.Generator, strength: int = 14) -> np.ndarray:
    """Soft, low-frequency brightness noise (int16, height x width x 1): compresses well, looks painted."""
    height, width = shape[:2]
    small = rng.integers(128 - strength, 129 + strength, size=(max(2, height // 64), max(2, width // 64)))
    smooth = Image.fromarray(small.astype(np.uint8)).resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(smooth, dtype=np.int16)[..., None] - 128


WARP_ROWS = 256
"""Rows warped at a time, so the index arrays stay small whatever the picture's size."""


def _warped(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``pixels`` bent by gentle sine waves (a few pixels), so the layout stays as it was."""
    height, width = pixels.shape[:2]
    amplitude = max(1.0, min(width, height) * 0.006)
    xs = np.arange(width)[None, :]
    phase_x, phase_y = rng.uniform(0, 2 * np.pi, 2)
    period_x, period_y = rng.uniform(0.5, 1.5, 2) * min(width, height) / (2 * np.pi)
    shift_y = amplitude * np.sin(xs / period_x + phase_y)
    out = np.empty_like(pixels)
    for top in range(0, height, WARP_ROWS):
        ys = np.arange(top, min(height, top + WARP_ROWS))[:, None]
        src_x = np.clip(np.rint(xs + amplitude * np.sin(ys / period_y + phase_x)), 0, width - 1).astype(
            np.intp
        )
        src_y = np.clip(np.rint(ys + shift_y), 0, height - 1).astype(np.intp)
        out[top : top + len(ys)] = pixels[src_y, src_x]
    return out


Drawn = Image.Image | Iterator[Image.Image] | bytes
"""What the engine draws for one result: a picture, the frames of a GIF (drawn as they are encoded),
or a finished SVG document."""


class PreviewEngine(BaseBackend):
    """Draws deterministic preview pictures in process: instant, offline, no model.

    The same prompt, size, seed and index always give the same bytes; without a seed one is
    derived from the prompt, and image ``i`` of ``n`` uses ``seed + i``.
    """

    name = "offline preview engine"
    offline = True
    honours_seeds = True

    def __init__(self, *, max_pixels: int | None = None, moderation_words: WordSource = None) -> None:
        """``max_pixels``: the most pixels an image may have when its size is left to the engine
        (an edit or variation of a large picture is scaled down into it); the model's own limit
        applies too. ``moderation_words``: the word list prompts are checked against (a file, a
        list of lines, or None for the default list; an empty one turns the check off), see
        :mod:`ipyimagegen.moderation`."""
        self.max_pixels = max_pixels
        self.moderation_words = word_list(moderation_words)

    def supports_streaming(self, model: str) -> bool:
        return model_spec(model).is_gpt_image

    def serves_model(self, model: str) -> bool:
        """Every model the catalogue knows, live or retired: the preview draws as any of them."""
        return model_spec(model).known

    def _partials(self, request: GenerateRequest | EditRequest, hooks: CallHooks) -> int:
        """How many partial images to stream: only to a listener, and only for models that stream."""
        if hooks.on_partial is None or not self.supports_streaming(request.model):
            return 0
        return max(0, request.partial_images or 0)

    def _result(
        self,
        image: Drawn,
        index: int,
        seed: int,
        request: GenerateRequest | EditRequest | VariationRequest,
        hooks: CallHooks,
    ) -> GeneratedImage:
        metadata: dict[str, Any] = {"engine": "preview", "seed": seed}
        if isinstance(image, bytes):  # an SVG document
            metadata["size"] = "x".join(str(side) for side in imaging.image_size(image))
            return GeneratedImage(
                data=image, mime_type=imaging.mime_type("svg"), index=index, seed=seed, metadata=metadata
            )
        if isinstance(image, Iterator):  # the frames of a GIF
            duration = _frame_duration(request)
            data = imaging.encode_gif(image, duration, comment=SOFTWARE)
            metadata.update(frame_count=len(gif_timing(data)[0]), frame_duration_ms=duration)
            return GeneratedImage(
                data=data, mime_type=imaging.mime_type("gif"), index=index, seed=seed, metadata=metadata
            )
        output_format = getattr(request, "output_format", None)
        compression = getattr(request, "output_compression", None)
        partials = self._partials(request, hooks) if not isinstance(request, VariationRequest) else 0
        for step in range(partials):
            data, mime = _encoded(_unfinished(image, step, partials), output_format, compression)
            hooks.partial(PartialImage(index=index, partial_index=step, data=data, mime_type=mime))
        data, mime = _encoded(image, output_format, compression)
        return GeneratedImage(data=data, mime_type=mime, index=index, seed=seed, metadata=metadata)

    def _each(
        self,
        request: GenerateRequest | EditRequest | VariationRequest,
        hooks: CallHooks,
        base_seed: int,
        make: Callable[[int, int], Drawn],
        facts: _CallFacts | None = None,
    ) -> ImagesResponse:
        """The ``request.n`` images, made one by one: each is handed over as soon as it is made."""
        facts = facts or _CallFacts()
        results = []
        for index in range(request.n):
            hooks.check_cancelled()
            seed = base_seed + index
            image = self._result(make(index, seed), index, seed, request, hooks)
            image.metadata.update(facts.metadata)
            image.revised_prompt = facts.revised_prompt
            self._image_done(request, hooks, image, facts.usage)
            results.append(image)
            hooks.progress(index + 1, request.n)
        return ImagesResponse(data=results, backend=self.name, model=request.model, usage=facts.usage)

    def _generate(self, request: GenerateRequest, hooks: CallHooks) -> ImagesResponse:
        size = output_size(request.size, request.model)
        base_seed = request.seed if request.seed is not None else prompt_seed(request.prompt)

        transparent = request.background == "transparent"
        draw_size = size
        if request.quality == "low":  # drawn at half size and scaled up: visibly rougher
            draw_size = (max(1, size[0] // 2), max(1, size[1] // 2))

        def picture(seed: int, phase: float | None = None) -> Image.Image:
            drawn = render_scene(
                request.prompt, draw_size, seed, transparent=transparent, style=request.style, phase=phase
            )
            return drawn if draw_size == size else drawn.resize(size, Image.Resampling.BILINEAR)

        def make(index: int, seed: int) -> Drawn:
            if request.output_format == "svg":  # a vector document: no pixels to be rough with
                return render_svg(request.prompt, size, seed, transparent=transparent, style=request.style)
            if request.output_format == "gif":
                count = _frame_count(request)
                return (picture(seed, k / count) for k in range(count))
            return picture(seed)

        facts = _call_facts(request, size, [])
        if model_spec(request.model).returns_revised_prompt:
            embellishment = _EMBELLISHMENTS[prompt_seed(request.prompt) % 4]
            facts.revised_prompt = f"{request.prompt.rstrip(' .')}, {embellishment}."
        return self._each(request, hooks, base_seed, make, facts)

    def _output_size(
        self, request: EditRequest | VariationRequest, source: tuple[int, int]
    ) -> tuple[int, int]:
        if request.size in (None, "auto"):
            return auto_size(model_spec(request.model), source, self.max_pixels)
        return output_size(request.size, request.model)

    def _edit(self, request: EditRequest, hooks: CallHooks) -> ImagesResponse:
        source = _rgb_or_rgba(imaging.open_image(request.images[0].data))
        size = self._output_size(request, source.size)
        framing = masks.fit_into(source.size, size) if size != source.size else masks.identity(size)
        if request.mask is None and source.mode == "RGBA":
            regenerate = np.asarray(source.getchannel("A")) == 0
        else:
            regenerate = None
        # scaled before anything else (the mask is read after), so the work is the output's size
        picture = framing.image(source)
        del source
        if request.mask is not None:
            regenerate = imaging.read_mask(request.mask.data, "alpha")
        elif regenerate is None:
            regenerate = np.zeros(framing.source_size[::-1], dtype=bool)
        blend_all = not regenerate.any() and request.mask is None
        if blend_all and model_spec(request.model).needs_square_png_input:
            raise ValidationError(
                f"{request.model} edits the transparent part of the image, and this image has none: send a "
                "mask whose transparent pixels mark the area to change, or erase that area to transparency.",
                param="mask",
                hint="Paint a mask over the area to change, or erase it to transparency.",
            )
        marked = Image.fromarray(framing.mask(regenerate, border=True).astype(np.uint8) * 255)  # 255: redo
        del regenerate
        source = picture
        base_seed = request.seed if request.seed is not None else prompt_seed(request.prompt)
        around = _surroundings(source, marked) if marked.getbbox() else None

        def edited(seed: int, phase: float | None = None) -> Image.Image:
            scene = render_scene(request.prompt, size, seed, caption=False, phase=phase)
            out = source
            if blend_all:  # a gpt-image edit without a mask reworks the whole picture
                out = Image.blend(source.convert("RGB"), scene, 0.4)
                out.putalpha(source.getchannel("A"))
            if around is not None:
                fill = Image.blend(around, scene, 0.6).convert("RGBA")
                out = Image.composite(fill, out, marked)
            return out

        def make(index: int, seed: int) -> Drawn:
            if request.output_format == "gif":  # the changed area moves; the rest stays as it was
                count = _frame_count(request)
                return (edited(seed, k / count) for k in range(count))
            if request.output_format == "svg":  # the edited picture, in an SVG document of its size
                canvas = SvgCanvas(size)
                canvas.picture(imaging.to_png(edited(seed)))
                return canvas.document(title=request.prompt, description=SOFTWARE)
            return edited(seed)

        input_sizes = [imaging.image_size(image.data) for image in request.images]
        return self._each(request, hooks, base_seed, make, _call_facts(request, size, input_sizes))

    def _create_variation(self, request: VariationRequest, hooks: CallHooks) -> ImagesResponse:
        assert request.image is not None  # validation made sure
        source = _rgb_or_rgba(imaging.open_image(request.image.data))
        size = self._output_size(request, source.size)
        if size != source.size:
            source = source.resize(size, Image.Resampling.LANCZOS)
        source = source.convert("RGBA")
        base_seed = request.seed
        if base_seed is None:
            base_seed = int.from_bytes(hashlib.sha256(request.image.data).digest()[:4], "big")
        alpha = source.getchannel("A")
        luma = np.asarray(source.convert("RGB").convert("YCbCr"))[..., 0]

        def make(index: int, seed: int) -> Image.Image:
            rng = _rng(seed)
            shift = int(rng.integers(6, 20)) * (1 if rng.random() < 0.5 else -1)
            recoloured = np.asarray(_hue_shifted(source, shift).convert("YCbCr")).copy()
            brightness = luma.astype(np.int16) + _blotches(luma.shape, rng)[..., 0]
            recoloured[..., 0] = np.clip(brightness, 0, 255)  # the original's light and shade
            rgb = np.asarray(Image.frombytes("YCbCr", size, recoloured.tobytes()).convert("RGB"))
            return Image.fromarray(_warped(np.dstack([rgb, np.asarray(alpha)]), rng))

        return self._each(request, hooks, base_seed, make)


def _rgb_or_rgba(image: Image.Image) -> Image.Image:
    """``image`` as RGB when it is opaque (a quarter less memory than RGBA), else RGBA."""
    return image if image.mode in ("RGB", "RGBA") else image.convert("RGBA")


def _frame_count(request: GenerateRequest | EditRequest) -> int:
    return request.frame_count if request.frame_count is not None else DEFAULT_FRAME_COUNT


def _frame_duration(request: GenerateRequest | EditRequest | VariationRequest) -> int:
    duration = getattr(request, "frame_duration_ms", None)
    return duration if duration is not None else DEFAULT_FRAME_DURATION_MS


@dataclass
class _CallFacts:
    """What every image of a call shares, known before the first is drawn: the call's usage, metadata
    and the model's rewrite of the prompt."""

    usage: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    revised_prompt: str | None = None


def _call_facts(
    request: GenerateRequest | EditRequest, size: tuple[int, int], input_sizes: list[tuple[int, int]]
) -> _CallFacts:
    """Usage in the API's shape (GPT image models), and the quality used, as OpenAI reports them."""
    spec = model_spec(request.model)
    quality = resolved_quality(spec, request.quality)
    usage = estimated_usage(
        request.model,
        prompt=request.prompt,
        size=f"{size[0]}x{size[1]}",
        quality=quality,
        n=request.n,
        input_sizes=input_sizes,
    )
    return _CallFacts(usage=usage, metadata={"quality": quality} if spec.is_gpt_image else {})
