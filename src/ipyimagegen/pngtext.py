"""PNG text chunks (``tEXt``, ``zTXt``, ``iTXt``) read and written at the byte level.

Adding metadata to a PNG this way leaves the image data exactly as it was: the file is not
decoded or re-encoded, only a few chunks (length, type, data, CRC-32) are spliced in.
Writers put the new chunks just before the first ``IDAT`` chunk, so readers that stop at
the image data (and :func:`read_text`, which only seeks over it) find them quickly.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

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


def _chunks(stream: BinaryIO, wanted: tuple[bytes, ...]) -> Iterator[tuple[bytes, bytes]]:
    """(type, data) of the ``wanted`` chunks; the others are skipped with a seek, not read."""
    if stream.read(8) != PNG_SIGNATURE:
        raise PngFormatError("This is not a PNG file (its signature is missing).")
    while True:
        header = stream.read(8)
        if len(header) < 8:
            return  # truncated: what was found so far is all there is
        length, chunk_type = struct.unpack(">I4s", header)
        if chunk_type in wanted:
            data = stream.read(length)
            if len(data) < length:
                return
            stream.seek(4, os.SEEK_CUR)  # the CRC
            yield chunk_type, data
        else:
            stream.seek(length + 4, os.SEEK_CUR)
        if chunk_type == b"IEND":
            return


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
    for chunk_type, data in _chunks(stream, TEXT_CHUNK_TYPES):
        try:
            keyword, text = _decode_text_chunk(chunk_type, data)
        except (UnicodeDecodeError, zlib.error, IndexError):
            continue  # a damaged text chunk hides nothing else
        found.setdefault(keyword, text)
    return found


def with_text_chunks(data: bytes, chunks: Iterable[bytes], *, replace: Iterable[str] = ()) -> bytes:
    """The PNG ``data`` with ``chunks`` inserted before its first ``IDAT`` chunk.

    Text chunks whose keyword is in ``replace`` are left out. Nothing else changes: the image
    data is copied as it is. Raises :class:`PngFormatError` for bytes that are not a whole PNG.
    """
    if not data.startswith(PNG_SIGNATURE):
        raise PngFormatError("This is not a PNG file (its signature is missing).")
    view = memoryview(data)
    dropped = set(replace)
    new = b"".join(chunks)
    parts: list[bytes | memoryview] = [PNG_SIGNATURE]
    inserted = False
    position = len(PNG_SIGNATURE)
    while position + 8 <= len(data):
        length, chunk_type = struct.unpack_from(">I4s", data, position)
        end = position + 12 + length
        if end > len(data):
            break
        is_dropped = chunk_type in TEXT_CHUNK_TYPES and _keyword_of(data[position + 8 : end]) in dropped
        if not inserted and chunk_type in (b"IDAT", b"IEND"):
            parts.append(new)
            inserted = True
        if not is_dropped:
            parts.append(view[position:end])
        position = end
        if chunk_type == b"IEND":
            return b"".join(parts)
    raise PngFormatError("The PNG file is incomplete: it has no IEND chunk.")
