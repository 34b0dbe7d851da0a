"""Bounds on what one request, and all of them together, may make the server hold: the body's size
(a 413 with the API's error JSON, enforced while it streams in) and the engine's pixels at once."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..api.types import ImageRequest
from ..models import auto_size, model_spec, parse_size
from .params import uploads
from .replies import ErrorReply


def _megabytes(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n % 2**20 else f"{n // 2**20} MB"


class BodyTooLarge(ErrorReply):
    def __init__(self, limit: int, size: int | None = None) -> None:
        told = (
            f"The request body is {_megabytes(size)}; "
            if size is not None
            else "The request body is too large: "
        )
        super().__init__(
            413,
            f"{told}this server takes at most {_megabytes(limit)} per request. Send smaller or fewer images.",
            code="request_too_large",
        )


MAX_JSON_BYTES = 1024 * 1024
"""The largest JSON body read: the largest valid Images API request (a 32,000-character prompt and
every option) is under 200 KB, so more is refused before it is parsed."""


async def read_json(request: Request, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """A request's JSON body, read up to ``max_bytes`` (a 413 beyond, as soon as it passes) and parsed in
    a worker thread, so a hostile body neither fills memory nor holds the event loop; ValueError (or
    RecursionError) if it is not JSON."""
    declared = _content_length(request.scope)
    if declared is not None and declared > max_bytes:
        raise JsonTooLarge(max_bytes, declared)
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_bytes:
            raise JsonTooLarge(max_bytes)
        chunks.append(chunk)
    return await anyio.to_thread.run_sync(json.loads, b"".join(chunks))


class JsonTooLarge(ErrorReply):
    def __init__(self, limit: int, size: int | None = None) -> None:
        told = f"The JSON body is {_megabytes(size)}" if size is not None else "The JSON body is too large"
        super().__init__(
            413,
            f"{told}; this endpoint reads at most {_megabytes(limit)} of JSON (a request's parameters, even a "
            "32,000-character prompt, take far less): send only the parameters.",
            code="request_too_large",
        )


class BodySizeLimit:
    """ASGI middleware: refuse a body over ``max_bytes`` by its Content-Length, or as soon as it passes the limit.

    The count covers bodies without a Content-Length (chunked) too, so nothing past the limit
    is ever read into memory.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await BodyTooLarge(self.max_bytes, declared).response()(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class PixelBudget:
    """Engine work admitted by its cost in pixels, first come first served.

    Calls run side by side while their pixels fit in ``capacity``; one that costs more than
    the whole capacity runs alone. Memory follows pixels, so this bounds what a burst of large
    requests can make the server hold at once. Used from one event loop.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least one pixel, got {capacity!r}")
        self.capacity = capacity
        self.in_use = 0
        self._waiting: deque[tuple[int, anyio.Event]] = deque()

    @asynccontextmanager
    async def hold(self, pixels: int) -> AsyncIterator[None]:
        """Wait until ``pixels`` fit (in turn), keep them while the block runs."""
        cost = max(1, min(pixels, self.capacity))
        await self._acquire(cost)
        try:
            yield
        finally:
            self._release(cost)

    async def _acquire(self, cost: int) -> None:
        if not self._waiting and self.in_use + cost <= self.capacity:
            self.in_use += cost
            return
        entry = (cost, anyio.Event())
        self._waiting.append(entry)
        try:
            await entry[1].wait()
        except BaseException:  # cancelled: leave the queue, or give back what was granted meanwhile
            if entry in self._waiting:
                self._waiting.remove(entry)
            else:
                self._release(cost)
            raise

    def _release(self, cost: int) -> None:
        self.in_use -= cost
        while self._waiting and self.in_use + self._waiting[0][0] <= self.capacity:
            cost_next, event = self._waiting.popleft()
            self.in_use += cost_next
            event.set()


def pixel_cost(request: ImageRequest, max_pixels: int | None) -> int:
    """What a call makes the engine hold, in pixels: its decoded inputs and its ``n`` outputs."""
    from ..imaging import image_size

    inputs = [image_size(image.data) for _, image in uploads(request)]
    spec = model_spec(request.model)
    if request.size not in (None, "auto"):
        output = parse_size(request.size)
    elif inputs:
        output = auto_size(spec, inputs[0], max_pixels)
    else:
        output = parse_size(spec.default_size) if spec.default_size != "auto" else (1024, 1024)
    return sum(w * h for w, h in inputs) + request.n * output[0] * output[1]
