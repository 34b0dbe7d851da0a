"""A decoder for server-sent events (the ``text/event-stream`` of streamed image calls).

It follows the event-stream rules of the HTML standard: lines end with CR LF, LF or CR;
``event:`` names an event, ``data:`` lines are joined with newlines, a blank line sends it,
lines starting with ``:`` are comments. Lines may be megabytes long (base64 images).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

_LINE_END = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True)
class ServerSentEvent:
    """One event: its name (``message`` when unnamed), data and id."""

    event: str
    data: str
    id: str | None = None


def iter_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """The lines of a byte stream cut anywhere, without their line ends."""
    buffer = bytearray()
    scan_from = 0
    for chunk in chunks:
        buffer += chunk
        start = 0
        while True:
            match = _LINE_END.search(buffer, max(start, scan_from))
            if match is None:
                break
            if match.group() == b"\r" and match.end() == len(buffer):
                break  # a CR at the end may be the first half of CR LF: wait for more
            yield buffer[start : match.start()].decode("utf-8", "replace")
            start = match.end()
        del buffer[:start]
        scan_from = max(0, len(buffer) - 1)
    if buffer:
        yield bytes(buffer.rstrip(b"\r")).decode("utf-8", "replace")


def iter_events(chunks: Iterable[bytes]) -> Iterator[ServerSentEvent]:
    """The events of a byte stream (an unfinished event at the end is dropped, as the standard says)."""
    event = ""
    data: list[str] = []
    last_id: str | None = None
    for line in iter_lines(chunks):
        if not line:
            if data:
                yield ServerSentEvent(event=event or "message", data="\n".join(data), id=last_id)
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id" and "\0" not in value:
            last_id = value
