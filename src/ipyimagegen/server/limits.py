"""An upper bound on request bodies, enforced while they stream in (a 413 with the API's error JSON)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ErrorReply


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
