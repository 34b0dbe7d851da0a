"""Sharing a picture on a workshop server's class wall (what the host's ``/admin`` page shows).

An ``ipyimagegen serve --class-wall`` server names its wall in a header of ``GET /models``
(:data:`WALL_HEADER`); a client shares a picture there with a multipart ``POST`` of ``image``
and ``prompt``. The picture goes smaller than it was made (:data:`SHARED_SIDE`): the wall shows
thumbnails, and a room of participants should not upload 4K PNGs to it.
"""

from __future__ import annotations

from ..imaging import thumbnail

WALL_HEADER = "x-ipyimagegen-wall"
"""The header of ``GET /models`` that names the server's class wall (a path, such as ``/v1/wall``)."""
SHARED_SIDE = 1024
"""The longest side of a shared picture, in pixels."""
MAX_SHARED_PROMPT = 4000
"""The most characters of a prompt shown beside a shared picture."""

_EXTENSIONS = {"image/jpeg": "jpg", "image/webp": "webp", "image/png": "png"}


def shared_file(image: bytes) -> tuple[str, bytes, str]:
    """The multipart file part of a picture to share: ``(filename, bytes, mime)``, at most
    :data:`SHARED_SIDE` pixels on its longest side (JPEG, or WebP/PNG where it is transparent)."""
    data, mime = thumbnail(image, SHARED_SIDE)
    return f"shared.{_EXTENSIONS.get(mime, 'png')}", data, mime
