"""How the server holds its connections: read deadlines for slow clients, and uvicorn's limits.

A client that opens a connection and sends half a request must not hold it for ever: each open
connection holds a file descriptor, and once the process has used up its open-file limit, new
connections (``/health`` included) wait in the listen backlog until old ones close. So:

- the request line and headers must arrive within ``header_timeout`` seconds of the connection's
  opening, or of the request's first byte (uvicorn times out only idle kept-alive connections): a
  connection that does not finish them in time is closed;
- the body may pause at most ``body_timeout`` seconds between two reads (a slow upload that keeps
  coming is fine); then the answer is a 408 with the API's error JSON, and the connection is closed;
- at most ``max_connections`` connections are served (a request beyond them gets uvicorn's 503);
- the process's soft open-file limit is raised to its hard limit, where it is lower.

:func:`server_config` builds the uvicorn configuration with all of these: ``ipyimagegen serve``
and :class:`~ipyimagegen.server.runner.ServerThread` both run what it returns.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import anyio
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from .replies import ErrorReply

log = logging.getLogger("ipyimagegen.server")

MAX_CONNECTIONS = 1000
"""Connections served at once, at most (fewer where the open-file limit is low)."""


@dataclass(frozen=True)
class ConnectionLimits:
    """What one connection may take from the server, in seconds and connections.

    ``header_timeout``: seconds for a request's line and headers. ``body_timeout``: the longest
    pause in a request's body. ``keep_alive``: seconds an idle connection is kept for the next
    request. ``max_connections``: connections served at once (None: :data:`MAX_CONNECTIONS`, or
    half the open-file limit where that is lower). ``backlog``: connections waiting to be accepted.
    """

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive: float = 15.0
    max_connections: int | None = None
    backlog: int = 2048

    def __post_init__(self) -> None:
        for name in ("header_timeout", "body_timeout", "keep_alive"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} is a number of seconds above 0, got {getattr(self, name)!r}")
        if self.max_connections is not None and self.max_connections < 1:
            raise ValueError(f"max_connections is at least 1, got {self.max_connections!r}")


# -- the request line and headers --------------------------------------------------------------


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol (h11), closing a connection whose request line and headers do not
    arrive within :attr:`header_timeout` seconds of its opening or of the request's first byte.

    Between requests uvicorn's keep-alive timer governs; once a request's headers are in, the
    request is the application's (its body has :class:`BodyReadTimeout`).
    """

    header_timeout: ClassVar[float] = ConnectionLimits.header_timeout
    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch_headers()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_headers()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._cancel_header_deadline()  # idle until the next request's first byte: the keep-alive timer's time

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_deadline()
        super().connection_lost(exc)

    def _reading_headers(self) -> bool:
        """Whether the connection waits for a request's headers (no request of it is being answered)."""
        return self.cycle is None or self.cycle.response_complete

    def _watch_headers(self) -> None:
        """Arm the deadline while a request's headers are awaited, else cancel it."""
        if self.transport.is_closing() or not self._reading_headers():
            self._cancel_header_deadline()
        elif self._header_deadline is None:
            self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _cancel_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self._reading_headers() and not self.transport.is_closing():
            log.debug(
                "Closed a connection from %s: its request headers did not arrive within %g s.",
                self.client[0] if self.client else "?",
                self.header_timeout,
            )
            self.transport.close()


def header_deadline_protocol(header_timeout: float) -> type[HeaderDeadlineProtocol]:
    """:class:`HeaderDeadlineProtocol` with this deadline (uvicorn makes one instance a connection)."""
    return type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout": header_timeout})


# -- the body --------------------------------------------------------------------------------


class BodyTimedOut(ErrorReply):
    def __init__(self, seconds: float) -> None:
        super().__init__(
            408,
            f"The request body stopped arriving: nothing came for {seconds:g} s. Send the request again "
            "(on a slow network, send smaller images).",
            code="request_timeout",
            headers={"Connection": "close"},
        )


class BodyReadTimeout:
    """ASGI middleware: a request body that pauses longer than ``seconds`` between two reads is a 408
    (the API's error JSON, raised where the application reads the body), and the connection closes.

    Only the body is timed: once it has all arrived, waiting for the client to disconnect (as a
    streamed answer does) has no limit.
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        reading = True

        async def timed_receive() -> Message:
            nonlocal reading
            if not reading:
                return await receive()
            try:
                with anyio.fail_after(self.seconds):
                    message = await receive()
            except TimeoutError:
                reading = False
                raise BodyTimedOut(self.seconds) from None
            reading = message["type"] == "http.request" and bool(message.get("more_body", False))
            return message

        await self.app(scope, timed_receive, send)


# -- the process's open files ----------------------------------------------------------------


def raise_open_file_limit(wanted: int = 65536) -> int | None:
    """Raise this process's soft open-file limit toward its hard limit (up to ``wanted``); returns the
    soft limit now (None where the platform has none to read, as on Windows)."""
    try:
        import resource
    except ImportError:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
    for target in (
        ceiling,
        10240,
    ):  # macOS refuses more than OPEN_MAX (10240) when the hard limit is infinite
        if soft == resource.RLIM_INFINITY or soft >= target:
            break
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
            break
        except (ValueError, OSError):
            continue
    return None if soft == resource.RLIM_INFINITY else soft


def max_connections(limits: ConnectionLimits, open_files: int | None) -> int:
    """The connections to serve at once: the limits' own number, else :data:`MAX_CONNECTIONS` or half
    of ``open_files`` (the rest is for the server's own files, database and engine)."""
    if limits.max_connections is not None:
        return limits.max_connections
    if open_files is None:
        return MAX_CONNECTIONS
    return max(16, min(MAX_CONNECTIONS, open_files // 2))


# -- the configuration -----------------------------------------------------------------------


def server_config(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    log_level: str = "warning",
    access_log: bool = False,
    lifespan: Literal["auto", "on", "off"] = "auto",
    limits: ConnectionLimits | None = None,
) -> uvicorn.Config:
    """uvicorn's configuration for serving ``app``, with the read deadlines and limits of ``limits``
    (the defaults when None). Raises the process's open-file limit (:func:`raise_open_file_limit`).

    The protocol is uvicorn's h11 one wherever the server runs (headers at most 16 KB), and
    there is no WebSocket upgrade: the API has none.
    """
    limits = limits or ConnectionLimits()
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": access_log,
        "lifespan": lifespan,
        "server_header": False,
        "http": header_deadline_protocol(limits.header_timeout),
        "ws": "none",
        "timeout_keep_alive": limits.keep_alive,
        "limit_concurrency": max_connections(limits, raise_open_file_limit()),
        "backlog": limits.backlog,
    }
    return uvicorn.Config(BodyReadTimeout(app, limits.body_timeout), **options)
