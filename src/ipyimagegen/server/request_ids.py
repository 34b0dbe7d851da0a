"""Every answer carries a unique ``x-request-id``, as the public API's do, so a participant can quote it
and the host can find the call in the server's log (the official SDKs show it as ``_request_id``)."""

from __future__ import annotations

import secrets

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "x-request-id"


def new_request_id() -> str:
    """A fresh id in the API's shape: ``req_`` and 32 hex digits."""
    return f"req_{secrets.token_hex(16)}"


def request_id_of(request: Request) -> str:
    """The id of the call being answered ("-" outside :class:`RequestIds`)."""
    return str(request.scope.get("state", {}).get("request_id", "-"))


class RequestIds:
    """ASGI middleware: give each HTTP request an id (in ``request.state.request_id``) and send it back
    in the ``x-request-id`` header of the answer, success or error, streamed or not."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)
