"""Media types at the bottom of the package: image files as they are uploaded, MIME maps, sniffing.

Nothing here decodes an image: the types only carry bytes, names and types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

MIME_BY_FORMAT = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "svg": "image/svg+xml",
}
EXTENSION_BY_MIME = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/svg+xml": "svg",
}


def sniff_mime_type(data: bytes) -> str:
    """The image type of some bytes from their signature (``application/octet-stream`` if unknown)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    head = data[:512].lstrip().lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head):
        return "image/svg+xml"
    return "application/octet-stream"


def _size_text(n: int) -> str:
    return f"{n / 1024:.0f} KB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MB"


@dataclass(frozen=True)
class InputImage:
    """An image (or mask) file as it will be uploaded: bytes, a filename and a MIME type."""

    data: bytes = field(repr=False)
    filename: str = "image.png"
    mime_type: str = "image/png"

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "image") -> InputImage:
        mime = sniff_mime_type(data)
        ext = EXTENSION_BY_MIME.get(mime, "png")
        stem = Path(name).stem or "image"
        return cls(data=data, filename=f"{stem}.{ext}", mime_type=mime)

    def as_file_tuple(self) -> tuple[str, bytes, str]:
        """The 3-tuple requests needs to send a part with its content type."""
        return (self.filename, self.data, self.mime_type)

    def __repr__(self) -> str:
        return f"InputImage({self.filename!r}, {self.mime_type}, {_size_text(len(self.data))})"


__all__ = ["EXTENSION_BY_MIME", "MIME_BY_FORMAT", "InputImage", "sniff_mime_type"]
