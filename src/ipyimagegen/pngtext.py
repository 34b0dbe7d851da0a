"""Text in image files, read and written at the byte level: PNG text chunks (``tEXt``, ``zTXt``,
``iTXt``) and GIF comment extensions.

Adding metadata this way leaves the image data exactly as it was: the file is not decoded or
re-encoded, only a few chunks (length, type, data, CRC-32) or a comment block are spliced in.
Writers put the new chunks just before the first ``IDAT`` chunk, and a GIF's comment before its
first frame, so readers that stop at the image data (and :func:`read_text`, which only seeks over
it) find them quickly.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TEXT_CHUNK_TYPES = (b"tEXt", b"zTXt", b"iTXt")


class PngFormatError(ValueError):
    """The bytes are not a well-formed PNG."""


def _chunk(chunk_type: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(chunk_type))
    return struct.pack(">I", len(data)) + chunk_type + data + struct.pack(">I", crc)


def _check_keyword(keyword: str) -> bytes:
    raw = keyword.encode("latin-1")
    if not 1 <= len(raw) <= 79 or keyword != keyword.strip() or b"\x00" in raw:
        raise ValueError(f"A PNG text keyword has 1 to 79 Latin-1 characters, got {keyword!r}")
    return raw


def itxt_chunk(keyword: str, text: str, *, compress: bool = False) -> bytes:
    """An ``iTXt`` chunk: UTF-8 text, zlib-compressed when ``compress`` is true."""
    body = text.encode("utf-8")
    if compress:
        body = zlib.compress(body)
    # keyword, NUL, compression flag and method, empty language tag and translated keyword
    header = _check_keyword(keyword) + b"\x00" + bytes([int(compress), 0]) + b"\x00\x00"
    return _chunk(b"iTXt", header + body)


def text_chunk(keyword: str, text: str) -> bytes:
    """A ``tEXt`` chunk when ``text`` is Latin-1, else an ``iTXt`` chunk."""
    try:
        body = text.encode("latin-1")
    except UnicodeEncodeError:
        return itxt_chunk(keyword, text)
    return _chunk(b"tEXt", _check_keyword(keyword) + b"\x00" + body)


def _decode_text_chunk(chunk_type: bytes, data: bytes) -> tuple[str, str]:
    keyword, _, rest = data.partition(b"\x00")
    name = keyword.decode("latin-1")
    if chunk_type == b"tEXt":
        return name, rest.decode("latin-1")
    if chunk_type == b"zTXt":
        return name, zlib.decompress(rest[1:]).decode("latin-1")
    compressed, rest = rest[0], rest[2:]  # flag, method
    _language, _, rest = rest.partition(b"\x00")
    _translated, _, body = rest.partition(b"\x00")
    if compressed:
        body = zlib.decompress(body)
    return name, body.decode("utf-8")


def _keyword_of(data: bytes) -> str:
    return data[:80].partition(b"\x00")[0].decode("latin-1")


class PngChunk(NamedTuple):
    """Where one chunk of a PNG lies: its type, and its contents' offset and length in the file."""

    type: bytes
    offset: int
    length: int

    @property
    def start(self) -> int:
        """Where the whole chunk (length, type, contents, CRC) starts."""
        return self.offset - 8

    @property
    def end(self) -> int:
        """Where the contents end."""
        return self.offset + self.length

    @property
    def after(self) -> int:
        """Where the whole chunk ends, after its CRC."""
        return self.end + 4


def png_chunks(stream: BinaryIO) -> Iterator[PngChunk]:
    """Each chunk of the PNG that ``stream`` starts with, in order, up to ``IEND``: the walk reads only
    chunk headers and seeks over contents (a caller may read them meanwhile). A truncated header ends
    the walk; a chunk may claim more bytes than the file has left (check :attr:`PngChunk.after`).
    Raises :class:`PngFormatError` when the signature is missing."""
    base = stream.tell()
    if stream.read(8) != PNG_SIGNATURE:
        raise PngFormatError("This is not a PNG file (its signature is missing).")
    position = 8
    while True:
        stream.seek(base + position)
        header = stream.read(8)
        if len(header) < 8:
            return
        length, chunk_type = struct.unpack(">I4s", header)
        chunk = PngChunk(chunk_type, position + 8, length)
        yield chunk
        if chunk_type == b"IEND":
            return
        position = chunk.after


def png_chunks_of(data: bytes) -> Iterator[PngChunk]:
    """:func:`png_chunks` of PNG bytes (nothing is copied)."""
    return png_chunks(io.BytesIO(data))


def read_text(source: bytes | str | os.PathLike[str] | BinaryIO) -> dict[str, str]:
    """Every text entry of a PNG (file path, bytes or binary file), keyword to text.

    Only text chunks are read; the image data is skipped. A keyword that appears twice keeps
    its first value. Raises :class:`PngFormatError` when the source is not a PNG.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _read_text(io.BytesIO(bytes(source)))
    if isinstance(source, (str, os.PathLike)):
        with open(Path(source), "rb") as stream:
            return _read_text(stream)
    return _read_text(source)


def _read_text(stream: BinaryIO) -> dict[str, str]:
    found: dict[str, str] = {}
    base = stream.tell()
    for chunk in png_chunks(stream):
        if chunk.type not in TEXT_CHUNK_TYPES:
            continue
        stream.seek(base + chunk.offset)
        data = stream.read(chunk.length)
        if len(data) < chunk.length:
            break  # truncated: what was found so far is all there is
        try:
            keyword, text = _decode_text_chunk(chunk.type, data)
        except (UnicodeDecodeError, zlib.error, IndexError):
            continue  # a damaged text chunk hides nothing else
        found.setdefault(keyword, text)
    return found


def with_text_chunks(data: bytes, chunks: Iterable[bytes], *, replace: Iterable[str] = ()) -> bytes:
    """The PNG ``data`` with ``chunks`` inserted before its first ``IDAT`` chunk.

    Text chunks whose keyword is in ``replace`` are left out. Nothing else changes: the image
    data is copied as it is. Raises :class:`PngFormatError` for bytes that are not a whole PNG.
    """
    view = memoryview(data)
    dropped = set(replace)
    new = b"".join(chunks)
    parts: list[bytes | memoryview] = [PNG_SIGNATURE]
    inserted = False
    for chunk in png_chunks_of(data):
        if chunk.after > len(data):
            break
        is_dropped = chunk.type in TEXT_CHUNK_TYPES and _keyword_of(data[chunk.offset : chunk.end]) in dropped
        if not inserted and chunk.type in (b"IDAT", b"IEND"):
            parts.append(new)
            inserted = True
        if not is_dropped:
            parts.append(view[chunk.start : chunk.after])
        if chunk.type == b"IEND":
            return b"".join(parts)
    raise PngFormatError("The PNG file is incomplete: it has no IEND chunk.")


# --- GIF comment extensions ------------------------------------------------------------------------

GIF_SIGNATURES = (b"GIF87a", b"GIF89a")
_GIF_COMMENT = 0xFE
_GIF_GRAPHIC_CONTROL = 0xF9


class GifFormatError(ValueError):
    """The bytes are not a well-formed GIF."""


def _colour_table_bytes(packed: int) -> int:
    return 3 * (1 << ((packed & 7) + 1)) if packed & 0x80 else 0


def _sub_blocks_end(data: bytes, position: int) -> int:
    """The index after a chain of data sub-blocks (each a length byte and that many bytes, then 0)."""
    while True:
        if position >= len(data):
            raise GifFormatError("The GIF file is incomplete: a block has no end.")
        length = data[position]
        position += 1
        if length == 0:
            return position
        position += length


def _sub_blocks(data: bytes, position: int) -> bytes:
    parts = []
    while position < len(data) and data[position]:
        length = data[position]
        parts.append(data[position + 1 : position + 1 + length])
        position += 1 + length
    return b"".join(parts)


def _gif_blocks(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(kind, start, end) of each block after a GIF's screen descriptor and colour table: kind is the
    extension's label (0x21 blocks), 0x2C for a frame, 0x3B for the trailer."""
    if data[:6] not in GIF_SIGNATURES or len(data) < 13:
        raise GifFormatError("This is not a GIF file (its signature is missing).")
    position = 13 + _colour_table_bytes(data[10])
    while position < len(data):
        introducer = data[position]
        if introducer == 0x3B:
            yield 0x3B, position, position + 1
            return
        if introducer == 0x21 and position + 1 < len(data):
            end = _sub_blocks_end(data, position + 2)
            yield data[position + 1], position, end
        elif introducer == 0x2C and position + 10 <= len(data):
            table = _colour_table_bytes(data[position + 9])
            end = _sub_blocks_end(data, position + 10 + table + 1)  # after the LZW code size
            yield 0x2C, position, end
        else:
            raise GifFormatError(f"The GIF file is damaged: an unknown block at byte {position}.")
        position = end
    raise GifFormatError("The GIF file is incomplete: it has no trailer.")


def read_gif_comments(source: bytes | str | os.PathLike[str]) -> list[str]:
    """The texts of a GIF's comment extensions (UTF-8, damaged bytes replaced), in order.

    Raises :class:`GifFormatError` when the source is not a GIF; a damaged end keeps what came before.
    """
    data = Path(source).read_bytes() if isinstance(source, (str, os.PathLike)) else bytes(source)
    found: list[str] = []
    try:
        for kind, start, _end in _gif_blocks(data):
            if kind == _GIF_COMMENT:
                found.append(_sub_blocks(data, start + 2).decode("utf-8", "replace"))
    except GifFormatError:
        if not found and data[:6] not in GIF_SIGNATURES:
            raise
    return found


def gif_comment_block(text: str) -> bytes:
    """A GIF comment extension holding ``text`` (UTF-8), in sub-blocks of at most 255 bytes."""
    body = text.encode("utf-8")
    parts = [b"\x21\xfe"]
    for start in range(0, len(body), 255):
        piece = body[start : start + 255]
        parts += [bytes([len(piece)]), piece]
    parts.append(b"\x00")
    return b"".join(parts)


def with_gif_comment(data: bytes, text: str, *, replace_prefix: str | None = None) -> bytes:
    """The GIF ``data`` with a comment extension holding ``text`` before its first frame.

    Comments whose text starts with ``replace_prefix`` are left out. The frames are copied as they
    are. Raises :class:`GifFormatError` for bytes that are not a whole GIF.
    """
    data = bytes(data)
    dropped = replace_prefix.encode("utf-8") if replace_prefix else None
    parts: list[bytes] = []
    inserted = False
    first = None
    for kind, start, end in _gif_blocks(data):
        if first is None:
            first = start
            parts.append(data[:start])
        if not inserted and kind in (0x2C, _GIF_GRAPHIC_CONTROL, 0x3B):
            parts.append(gif_comment_block(text))
            inserted = True
        if kind == _GIF_COMMENT and dropped is not None and _sub_blocks(data, start + 2).startswith(dropped):
            continue
        parts.append(data[start:end])
        if kind == 0x3B:
            return b"".join(parts)
    raise GifFormatError("The GIF file is incomplete: it has no trailer.")


def gif_frames(data: bytes) -> tuple[int, tuple[int, int]]:
    """How many frames a GIF has and the size of the canvas they are drawn on (its screen, grown to
    hold any frame that reaches past it, as Pillow grows it), read from its blocks without decoding
    a pixel.

    Raises :class:`GifFormatError` for bytes that are not a whole GIF.
    """
    data = bytes(data)
    count = 0
    width, height = int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    for kind, start, _end in _gif_blocks(data):
        if kind == 0x2C:
            count += 1
            left, top, frame_width, frame_height = struct.unpack("<HHHH", data[start + 1 : start + 9])
            width, height = max(width, left + frame_width), max(height, top + frame_height)
    return count, (width, height)


def gif_timing(data: bytes) -> tuple[list[int], int | None]:
    """Each frame's delay in milliseconds and the loop count (0: forever; None: no loop extension,
    it plays once) of a GIF, read from its blocks without decoding a pixel.

    Raises :class:`GifFormatError` for bytes that are not a whole GIF.
    """
    data = bytes(data)
    delays: list[int] = []
    delay, loop = 0, None
    for kind, start, _end in _gif_blocks(data):
        if kind == _GIF_GRAPHIC_CONTROL and data[start + 2] >= 4:
            delay = 10 * int.from_bytes(data[start + 4 : start + 6], "little")
        elif kind == 0xFF and data[start + 2] == 11 and data[start + 3 : start + 14] == b"NETSCAPE2.0":
            loops = data[start + 14 : start + 18]
            if len(loops) == 4 and loops[0] == 3 and loops[1] == 1:
                loop = int.from_bytes(loops[2:4], "little")
        elif kind == 0x2C:
            delays.append(delay)
            delay = 0
    return delays, loop
