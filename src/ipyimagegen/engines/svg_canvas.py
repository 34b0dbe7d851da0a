"""A drawing surface that writes SVG: the few drawing calls the preview engine makes, as elements.

:class:`SvgCanvas` answers ``ellipse``, ``rectangle``, ``polygon``, ``regular_polygon``, ``line``,
``rounded_rectangle`` and ``text`` as Pillow's ``ImageDraw`` does (same coordinates, RGBA colours),
so the engine's motifs draw the same scene as a picture or as a vector document. Every text and
attribute is escaped: a prompt is data, never markup.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import quoteattr

from ..svg import SVG_NAMESPACE, xml_text

FONT_FAMILY = "Aileron, 'DejaVu Sans', Arial, Helvetica, sans-serif"
"""Pillow's default font first (the PNGs' captions), then common sans-serif fonts."""

Colour = Sequence[int]  # (r, g, b) or (r, g, b, a)


def _number(value: float) -> str:
    """A coordinate with at most two decimals and no trailing zeros (``12``, ``3.5``)."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _hex(colour: Colour) -> str:
    red, green, blue = (int(c) for c in colour[:3])
    return f"#{red:02x}{green:02x}{blue:02x}"


def _paint(colour: Colour | None, what: str) -> str:
    """``fill="#rrggbb" fill-opacity="0.5"`` (or ``stroke``) for an RGB(A) colour; ``none`` for None."""
    if colour is None:
        return f'{what}="none"'
    text = f'{what}="{_hex(colour)}"'
    alpha = int(colour[3]) if len(colour) > 3 else 255
    if alpha < 255:
        text += f' {what}-opacity="{_number(alpha / 255)}"'
    return text


def _points(xy: Sequence[Any]) -> list[tuple[float, float]]:
    """Points from ``[(x, y), ...]`` or ``[x0, y0, x1, y1, ...]``."""
    if xy and isinstance(xy[0], (int, float)):
        flat = [float(v) for v in xy]
        return list(zip(flat[0::2], flat[1::2], strict=True))
    return [(float(x), float(y)) for x, y in xy]


def _box(xy: Sequence[Any]) -> tuple[float, float, float, float]:
    (x0, y0), (x1, y1) = _points(xy)[:2]
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


class SvgCanvas:
    """Collects SVG elements for a picture of ``size`` (width, height) pixels."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = size
        self.definitions: list[str] = []
        self.elements: list[str] = []

    # -- what ImageDraw does ------------------------------------------------------------------

    def ellipse(
        self, xy: Sequence[Any], fill: Colour | None = None, outline: Colour | None = None, width: int = 1
    ) -> None:
        x0, y0, x1, y1 = _box(xy)
        inset = width / 2 if outline is not None else 0.0  # Pillow draws an outline inside the box
        rx, ry = max(0.0, (x1 - x0) / 2 - inset), max(0.0, (y1 - y0) / 2 - inset)
        paint = _paint(fill, "fill")
        if outline is not None:
            paint += f' {_paint(outline, "stroke")} stroke-width="{_number(width)}"'
        self.elements.append(
            f'<ellipse cx="{_number((x0 + x1) / 2)}" cy="{_number((y0 + y1) / 2)}" '
            f'rx="{_number(rx)}" ry="{_number(ry)}" {paint}/>'
        )

    def rectangle(self, xy: Sequence[Any], fill: Colour | None = None) -> None:
        x0, y0, x1, y1 = _box(xy)
        self.elements.append(
            f'<rect x="{_number(x0)}" y="{_number(y0)}" width="{_number(x1 - x0)}" '
            f'height="{_number(y1 - y0)}" {_paint(fill, "fill")}/>'
        )

    def rounded_rectangle(self, xy: Sequence[Any], radius: float = 0, fill: Colour | None = None) -> None:
        x0, y0, x1, y1 = _box(xy)
        self.elements.append(
            f'<rect x="{_number(x0)}" y="{_number(y0)}" width="{_number(x1 - x0)}" '
            f'height="{_number(y1 - y0)}" rx="{_number(radius)}" {_paint(fill, "fill")}/>'
        )

    def polygon(self, xy: Sequence[Any], fill: Colour | None = None) -> None:
        points = " ".join(f"{_number(x)},{_number(y)}" for x, y in _points(xy))
        self.elements.append(f'<polygon points="{points}" {_paint(fill, "fill")}/>')

    def regular_polygon(
        self, bounding_circle: Sequence[float], n_sides: int, rotation: float = 0, fill: Colour | None = None
    ) -> None:
        """The polygon Pillow draws: its first corner at the bottom left, turned by ``rotation`` degrees."""
        cx, cy, radius = (float(v) for v in bounding_circle)
        step = 360 / n_sides
        angles = [270 - step / 2 + rotation + k * step for k in range(n_sides)]
        corners = [
            (cx + radius * math.cos(math.radians(a)), cy - radius * math.sin(math.radians(a))) for a in angles
        ]
        self.polygon(corners, fill=fill)

    def line(self, xy: Sequence[Any], fill: Colour | None = None, width: int = 1) -> None:
        points = " ".join(f"{_number(x)},{_number(y)}" for x, y in _points(xy))
        self.elements.append(
            f'<polyline points="{points}" fill="none" {_paint(fill, "stroke")} '
            f'stroke-width="{_number(width)}" stroke-linejoin="round"/>'
        )

    def text(
        self, xy: Sequence[float], text: str, *, size: float, fill: Colour | None = None, length: float = 0
    ) -> None:
        """``text`` starting at ``xy`` on its baseline, in a font ``size`` pixels high; ``length``: the
        width it is fitted to (the picture's, whatever font the viewer has)."""
        x, y = (float(v) for v in xy)
        fitted = f' textLength="{_number(length)}" lengthAdjust="spacingAndGlyphs"' if length > 0 else ""
        self.elements.append(
            f'<text x="{_number(x)}" y="{_number(y)}" font-size="{_number(size)}" '
            f"font-family={quoteattr(FONT_FAMILY)}{fitted} {_paint(fill, 'fill')}>{xml_text(text)}</text>"
        )

    def picture(self, png: bytes) -> None:
        """A raster picture (PNG bytes) over the whole canvas, embedded as a ``data:`` URL."""
        width, height = self.size
        encoded = base64.b64encode(png).decode("ascii")
        self.elements.append(
            f'<image width="{width}" height="{height}" preserveAspectRatio="none" '
            f'href="data:image/png;base64,{encoded}"/>'
        )

    # -- the document ---------------------------------------------------------------------------

    def linear_gradient(self, start: Colour, end: Colour, angle: float) -> None:
        """A background from ``start`` to ``end`` along ``angle`` (radians) across the picture's box,
        the gradient of the PNGs: 0 at the corner where it starts, 1 at the opposite one."""
        dx, dy = math.cos(angle), math.sin(angle)
        corners = [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)]
        along = [x * dx + y * dy for x, y in corners]
        first = corners[along.index(min(along))]
        reach = max(max(along) - min(along), 1e-6)
        x2, y2 = first[0] + reach * dx, first[1] + reach * dy
        self.definitions.append(
            f'<linearGradient id="background" x1="{_number(first[0])}" y1="{_number(first[1])}" '
            f'x2="{_number(x2)}" y2="{_number(y2)}">'
            f'<stop offset="0" stop-color="{_hex(start)}"/><stop offset="1" stop-color="{_hex(end)}"/>'
            "</linearGradient>"
        )
        width, height = self.size
        self.elements.insert(0, f'<rect width="{width}" height="{height}" fill="url(#background)"/>')

    def document(self, title: str = "", description: str = "") -> bytes:
        """The SVG file: UTF-8, with ``width``, ``height`` and ``viewBox`` of the picture's size."""
        width, height = self.size
        head = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="{SVG_NAMESPACE}" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}">'
        )
        parts = [head]
        if title:
            parts.append(f"<title>{xml_text(title)}</title>")
        if description:
            parts.append(f"<desc>{xml_text(description)}</desc>")
        if self.definitions:
            parts.append("<defs>" + "".join(self.definitions) + "</defs>")
        parts += self.elements
        parts.append("</svg>\n")
        return "\n".join(parts).encode("utf-8")
