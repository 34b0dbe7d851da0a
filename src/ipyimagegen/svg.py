"""SVG results: read safely, their size, the metadata kept in them, and raster copies for display.

An SVG may come from anywhere (a model, a server), so its markup is never trusted: it is parsed
with ``defusedxml`` (entity declarations and external references refused, nothing fetched) and
refused when nested deeper than :data:`MAX_DEPTH`. A raster copy is drawn by resvg from a copy of
the document with every reference to a file or URL outside it removed (only ``#fragment`` links
and embedded PNG, JPEG, GIF and WebP pictures stay), after checking that it is not built to be
costly (:data:`MAX_DRAWN_ELEMENTS`, :data:`MAX_LAYERS`), in a process of its own
(:mod:`ipyimagegen.svg_raster`) with a time and a memory limit: a drawing that would crash or stall
resvg becomes an :class:`SvgError`, never a stopped kernel. Metadata goes into a ``<metadata>``
element as escaped JSON text, spliced in after the root element's start tag, so the rest of the
file stays byte for byte as it was.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import re
import signal
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse
from PIL import Image, ImageDraw, ImageFont

from . import svg_raster
from .media import sniff_mime_type

SVG_NAMESPACE = "http://www.w3.org/2000/svg"
XLINK_NAMESPACE = "http://www.w3.org/1999/xlink"
METADATA_ID = "ipyimagegen-metadata"
DEFAULT_SIZE = (300, 150)
"""The size a browser gives an SVG that says nothing about its size (CSS's replaced-element default)."""
MAX_SIDE = 16_384
"""The largest width or height believed; a larger one is clamped (a raster copy is never larger)."""
RASTER_MAX_SIDE = 4096
"""The longer side of the picture an SVG drawing becomes where a raster image is needed (an Edit
or Variations input, a contact sheet): its own size, at most this."""

MAX_DEPTH = 64
"""The deepest nesting of elements read; a deeper document is refused (drawing and writing it out
recurse, and nothing drawn by hand or by a model nests so deep)."""
MAX_DRAWN_ELEMENTS = 20_000
"""The most elements a drawing may have to be drawn, counting each copy a ``<use>`` makes."""
MAX_LAYERS = 100
"""The most elements a drawing may have to be drawn on a layer of their own (filtered, masked,
clipped or translucent), counting each copy a ``<use>`` makes: each is a picture drawn and blended
apart, which is what makes a small file slow to draw."""
RASTER_TIMEOUT_S = 10.0
"""How long drawing one SVG may take before it is stopped."""
RASTER_MEMORY_BYTES = 1 << 30
"""The address space the drawing process may use (where the platform enforces it: Linux, BSD)."""

_UNITS = {"": 1.0, "px": 1.0, "pt": 4 / 3, "pc": 16.0, "mm": 96 / 25.4, "cm": 96 / 2.54, "in": 96.0}
_LENGTH = re.compile(r"\s*([+]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([a-z%]*)\s*$")
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""Characters XML 1.0 cannot hold, even escaped (control characters, half surrogate pairs)."""
_PICTURE_DATA_URL = re.compile(r"\s*data:image/(?:png|jpeg|jpg|gif|webp)\s*[;,]", re.IGNORECASE)
_OUTSIDE_URL = re.compile(r"""url\((?![\s'"]*#)[^)]*(?:\)|\Z)""", re.IGNORECASE)
_CSS_IMPORT = re.compile(r"@import[^;]*;?", re.IGNORECASE)
_INSIDE_URL = re.compile(r"""url\([\s'"]*#([^'")\s]+)""")
_DRAWS_ITS_HREF = frozenset({"use", "feImage", "pattern", "filter"})
_CHEAP_TO_REPEAT = frozenset({"linearGradient", "radialGradient"})
"""Elements that others refer to without drawing them again (a gradient is drawn as a paint)."""
_NOT_DRAWN_IN_PLACE = frozenset(
    {"defs", "symbol", "mask", "clipPath", "pattern", "marker", "filter", "style", "script", "metadata"}
    | _CHEAP_TO_REPEAT
)
"""Elements drawn only where something refers to them (or never)."""
_CSS_SELECTOR_PART = re.compile(r"[.#]?[-\w]+|\*")
_WORKER = Path(svg_raster.__file__)


class SvgError(ValueError):
    """The bytes are not an SVG document that can be read safely, or it cannot be drawn here."""


def is_svg(data: bytes) -> bool:
    """Whether ``data`` looks like an SVG document (by its first bytes)."""
    return sniff_mime_type(data) == "image/svg+xml"


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


@contextlib.contextmanager
def _reading() -> Iterator[None]:
    """Turn what the XML parser raises into :class:`SvgError`, with what it means."""
    try:
        yield
    except DefusedXmlException as exc:
        raise SvgError(
            f"This SVG declares entities or external references, which are refused ({exc})."
        ) from None
    except ElementTree.ParseError as exc:
        raise SvgError(f"This SVG is not well-formed XML ({exc}).") from None
    except RecursionError:
        raise SvgError(_too_deep()) from None


def _too_deep() -> str:
    return f"This SVG nests its elements more than {MAX_DEPTH} deep, which is refused."


def _check_root(element: ElementTree.Element) -> None:
    if _local(element.tag) != "svg":
        raise SvgError(f"This XML document is not an SVG (its root is <{_local(element.tag)}>).")


def parse(data: bytes, *, max_elements: int | None = None) -> ElementTree.Element:
    """The document's root element, parsed safely: no entities, no external references, nothing
    nested more than :data:`MAX_DEPTH` deep (and, with ``max_elements``, no more elements)."""
    root: ElementTree.Element | None = None
    depth = count = 0
    with _reading():
        for event, element in iterparse(io.BytesIO(bytes(data)), events=("start", "end")):
            if event == "end":
                depth -= 1
                continue
            if root is None:
                _check_root(element)
                root = element
            depth += 1
            count += 1
            if depth > MAX_DEPTH:
                raise SvgError(_too_deep())
            if max_elements is not None and count > max_elements:
                raise SvgError(_too_many(max_elements))
    if root is None:
        raise SvgError("This SVG has no root element.")
    return root


def _too_many(limit: int) -> str:
    return f"This SVG has more than {limit:,} elements to draw (counting what each <use> repeats)."


def _root_attributes(data: bytes) -> dict[str, str]:
    """The root element's attributes, read without parsing the rest of the document."""
    with _reading():
        for _event, element in iterparse(io.BytesIO(bytes(data)), events=("start",)):
            _check_root(element)
            return dict(element.attrib)
    raise SvgError("This SVG has no root element.")


def _length(text: str | None) -> float | None:
    """A length in pixels (``512``, ``512px``, ``10cm``), or None for a percentage, a font-relative
    unit or nothing."""
    if len(text or "") > 64:  # no length is longer; a long one is not read (nor backtracked over)
        return None
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


def xml_text(text: str) -> str:
    """``text`` escaped for an XML element, with characters XML cannot hold replaced by U+FFFD."""
    return escape(_NOT_XML.sub("\ufffd", text))


def _metadata_element(text: str) -> str:
    return f'<metadata id="{METADATA_ID}">{xml_text(text)}</metadata>'


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


def _is_inside(reference: str) -> bool:
    """Whether a link stays inside the document: a ``#fragment``, or an embedded PNG, JPEG, GIF or
    WebP picture (never an embedded SVG: it would escape every check made here)."""
    text = reference.strip()
    return text.startswith("#") or _PICTURE_DATA_URL.match(text) is not None


def _without_outside_urls(css: str) -> str:
    """CSS (a ``style`` attribute or element) with ``@import`` rules and ``url(...)`` references to
    anything but a ``#fragment`` removed."""
    return _OUTSIDE_URL.sub("none", _CSS_IMPORT.sub("", css))


def _inside_only(root: ElementTree.Element) -> None:
    """Remove every reference to outside the document and every script, in place: in any attribute
    named ``href`` (whatever its namespace) only what :func:`_is_inside` allows stays, and outside
    ``url(...)`` references leave attributes and style sheets."""
    for parent in list(root.iter()):
        for child in list(parent):
            if _local(child.tag) in ("script", "foreignObject"):
                parent.remove(child)
        for name, value in list(parent.attrib.items()):
            if _local(name) == "href":
                if not _is_inside(value):
                    del parent.attrib[name]
            elif "url(" in value.lower() or "@import" in value.lower():
                parent.set(name, _without_outside_urls(value))
        if _local(parent.tag) == "style" and parent.text:
            parent.text = _without_outside_urls(parent.text)


def _references(element: ElementTree.Element) -> list[str]:
    """The ids of what drawing ``element`` draws again: a ``<use>``'s, an ``<feImage>``'s or a
    pattern's or filter's template (any attribute named ``href``), and every ``url(#id)`` it paints,
    clips, masks, marks or filters with."""
    found = []
    renders_href = _local(element.tag) in _DRAWS_ITS_HREF
    for name, value in element.attrib.items():
        if _local(name) == "href":
            if renders_href and value.strip().startswith("#"):
                found.append(value.strip()[1:])
        elif "url(" in value:
            found += _INSIDE_URL.findall(value)
    return found


def _makes_layer(name: str, value: str) -> bool:
    """Whether a property (an attribute, or a CSS declaration) draws its element on a layer apart."""
    name, value = name.strip().lower(), value.strip().lower().removesuffix("!important").strip()
    if name == "opacity":
        try:
            return float(value.rstrip("%")) / (100 if value.endswith("%") else 1) < 1
        except ValueError:
            return False
    return name in ("filter", "mask", "clip-path") and value not in ("", "none")


def _declares_layer(css: str) -> bool:
    return any(_makes_layer(*part.split(":", 1)) for part in css.split(";") if ":" in part)


def _layered_by_style_sheets(root: ElementTree.Element) -> set[str]:
    """What the ``<style>`` rules that make layers select (``*``, tag names, ``.class``, ``#id``):
    every part of their selectors, a little more than they select."""
    found: set[str] = set()
    for element in root.iter():
        if _local(element.tag) == "style":
            for rule in (element.text or "").split("}"):
                selectors, brace, body = rule.rpartition("{")
                if brace and _declares_layer(body):
                    found.update(_CSS_SELECTOR_PART.findall(selectors))
    return found


def _is_layer(element: ElementTree.Element, selected: set[str]) -> bool:
    if any(_makes_layer(_local(name), value) for name, value in element.attrib.items() if name != "style"):
        return True
    if _declares_layer(element.get("style") or ""):
        return True
    if not selected:
        return False
    names = {"*", _local(element.tag), f"#{element.get('id')}"}
    names.update(f".{name}" for name in (element.get("class") or "").split())
    return not names.isdisjoint(selected)


def _check_cost(root: ElementTree.Element) -> None:
    """Refuse a drawing built to be costly: more than :data:`MAX_DRAWN_ELEMENTS` elements, or
    :data:`MAX_LAYERS` drawn on layers of their own, or nested deeper than :data:`MAX_DEPTH`, each
    ``<use>`` (or pattern, mask, clip path, marker, filter image) counting the copy it draws, so
    that a few ``<use>`` of ``<use>`` cannot multiply a blur ten thousand times or a chain of them
    nest a thousand deep; or an element that draws one it is inside of. Walked without recursion."""
    by_id = {element.get("id"): element for element in root.iter() if element.get("id")}
    selected = _layered_by_style_sheets(root)
    cap = max(MAX_DRAWN_ELEMENTS, MAX_LAYERS) + 1
    cost: dict[int, tuple[int, int, int]] = {}  # id(element): (elements, layers, depth) it draws
    open_now: set[int] = set()  # begun, not finished: the path from the root
    stack: list[tuple[ElementTree.Element, bool]] = [(root, False)]

    def parts(element: ElementTree.Element) -> list[ElementTree.Element]:
        """What drawing ``element`` draws: its children, except those drawn only where referred to,
        and what it refers to."""
        drawn = [child for child in element if _local(child.tag) not in _NOT_DRAWN_IN_PLACE]
        targets = (by_id.get(name) for name in _references(element))
        return drawn + [t for t in targets if t is not None and _local(t.tag) not in _CHEAP_TO_REPEAT]

    while stack:
        element, finishing = stack.pop()
        key = id(element)
        if finishing:
            open_now.discard(key)
            below = [cost[id(part)] for part in parts(element)]
            elements = min(cap, 1 + sum(part[0] for part in below))
            layers = min(cap, _is_layer(element, selected) + sum(part[1] for part in below))
            depth = 1 + max((part[2] for part in below), default=0)
            if elements > MAX_DRAWN_ELEMENTS:
                raise SvgError(_too_many(MAX_DRAWN_ELEMENTS))
            if layers > MAX_LAYERS:
                raise SvgError(
                    f"This SVG has more than {MAX_LAYERS} filtered, masked, clipped or translucent "
                    "elements to draw (counting what each <use> repeats), which would take very long."
                )
            if depth > MAX_DEPTH:
                raise SvgError(_too_deep() + " (Counting what each <use> repeats.)")
            cost[key] = (elements, layers, depth)
            continue
        if key in cost:
            continue
        open_now.add(key)
        stack.append((element, True))
        for part in parts(element):
            if id(part) in open_now:
                raise SvgError("This SVG has an element that draws an element it is inside of again.")
            if id(part) not in cost:
                stack.append((part, False))


def _rasteriser() -> Any:
    """Where resvg-py is installed (its module spec), or None."""
    return importlib.util.find_spec("resvg_py")


def can_rasterise() -> bool:
    """Whether raster copies can be drawn here (the ``resvg-py`` package is installed)."""
    return _rasteriser() is not None


def _fitted(drawing_size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """The box a picture of ``drawing_size`` is drawn into: its size, or smaller to fit ``max_side``."""
    width, height = drawing_size
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _draw_elsewhere(markup: str, box: tuple[int, int], search_path: str) -> bytes:
    """PNG bytes of ``markup`` fitted into ``box``, drawn by resvg in a process of its own
    (:mod:`ipyimagegen.svg_raster`) that may take :data:`RASTER_TIMEOUT_S` and
    :data:`RASTER_MEMORY_BYTES`, with an empty folder to look for files in."""
    if not sys.executable:
        raise SvgError("The SVG renderer could not be started: this Python does not know its own program.")
    with tempfile.TemporaryDirectory(prefix="ipyimagegen-svg-") as empty:
        request = {
            "svg": markup,
            "width": box[0],
            "height": box[1],
            "resources_dir": empty,
            "memory_bytes": RASTER_MEMORY_BYTES,
            "search_path": search_path,
        }
        try:
            done = subprocess.run(
                [sys.executable, "-I", str(_WORKER)],
                input=json.dumps(request).encode("utf-8"),
                capture_output=True,
                timeout=RASTER_TIMEOUT_S,
                cwd=empty,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise SvgError(
                f"This SVG took more than {RASTER_TIMEOUT_S:g} s to draw, so drawing it was stopped."
            ) from None
        except OSError as exc:
            raise SvgError(f"The SVG renderer could not be started ({exc}).") from None
    if done.returncode == 0:
        return done.stdout
    if done.returncode == svg_raster.EXIT_REFUSED:
        reason = done.stderr.decode("utf-8", "replace").strip()
        raise SvgError(f"This SVG cannot be drawn ({reason or 'resvg refused it'}).")
    if done.returncode == svg_raster.EXIT_NO_RENDERER:
        raise SvgError("Drawing SVG needs the resvg-py package: pip install resvg-py.")
    if done.returncode == svg_raster.EXIT_MEMORY:
        raise SvgError(f"This SVG needs more than {RASTER_MEMORY_BYTES >> 20} MB to draw.")
    raise SvgError(
        f"The SVG renderer crashed on this drawing ({_ending(done.returncode)}), or it needs more "
        f"than {RASTER_MEMORY_BYTES >> 20} MB to draw."
    )


def _ending(returncode: int) -> str:
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return f"exit status {returncode}"


def drawable_markup(data: bytes) -> str:
    """The markup that is drawn for an SVG document: read safely (:func:`parse`), refused when built
    to be costly (too many elements, filters or levels, counting what each ``<use>`` repeats), with
    scripts and every reference to outside the document removed.

    Raises :class:`SvgError` for a document that cannot be read or is refused.
    """
    root = parse(data, max_elements=MAX_DRAWN_ELEMENTS)
    with _reading():
        _check_cost(root)
        _inside_only(root)
        ElementTree.register_namespace("", SVG_NAMESPACE)
        ElementTree.register_namespace("xlink", XLINK_NAMESPACE)
        return ElementTree.tostring(root, encoding="unicode")


def rasterise(data: bytes, max_side: int = 1024) -> Image.Image:
    """An RGBA picture of the SVG, at most ``max_side`` pixels on its longer side.

    It is drawn from :func:`drawable_markup` in a process of its own, which may take
    :data:`RASTER_TIMEOUT_S` and :data:`RASTER_MEMORY_BYTES`. Raises :class:`SvgError` when the
    document cannot be read safely, is refused, or cannot be drawn here (no resvg-py, too slow, too
    large, or resvg fails or crashes on it).
    """
    found = _rasteriser()
    if found is None:
        raise SvgError("Drawing SVG needs the resvg-py package: pip install resvg-py.")
    markup = drawable_markup(data)
    box = _fitted(size(data), max_side)
    origin = getattr(found, "origin", None)
    search_path = str(Path(origin).parent.parent) if origin else ""
    png = _draw_elsewhere(markup, box, search_path)
    try:
        picture = Image.open(io.BytesIO(png))
    except (OSError, ValueError) as exc:
        raise SvgError(f"The SVG renderer gave back no picture ({exc}).") from None
    if picture.width > box[0] + 1 or picture.height > box[1] + 1:
        raise SvgError(f"The SVG renderer drew {picture.width}x{picture.height} pixels, not at most {box}.")
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
    """A raster copy to show as a thumbnail (:func:`rasterise`), or :func:`placeholder` when it
    cannot be drawn. Where a real picture is needed, use :func:`rasterise`, which says why not."""
    try:
        return rasterise(data, max_side)
    except SvgError:
        try:
            known: tuple[int, int] | None = size(data)
        except SvgError:
            known = None
        return placeholder(known, max_side)
