"""What the results grid and History say about a picture, in the same words.

A GIF or SVG tile's badge; the viewer's size (an SVG drawing "scales"), a GIF's animation, the
estimated cost and what the gallery knows of where the picture came from; and the PNG that an SVG
drawing becomes for Edit and Variations, which take raster images.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..gallery import GalleryItem, GalleryReader
from ..pngtext import gif_timing
from ..pricing import CostEstimate

SVG = "image/svg+xml"
GIF = "image/gif"

FORMAT_BADGES = {
    GIF: ("GIF", "An animated GIF: it plays here and in the viewer"),
    SVG: ("SVG", "An SVG drawing: a picture of it here, the drawing itself in the viewer"),
}


def format_badge(mime: str | None) -> tuple[str, str]:
    """("GIF", what it means) for an animation, ("SVG", ...) for a drawing; ("", "") otherwise."""
    return FORMAT_BADGES.get(mime or "", ("", ""))


def pixel_size(data: bytes) -> list[int]:
    """[width, height] of an encoded image (an SVG's from its width, height or viewBox), or [] if unknown."""
    from ..imaging import image_size

    try:
        return list(image_size(data))
    except Exception:  # the viewer shows what the browser can
        return []


def animation_text(data: bytes, mime: str) -> str:
    """``9 frames × 200 ms, looping`` for an animated GIF (read from the file), else ""."""
    if mime != GIF:
        return ""
    try:
        delays, loop = gif_timing(data)
    except ValueError:  # a damaged GIF: the viewer shows what the browser can
        return ""
    if len(delays) < 2:
        return ""
    timing = f" × {delays[0]} ms" if len(set(delays)) == 1 else f", {sum(delays) / 1000:g} s in all"
    return f"{len(delays)} frames{timing}" + (", looping" if loop == 0 else "")


def picture_facts(data: bytes, mime: str) -> list[list[str]]:
    """The viewer's rows read from the file: ``["Size", "1536×1024"]`` (``(SVG: it scales)`` for a
    drawing) and, for an animated GIF, ``["Animation", "4 frames × 200 ms, looping"]``."""
    facts: list[list[str]] = []
    size = pixel_size(data)
    if size:
        facts.append(["Size", f"{size[0]}×{size[1]}" + (" (SVG: it scales)" if mime == SVG else "")])
    frames = animation_text(data, mime)
    if frames:
        facts.append(["Animation", frames])
    return facts


def cost_text(cost: CostEstimate | Mapping[str, Any] | None, images: int = 1) -> str:
    """``≈ $0.032`` (``free (≈ $0.032 on OpenAI)`` from an offline engine), with `` for the 2 images
    of this request`` for a request's cost; "" when there is no estimate. ``cost`` is an estimate or
    its saved form (``CostEstimate.to_dict()``, as a result's and a gallery item's metadata hold it)."""
    if isinstance(cost, Mapping):
        usd = cost.get("usd")
        if not isinstance(usd, (int, float)) or isinstance(usd, bool):
            return ""
        cost = CostEstimate(
            usd=float(usd),
            model=str(cost.get("model") or ""),
            basis=str(cost.get("basis") or ""),
            prices_read=str(cost.get("prices_read") or ""),
            billed=cost.get("billed", True) is not False,
        )
    if cost is None:
        return ""
    return cost.label() + (f" for the {images} images of this request" if images > 1 else "")


def children_of(gallery: GalleryReader | None, item_id: str) -> list[GalleryItem]:
    """The gallery's items made from ``item_id`` (none without a gallery to read)."""
    return list(gallery.children(item_id)) if gallery is not None else []


def lineage_facts(gallery: GalleryReader | None, item: Any) -> list[list[str]]:
    """When a saved image was made, what from (its parent, its uploads and mask), what was made
    from it, and its id: the viewer's rows that the gallery knows."""
    facts = [["Made", f"{item.created.astimezone():%Y-%m-%d %H:%M}"]]
    if item.parent_id:
        facts.append(["Made from", item.parent_id])
    if item.input_ids:
        uploads = len(item.input_ids)
        facts.append(
            [
                "Inputs",
                f"{uploads} image{'s' if uploads != 1 else ''}" + (" and a mask" if item.mask_id else ""),
            ]
        )
    children = children_of(gallery, item.id)
    if children:
        facts.append(
            [
                "Made from it",
                ", ".join(child.id for child in children[:5]) + (" …" if len(children) > 5 else ""),
            ]
        )
    facts.append(["Gallery id", item.id])
    return facts


def svg_as_png(data: bytes) -> bytes:
    """A PNG of an SVG drawing at its own size (see :func:`ipyimagegen.imaging.raster_file`); a drawing
    that cannot be drawn raises :class:`~ipyimagegen.errors.ImageInputError` saying what to do."""
    from ..imaging import raster_file

    return raster_file(data)[0]
