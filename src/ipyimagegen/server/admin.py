"""The instructor's page, ``/admin``: the room live (participants, images, spend, errors, queue),
revoke and top up, pause and resume every call, and the class wall (:mod:`.wall`).

The page itself holds no secret; it signs in with an admin token (``ipyimagegen tokens create
--name host --admin``), kept in the tab's session storage and sent as ``Authorization: Bearer``
to ``/admin/api/...`` (so no cookie exists for another site to ride on). Names are put in the page
as text, never as HTML.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from anyio.to_thread import run_sync
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .caller import Gate
from .limits import read_json
from .replicas import Replicas
from .replies import ErrorReply
from .tokens import TokenInfo

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


class AdminPage:
    """The ``/admin`` routes of a server (see the module's docstring). ``gate`` tells an admin token;
    ``queue_now()`` gives the calls running and waiting now; ``replicas``: the servers of the room."""

    def __init__(
        self, gate: Gate, queue_now: Callable[[], tuple[int, int]], replicas: Replicas | None = None
    ) -> None:
        self.gate = gate
        self.queue_now = queue_now
        self.replicas = replicas

    async def page(self, request: Request) -> Response:
        name = request.path_params.get("file", "")
        if name not in FILES:
            raise ErrorReply(404, "There is no such page.", code="not_found")
        file, media_type = FILES[name]
        return Response((STATIC / file).read_bytes(), media_type=media_type, headers=PAGE_HEADERS)

    async def room(self, request: Request) -> Response:
        store = await self.gate.admin(request)
        infos = await run_sync(store.tokens)
        room = await run_sync(store.workshop)
        running, waiting = self.queue_now()
        servers = await run_sync(self.replicas.alive) if self.replicas is not None else []
        reserved = await run_sync(self.replicas.reserved) if self.replicas is not None else 0
        participants = [{**info.to_dict(), "status": _status(info)} for info in infos if not info.admin]
        return JSONResponse(
            {
                "workshop": room.to_dict(),
                "queue": {"running": running, "waiting": waiting},
                "servers": [
                    {"name": server.name, "running": server.running, "waiting": server.waiting}
                    for server in servers
                ],
                "reserved_images": reserved,
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
        store = await self.gate.admin(request)
        try:
            info = await run_sync(store.revoke, request.path_params["token_id"])
        except KeyError as exc:
            raise ErrorReply(404, str(exc.args[0]), code="not_found") from None
        return JSONResponse(info.to_dict())

    async def top_up(self, request: Request) -> Response:
        store = await self.gate.admin(request)
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
            info = await run_sync(
                lambda: store.top_up(request.path_params["token_id"], images=images, usd=usd)
            )
        except KeyError as exc:
            raise ErrorReply(404, str(exc.args[0]), code="not_found") from None
        return JSONResponse(info.to_dict())

    async def pause(self, request: Request) -> Response:
        store = await self.gate.admin(request)
        room = await run_sync(store.set_paused, request.url.path.endswith("/pause"))
        return JSONResponse(room.to_dict())


def _status(info: TokenInfo) -> str:
    if info.revoked is not None:
        return "revoked"
    if info.expired:
        return "expired"
    if info.images_left == 0 or info.usd_left == 0:
        return "budget spent"
    return "active"
