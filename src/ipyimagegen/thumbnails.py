"""Thumbnails of results, made once per image and size, shared by the grid and the gallery.

The cache lives here, beside the image it belongs to (kept until the image is gone), so that the
API's result type stays free of display concerns.
"""

from __future__ import annotations

import threading
import weakref
from typing import Protocol

from . import imaging

Thumbnail = tuple[bytes, str]  # (bytes, MIME type)


class HasImageBytes(Protocol):
    data: bytes


_made: dict[int, dict[int, Thumbnail]] = {}
_lock = threading.Lock()


def _cache_of(image: HasImageBytes) -> dict[int, Thumbnail]:
    key = id(image)
    with _lock:
        cache = _made.get(key)
        if cache is None:
            cache = _made[key] = {}
            weakref.finalize(image, _forget, key)
        return cache


def _forget(key: int) -> None:
    with _lock:
        _made.pop(key, None)


def small_picture(source: object, max_side: int = 256) -> Thumbnail:
    """Small display bytes of an encoded image (bytes or a path) and their MIME type.

    An animated GIF gets a small animated GIF (it plays in its tile); an SVG drawing a raster copy.
    """
    data = imaging.encoded_bytes(source)
    return imaging.animated_thumbnail(data, max_side) or imaging.thumbnail(data, max_side=max_side)


def thumbnail_of(image: HasImageBytes, max_side: int = 256) -> Thumbnail:
    """:func:`small_picture` of ``image``, made once per size."""
    cache = _cache_of(image)
    made = cache.get(max_side)
    if made is None:
        made = cache[max_side] = small_picture(image.data, max_side)
    return made


def made_thumbnails(image: HasImageBytes) -> dict[int, Thumbnail]:
    """The thumbnails of ``image`` made so far, by size."""
    with _lock:
        return dict(_made.get(id(image), {}))
