"""Cross-site safety, as Jupyter's own server does it: a page on another origin cannot make the server run a call.

- A browser sends ``Origin`` with a cross-site request (a ``no-cors`` POST included): one that is not
  this server's own and not allowed (``--cors-origin``) is refused with 403 before anything runs.
- The ``Host`` header must name this server (loopback names by default, or the names it was told),
  which closes DNS rebinding: a page of ``evil.example`` that resolves to 127.0.0.1 sends ``Host:
  evil.example``.
- JSON routes take only ``application/json``, multipart routes only ``multipart/form-data`` (checked
  by the routes): the "simple" content types a page may send without asking are refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from .replies import ErrorReply

ANY_HOST = "*"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _host_name(host: str) -> str:
    """``example.org`` from ``example.org:8000``, ``::1`` from ``[::1]:8000``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class CrossSiteGuard:
    """ASGI middleware: refuse requests from other origins and for other hosts (403, the API's error JSON)."""

    def __init__(self, app: ASGIApp, *, allowed_hosts: Sequence[str], allowed_origins: Sequence[str]) -> None:
        self.app = app
        self.any_host = ANY_HOST in allowed_hosts
        self.hosts = {_host_name(host) for host in allowed_hosts if host != ANY_HOST}
        self.origins = {origin.rstrip("/").lower() for origin in allowed_origins}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self._refusal(scope)
            if refusal is not None:
                await refusal.response()(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> ErrorReply | None:
        host = _header(scope, b"host") or ""
        if not self.any_host and _host_name(host) not in self.hosts:
            return ErrorReply(
                403,
                f"Blocking a request for the unknown host {host!r}: this server answers to "
                f"{', '.join(sorted(self.hosts))}. Start it with --allow-host NAME to answer to another name.",
                code="host_not_allowed",
            )
        origin = _header(scope, b"origin")
        if origin is None or origin.rstrip("/").lower() in self.origins:
            return None
        parts = urlsplit(origin)
        same_origin = parts.netloc.lower() == host.lower()
        if same_origin:
            return None
        return ErrorReply(
            403,
            f"Blocking a cross-origin request from {origin!r}: a web page may not call this server. "
            "Start it with --cors-origin ORIGIN to allow a page you trust.",
            code="origin_not_allowed",
        )
