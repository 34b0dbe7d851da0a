"""How long a client waits for its call, and noticing when it stops waiting.

A call queued behind a busy room is worth sending only while somebody waits for its answer. The
official OpenAI SDKs say how long they wait (``x-stainless-read-timeout``, seconds, on every request;
ipyimagegen's client sends it too), and a client that gives up closes its connection.
:func:`client_timeout` reads the first; :func:`unless_client_leaves` runs a call's work and cancels it
when the second happens (the ASGI server then reports ``http.disconnect``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable
from typing import Any, TypeVar

from starlette.requests import Request

from .replies import ErrorReply

TIMEOUT_HEADER = "x-stainless-read-timeout"
"""The request header in which a client says how many seconds it waits for an answer."""

T = TypeVar("T")


def client_timeout(request: Request) -> float | None:
    """The seconds the client says it waits (None when it does not say, or says nonsense)."""
    try:
        seconds = float(request.headers.get(TIMEOUT_HEADER, ""))
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None


class ClientGone(ErrorReply):
    """The client closed its connection before the answer: nobody reads this (it is logged)."""

    def __init__(self) -> None:
        super().__init__(
            499, "The client closed the connection before the answer.", type="requests", code="client_gone"
        )


async def unless_client_leaves(request: Request, work: Awaitable[T]) -> T:
    """``work``'s result; :class:`ClientGone` (``work`` cancelled) when the client disconnects first.
    Call it once the request's body has been read."""
    task = asyncio.ensure_future(work)
    task.add_done_callback(_seen)  # an error of work cancelled on the way out is not left unread
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            task.cancel()
        if not gone.done():
            gone.cancel()
    if task.done() and not task.cancelled():
        return task.result()
    with contextlib.suppress(BaseException):
        await task  # let it finish its cancellation (its clean-up runs)
    raise ClientGone()


def _seen(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


async def _disconnected(request: Request) -> None:
    """Returns when the client has gone (the ASGI server's ``http.disconnect``)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
