"""SVG results: read safely, their size, the metadata kept in them, and raster copies for display.

An SVG may come from anywhere (a model, a server), so its markup is never trusted: it is parsed
with ``defusedxml`` (entity declarations and external references refused, nothing fetched), and a
raster copy is drawn by resvg from a copy of the document with every reference to a file or URL
outside it removed. Metadata goes into a ``<metadata>`` element as escaped JSON text, spliced in
after the root element's start tag, so the rest of the file stays byte for byte as it was.
"""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ElementTree
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring, iterparse
from PIL import Image, ImageDraw, ImageFont

from .media import sniff_mime_type

SVG_NAMESPACE = "http://www.w3.org/2000/svg"
XLINK_NAMESPACE = "http://www.w3.org/1999/xlink"
METADATA_ID = "ipyimagegen-metadata"
DEFAULT_SIZE = (300, 150)
"""The size a browser gives an SVG that says nothing about its size (CSS's replaced-element default)."""
MAX_SIDE = 16_384
"""The largest width or height believed; a larger one is clamped (a raster copy is never larger)."""

_UNITS = {"": 1.0, "px": 1.0, "pt": 4 / 3, "pc": 16.0, "mm": 96 / 25.4, "cm": 96 / 2.54, "in": 96.0}
_LENGTH = re.compile(r"\s*([+]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([a-z%]*)\s*$")


class SvgError(ValueError):
    """The bytes are not an SVG document that can be read safely."""


def is_svg(data: bytes) -> bool:
    """Whether ``data`` looks like an SVG document (by its first bytes)."""
    return sniff_mime_type(data) == "image/svg+xml"


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def parse(data: bytes) -> ElementTree.Element:
    """The document's root element, parsed safely (no entities, no external references)."""
    try:
        root = fromstring(bytes(data))
    except DefusedXmlException as exc:
        raise SvgError(
            f"This SVG declares entities or external references, which are refused ({exc})."
        ) from None
    except ElementTree.ParseError as exc:
        raise SvgError(f"This SVG is not well-formed XML ({exc}).") from None
    if _local(root.tag) != "svg":
        raise SvgError(f"This XML document is not an SVG (its root is <{_local(root.tag)}>).")
    return root


def _root_attributes(data: bytes) -> dict[str, str]:
    """The root element's attributes, read without parsing the rest of the document."""
    try:
        for _event, element in iterparse(io.BytesIO(bytes(data)), events=("start",)):
            if _local(element.tag) != "svg":
                raise SvgError(f"This XML document is not an SVG (its root is <{_local(element.tag)}>).")
            return dict(element.attrib)
    except DefusedXmlException as exc:
        raise SvgError(
            f"This SVG declares entities or external references, which are refused ({exc})."
        ) from None
    except ElementTree.ParseError as exc:
        raise SvgError(f"This SVG is not well-formed XML ({exc}).") from None
    raise SvgError("This SVG has no root element.")


def _length(text: str | None) -> float | None:
    """A length in pixels (``512``, ``512px``, ``10cm``), or None for a percentage, a font-relative
    unit or nothing."""
    found = _LENGTH.match(text or "")
    if found is None or found.group(2) not in _UNITS:
        return None
    value = float(found.group(1)) * _UNITS[found.group(2)]
    return value if value > 0 else None


def size(data: bytes) -> tuple[int, int]:
    """(width, height) in pixels: the root's ``width`` and ``height``, else its ``viewBox``'s, else
    (with one of them) the other from the viewBox's shape; 300x150 when the document says nothing."""
    attributes = _root_attributes(data)
    width, height = _length(attributes.get("width")), _length(attributes.get("height"))
    box = None
    numbers = re.split(r"[\s,]+", attributes.get("viewBox", "").strip())
    if len(numbers) == 4:
        try:
            box = (float(numbers[2]), float(numbers[3]))
        except ValueError:
            box = None
        if box is not None and (box[0] <= 0 or box[1] <= 0):
            box = None
    if width is None and height is None and box is not None:
        width, height = box
    elif width is None and height is not None:
        width = height * box[0] / box[1] if box else height * 2
    elif height is None and width is not None:
        height = width * box[1] / box[0] if box else width / 2
    if width is None or height is None:
        width, height = DEFAULT_SIZE
    return (max(1, min(MAX_SIDE, round(width))), max(1, min(MAX_SIDE, round(height))))


# --- metadata ------------------------------------------------------------------------------------


def _skip(text: str, position: int, end_mark: str, what: str) -> int:
    found = text.find(end_mark, position)
    if found < 0:
        raise SvgError(f"This SVG has an unfinished {what}.")
    return found + len(end_mark)


def _root_start_tag(text: str) -> tuple[int, int]:
    """Where the root element's start tag begins and ends (the index after its ``>``) in ``text``."""
    position = 1 if text.startswith("\ufeff") else 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if text.startswith("<?", position):
            position = _skip(text, position, "?>", "processing instruction")
        elif text.startswith("<!--", position):
            position = _skip(text, position, "-->", "comment")
        elif text.startswith("<!", position):  # a DOCTYPE, perhaps with an internal subset in [...]
            tag_end, bracket = text.find(">", position), text.find("[", position)
            if 0 <= bracket < tag_end:
                position = _skip(text, _skip(text, bracket, "]", "DOCTYPE"), ">", "DOCTYPE")
            else:
                position = _skip(text, position, ">", "DOCTYPE")
        elif text.startswith("<", position):
            break
        else:
            raise SvgError("This SVG has text before its root element.")
    start, quote = position, ""
    for index in range(position + 1, len(text)):
        character = text[index]
        if quote:
            quote = "" if character == quote else quote
        elif character in "\"'":
            quote = character
        elif character == ">":
            return start, index + 1
    raise SvgError("This SVG's root element has no end to its start tag.")


def _metadata_element(text: str) -> str:
    return f'<metadata id="{METADATA_ID}">{_escape(text)}</metadata>'


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def with_metadata(data: bytes, document: dict[str, Any]) -> bytes:
    """The SVG ``data`` with ``document`` as JSON in a ``<metadata>`` element, first in the root.

    An earlier ipyimagegen metadata element is replaced; nothing else changes. The JSON is ASCII,
    escaped, so any prompt is text and never markup. Raises :class:`SvgError` for a document that is
    not a well-formed UTF-8 SVG.
    """
    parse(data)  # well-formed, safe, an SVG
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        raise SvgError("This SVG is not UTF-8 text, so metadata cannot be added to it.") from None
    start, end = _root_start_tag(text)
    rest = text[end:]
    if text[end - 2] == "/":  # <svg .../>: an empty document becomes <svg ...>metadata</svg>
        name = re.match(r"<([^\s/>]+)", text[start:end])
        head = text[: end - 2].rstrip() + ">"
        rest = f"</{name.group(1) if name else 'svg'}>" + rest
    else:
        head = text[:end]
        marker = f'<metadata id="{METADATA_ID}">'
        if rest.lstrip().startswith(marker):
            rest = rest[rest.index("</metadata>", rest.index(marker)) + len("</metadata>") :]
    element = _metadata_element(json.dumps(document, ensure_ascii=True, sort_keys=True, default=str))
    return (head + element + rest).encode("utf-8")


def read_metadata(data: bytes) -> dict[str, Any]:
    """The document in an SVG's ipyimagegen ``<metadata>`` element; ``{}`` when it has none, or the
    file cannot be read safely."""
    try:
        root = parse(data)
    except SvgError:
        return {}
    for child in root:
        if _local(child.tag) == "metadata" and child.get("id") == METADATA_ID:
            try:
                document = json.loads(child.text or "")
            except json.JSONDecodeError:
                return {}
            return document if isinstance(document, dict) else {}
    return {}


# --- raster copies -------------------------------------------------------------------------------


def _inside_only(root: ElementTree.Element) -> None:
    """Remove every reference to outside the document (files, URLs) and every script, in place:
    only ``#fragment`` and ``data:`` references stay."""
    href_names = ("href", f"{{{XLINK_NAMESPACE}}}href")
    for parent in list(root.iter()):
        for child in list(parent):
            if _local(child.tag) in ("script", "foreignObject"):
                parent.remove(child)
        for name in href_names:
            value = parent.get(name)
            if value is not None and not value.strip().startswith(("#", "data:")):
                del parent.attrib[name]


def _rasteriser() -> Any:
    try:
        import resvg_py
    except ImportError:
        return None
    return resvg_py


def can_rasterise() -> bool:
    """Whether raster copies can be drawn here (the ``resvg-py`` package is installed)."""
    return _rasteriser() is not None


def rasterise(data: bytes, max_side: int = 1024) -> Image.Image:
    """An RGBA picture of the SVG, at most ``max_side`` pixels on its longer side.

    Raises :class:`SvgError` when the document cannot be read safely or drawn here.
    """
    renderer = _rasteriser()
    if renderer is None:
        raise SvgError("Drawing SVG needs the resvg-py package: pip install resvg-py.")
    root = parse(data)
    width, height = size(data)
    _inside_only(root)
    ElementTree.register_namespace("", SVG_NAMESPACE)
    ElementTree.register_namespace("xlink", XLINK_NAMESPACE)
    markup = ElementTree.tostring(root, encoding="unicode")
    scale = min(1.0, max_side / max(width, height))
    target = (
        {"width": max(1, round(width * scale))}
        if width >= height
        else {"height": max(1, round(height * scale))}
    )
    try:
        png = bytes(renderer.svg_to_bytes(svg_string=markup, **target))
    except (ValueError, RuntimeError) as exc:
        raise SvgError(f"This SVG cannot be drawn ({exc}).") from None
    with Image.open(io.BytesIO(png)) as picture:
        return picture.convert("RGBA")


def placeholder(drawing_size: tuple[int, int] | None, max_side: int = 256) -> Image.Image:
    """A grey card that says "SVG" and the drawing's size: the thumbnail of one that cannot be drawn."""
    width, height = drawing_size or DEFAULT_SIZE
    scale = max_side / max(width, height)
    card = (max(16, round(width * scale)), max(16, round(height * scale)))
    image = Image.new("RGB", card, (236, 238, 242))
    draw = ImageDraw.Draw(image)
    short = min(card)
    big, small = (
        ImageFont.load_default(size=max(10, short // 4)),
        ImageFont.load_default(size=max(8, short // 10)),
    )
    label = f"{width} × {height}" if drawing_size else "size unknown"
    centre = (card[0] / 2, card[1] / 2)
    draw.rectangle((0, 0, card[0] - 1, card[1] - 1), outline=(170, 176, 186), width=max(1, short // 64))
    draw.text((centre[0], centre[1] - short * 0.06), "SVG", font=big, fill=(70, 76, 90), anchor="md")
    draw.text((centre[0], centre[1] + short * 0.06), label, font=small, fill=(100, 106, 120), anchor="ma")
    return image


def picture(data: bytes, max_side: int = 256) -> Image.Image:
    """A raster copy to show (:func:`rasterise`), or :func:`placeholder` when it cannot be drawn."""
    try:
        return rasterise(data, max_side)
    except SvgError:
        try:
            known: tuple[int, int] | None = size(data)
        except SvgError:
            known = None
        return placeholder(known, max_side)
