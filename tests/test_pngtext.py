"""The one PNG chunk walker (``pngtext.png_chunks``) and what reads PNGs through it: text metadata,
chunks spliced in, and the image layer's EXIF orientation and fast-decoder checks."""

from __future__ import annotations

import ast
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ipyimagegen import imaging
from ipyimagegen.models import model_spec
from ipyimagegen.pngtext import (
    PNG_SIGNATURE,
    PngFormatError,
    png_chunks,
    png_chunks_of,
    read_text,
    text_chunk,
    with_text_chunks,
)

SOURCE = Path(imaging.__file__).parent


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(width: int = 40, height: int = 20) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), (200, 40, 10), np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def _with_chunk_before_iend(data: bytes, chunk: bytes) -> bytes:
    return data[:-12] + chunk + data[-12:]  # IEND is the last 12 bytes


def test_the_walk_finds_each_chunk_where_its_bytes_are() -> None:
    data = with_text_chunks(_png(), [text_chunk("Title", "a red field")])
    chunks = list(png_chunks_of(data))
    assert [c.type for c in chunks][0] == b"IHDR" and chunks[-1].type == b"IEND"
    assert b"tEXt" in [c.type for c in chunks]
    assert chunks[0].start == len(PNG_SIGNATURE) and chunks[-1].after == len(data)
    for before, after in zip(chunks, chunks[1:], strict=False):
        assert before.after == after.start  # the chunks tile the file
    for chunk in chunks:
        assert data[chunk.start + 4 : chunk.offset] == chunk.type
        assert struct.unpack(">I", data[chunk.start : chunk.start + 4])[0] == chunk.length
        crc = struct.unpack(">I", data[chunk.end : chunk.after])[0]
        assert crc == zlib.crc32(chunk.type + data[chunk.offset : chunk.end])


def test_the_walk_starts_where_the_stream_stands_and_stops_at_a_truncated_header() -> None:
    data = _png()
    stream = io.BytesIO(b"leading bytes" + data)
    stream.seek(len(b"leading bytes"))
    assert [c.type for c in png_chunks(stream)] == [c.type for c in png_chunks_of(data)]
    cut = data[:-6]  # IEND's header is cut short
    assert [c.type for c in png_chunks_of(cut)][-1] == b"IDAT"
    with pytest.raises(PngFormatError, match="signature"):
        list(png_chunks_of(b"GIF89a" + data))


def test_text_is_read_from_a_stream_part_way_through_a_file(tmp_path: Path) -> None:
    data = with_text_chunks(_png(), [text_chunk("Title", "a red field"), text_chunk("Note", "ünïcode")])
    path = tmp_path / "joined.bin"
    path.write_bytes(b"x" * 100 + data)
    with open(path, "rb") as stream:
        stream.seek(100)
        assert read_text(stream) == {"Title": "a red field", "Note": "ünïcode"}
    pixels = next(c for c in png_chunks_of(data) if c.type == b"IDAT")
    assert read_text(data[: pixels.offset + 2]) == {"Title": "a red field", "Note": "ünïcode"}  # cut in IDAT


def test_the_image_layer_reads_a_png_exif_orientation_through_the_walk() -> None:
    spec = model_spec("gpt-image-1")
    upright = _png(40, 20)
    kept = imaging.prepare_input_image(upright, spec)
    assert kept.data == upright  # upright and accepted: sent as it is
    turned = _with_chunk_before_iend(upright, _chunk(b"eXIf", _exif(6)))  # after the pixels
    sent = imaging.prepare_input_image(turned, spec)
    assert sent.data != turned
    assert Image.open(io.BytesIO(sent.data)).size == (20, 40)  # turned upright before it is sent


def test_only_pngtext_walks_png_chunks() -> None:
    """The chunk walk lives in one module: no other module steps over chunks to their end by hand."""
    walkers = []
    for path in SOURCE.rglob("*.py"):
        if path.name == "pngtext.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value == b"IEND":
                walkers.append(f"{path.relative_to(SOURCE)}:{node.lineno}")
    assert walkers == []
