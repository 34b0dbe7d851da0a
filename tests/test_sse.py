"""The server-sent events decoder: line ends, chunk boundaries, multi-line data, comments."""

from __future__ import annotations

import pytest

from ipyimagegen.api.sse import ServerSentEvent, iter_events, iter_lines

STREAM = (
    b": a comment\r\n"
    b"event: image_generation.partial_image\r\n"
    b'data: {"a": 1}\r\n'
    b"\r\n"
    b"data: first line\n"
    b"data:second line\n"
    b"id: 7\n"
    b"\n"
    b"event: image_generation.completed\r"
    b"data: done\r"
    b"\r"
)

EXPECTED = [
    ServerSentEvent(event="image_generation.partial_image", data='{"a": 1}'),
    ServerSentEvent(event="message", data="first line\nsecond line", id="7"),
    ServerSentEvent(event="image_generation.completed", data="done", id="7"),
]


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, len(STREAM)])
def test_events_are_the_same_however_the_stream_is_cut(chunk_size: int) -> None:
    chunks = [STREAM[i : i + chunk_size] for i in range(0, len(STREAM), chunk_size)]

    assert list(iter_events(chunks)) == EXPECTED


def test_a_crlf_split_between_chunks_is_one_line_end() -> None:
    assert list(iter_lines([b"data: x\r", b"\ndata: y\r", b"\n"])) == ["data: x", "data: y"]


def test_a_long_line_in_many_chunks() -> None:
    payload = b"A" * 200_000
    chunks = [b"data: "] + [payload[i : i + 1000] for i in range(0, len(payload), 1000)] + [b"\n\n"]

    (event,) = iter_events(chunks)

    assert event.data == payload.decode()


def test_an_unfinished_event_at_the_end_is_dropped() -> None:
    assert list(iter_events([b"data: complete\n\ndata: cut off"])) == [ServerSentEvent("message", "complete")]


def test_an_event_without_data_is_not_sent() -> None:
    assert list(iter_events([b"event: ping\n\n"])) == []
