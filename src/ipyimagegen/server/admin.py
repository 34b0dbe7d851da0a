"""The instructor's page, ``/admin``: the room live (participants, images, spend, errors, queue),
revoke and top up, pause and resume every call, and the class wall (:mod:`.wall`).

The page itself holds no secret; it signs in with an admin token (``ipyimagegen tokens create
--name host --admin``), kept in the tab's session storage and sent as ``Authorization: Bearer``
to ``/admin/api/...`` (so no cookie exists for another site to ride on). Names are put in the page
as text, never as HTML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .errors import ErrorReply
from .limits import read_json
from .tokens import TokenInfo, TokenStore

STATIC = Path(__file__).parent / "static"
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
FILES = {
    "": ("admin.html", "text/html"),
    "app.js": ("admin.js", "text/javascript"),
    "app.css": ("admin.css", "text/css"),
}


class Server(Protocol):
    tokens: TokenStore | None

    async def _authenticate(self, request: Request) -> TokenInfo | None: ...

    async def _in_thread(self, func: Any, *args: Any) -> Any: ...

    def _queue_now(self) -> tuple[int, int]: ...


class AdminPage:
    """The ``/admin`` routes of a server (see the module's docstring)."""

    def __init__(self, server: Server) -> None:
        self.server = server

    async def page(self, request: Request) -> Response:
        name = request.path_params.get("file", "")
        if name not in FILES:
            raise ErrorReply(404, "There is no such page.", code="not_found")
        file, media_type = FILES[name]
        return Response((STATIC / file).read_bytes(), media_type=media_type, headers=PAGE_HEADERS)

    async def require_admin(self, request: Request) -> TokenStore:
        """The token store, when the caller signed in with an admin token (else 404 or 403)."""
        store = self.server.tokens
        if store is None:
            raise ErrorReply(
                404, "This server has no participant tokens, so there is no room to show.", code="not_found"
            )
        token = await self.server._authenticate(request)
        if token is None or not token.admin:
            raise ErrorReply(
                403,
                "This page is for the workshop host: sign in with an admin token "
                "(ipyimagegen tokens create --name host --admin).",
                code="admin_only",
            )
        return store

    async def room(self, request: Request) -> Response:
        store = await self.require_admin(request)
        infos = await self.server._in_thread(store.tokens)
        room = await self.server._in_thread(store.workshop)
        running, waiting = self.server._queue_now()
        participants = [{**info.to_dict(), "status": _status(info)} for info in infos if not info.admin]
        return JSONResponse(
            {
                "workshop": room.to_dict(),
                "queue": {"running": running, "waiting": waiting},
                "participants": participants,
                "totals": {
                    "participants": sum(1 for p in participants if p["active"]),
                    "images": sum(p["images"] for p in participants),
                    "spent_usd": round(sum(p["spent_usd"] for p in participants), 4),
                    "errors": sum(p["errors"] for p in participants),
                    "rejected": sum(p["rejected"] for p in participants),
                },
            },
            headers={"Cache-Control": "no-store"},
        )

    async def revoke(self, request: Request) -> Response:
        store = await self.require_admin(request)
        try:
            info = await self.server._in_thread(store.revoke, request.path_params["token_id"])
        except KeyError as exc:
            raise ErrorReply(404, str(exc.args[0]), code="not_found") from None
        return JSONResponse(info.to_dict())

    async def top_up(self, request: Request) -> Response:
        store = await self.require_admin(request)
        try:
            body = await read_json(request)
            images = int(body.get("images") or 0)
            usd = float(body.get("usd") or 0)
        except (ValueError, TypeError, AttributeError, RecursionError):
            raise ErrorReply(
                400, 'Send a JSON object: {"images": N, "usd": DOLLARS}.', code="invalid_value"
            ) from None
        if not (0 <= images <= 1_000_000 and 0 <= usd <= 1_000_000):
            raise ErrorReply(
                400, "A top-up adds 0 or more images or dollars (at most a million).", code="invalid_value"
            )
        try:
            info = await self.server._in_thread(
                lambda: store.top_up(request.path_params["token_id"], images=images, usd=usd)
            )
        except KeyError as exc:
            raise ErrorReply(404, str(exc.args[0]), code="not_found") from None
        return JSONResponse(info.to_dict())

    async def pause(self, request: Request) -> Response:
        store = await self.require_admin(request)
        room = await self.server._in_thread(store.set_paused, request.url.path.endswith("/pause"))
        return JSONResponse(room.to_dict())


def _status(info: TokenInfo) -> str:
    if info.revoked is not None:
        return "revoked"
    if info.expired:
        return "expired"
    if info.images_left == 0 or info.usd_left == 0:
        return "budget spent"
    return "active"
