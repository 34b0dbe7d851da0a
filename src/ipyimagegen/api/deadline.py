"""A whole call's deadline: connecting, every try, the waits between them and each download.

A socket timeout bounds one read, so a server that sends a byte a second would hold a call
for as long as it likes. Bodies are read here as they arrive, the socket's read timeout cut to
what is left of the call after every piece, and the read stops when the deadline passes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import requests
from urllib3.exceptions import ReadTimeoutError

CHUNK_BYTES = 256 * 1024
MIN_WAIT_S = 0.01


class DeadlinePassed(Exception):
    """The call's time ran out while a body was still arriving."""


class Deadline:
    """``seconds`` from now (monotonic clock)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.ends - time.monotonic()

    def passed(self) -> bool:
        return self.remaining() <= 0

    def timeout(self, connect: float) -> tuple[float, float]:
        """A ``(connect, read)`` timeout for requests that ends no later than the deadline."""
        left = max(MIN_WAIT_S, self.remaining())
        return (min(connect, left), left)


def _wait_at_most(response: requests.Response, seconds: float) -> None:
    """Cut the socket's read timeout to ``seconds``, so a stalled server is noticed in time."""
    connection = getattr(response.raw, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None and hasattr(sock, "settimeout"):
        sock.settimeout(max(MIN_WAIT_S, seconds))


def iter_body(response: requests.Response, deadline: Deadline) -> Iterator[bytes]:
    """The body's bytes as they arrive (decoded as requests would); :class:`DeadlinePassed` past the deadline.

    Errors of the transfer itself are urllib3's (``ReadTimeoutError``, ``ProtocolError``).
    """
    raw = response.raw
    while True:
        if deadline.passed():
            raise DeadlinePassed()
        _wait_at_most(response, deadline.remaining())
        try:
            chunk = raw.read1(CHUNK_BYTES, decode_content=True)
        except ReadTimeoutError:
            if deadline.passed():
                raise DeadlinePassed() from None
            raise
        if not chunk:
            return
        yield chunk


def read_body(response: requests.Response, deadline: Deadline) -> bytes:
    """The whole body within the deadline (the caller keeps it: ``response.content`` is not filled)."""
    return b"".join(iter_body(response, deadline))
