"""Who is calling: the participant token a request carries, resolved once per request by :class:`Gate`,
and what a :class:`Caller` may do: its rate, the workshop's pause, its budgets.

On an open server (no :class:`~ipyimagegen.server.tokens.TokenStore`) every caller is ``open``: no
check refuses it and nothing is counted. Every store call runs in a worker thread (the store is
SQLite or PostgreSQL, both blocking).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from anyio.to_thread import run_sync
from starlette.requests import Request

from ..api.types import ImageRequest
from .costs import cost_bound
from .leases import Holder
from .replies import SERVER_ERROR, ErrorReply, retry_after_headers
from .tokens import Refusal, TokenInfo, TokenStore

log = logging.getLogger("ipyimagegen.server")

OPEN = "open"
"""The name (and queue key) of every caller of an open server."""


class Gate:
    """Resolves a request's :class:`Caller` from its ``Authorization: Bearer`` token."""

    def __init__(self, tokens: TokenStore | None, holder: Holder | None = None) -> None:
        self.tokens = tokens
        self.holder = holder

    async def caller(self, request: Request) -> Caller:
        """The caller (``open`` on a server without tokens); 401 without a valid, active token. The name
        goes in ``request.state.caller`` for the log line."""
        if self.tokens is None:
            request.state.caller = OPEN
            return Caller(None, None)
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise ErrorReply(
                401,
                "You didn't provide an API key. Send your participant token as 'Authorization: Bearer TOKEN' "
                "(with the OpenAI client: api_key=TOKEN); the workshop host gives out tokens.",
                code="invalid_api_key",
            )
        info = await run_sync(self.tokens.authenticate, value.strip())
        if info is None:
            raise ErrorReply(
                401,
                "Incorrect API key provided: use the participant token the workshop host gave you.",
                code="invalid_api_key",
            )
        refuse_inactive(info)
        request.state.caller = info.name
        return Caller(info, self.tokens, self.holder)

    async def admin(self, request: Request) -> TokenStore:
        """The token store, when the caller signed in with an admin token (else 404 without tokens, 403)."""
        if self.tokens is None:
            raise ErrorReply(
                404, "This server has no participant tokens, so there is no room to show.", code="not_found"
            )
        caller = await self.caller(request)
        if not caller.admin:
            raise ErrorReply(
                403,
                "This page is for the workshop host: sign in with an admin token "
                "(ipyimagegen tokens create --name host --admin).",
                code="admin_only",
            )
        return self.tokens


@dataclass(frozen=True)
class Caller:
    """One request's caller: its token (None on an open server) and the store that counts for it."""

    token: TokenInfo | None
    tokens: TokenStore | None
    holder: Holder | None = None

    @property
    def admin(self) -> bool:
        return self.token is not None and self.token.admin

    @property
    def queue_key(self) -> str:
        """The caller's line in the fair queue: its token, or one line for every open call."""
        return self.token.id if self.token is not None else OPEN

    async def check_rate(self) -> None:
        """429 past the token's own rate (one request taken from it)."""
        token = self.token
        if token is None or token.rate is None or self.tokens is None:
            return
        wait = await run_sync(self.tokens.take_rate, token.id, token.rate)
        if wait > 0:
            await run_sync(self.tokens.record_rejected, token.id)
            raise ErrorReply(
                429,
                f"Rate limit reached for token {token.name!r}: {token.rate.describe()}. "
                f"Try again in {max(1, round(wait))} s.",
                type="requests",
                code="rate_limit_exceeded",
                headers=retry_after_headers(wait),
            )

    async def check_open(self) -> None:
        """503 while the workshop host has paused every call (an admin token still gets through)."""
        if self.token is None or self.token.admin or self.tokens is None:
            return
        room = await run_sync(self.tokens.workshop)
        if room.paused:
            raise ErrorReply(
                503,
                "The workshop host has paused all calls for a moment: try again shortly.",
                type=SERVER_ERROR,
                code="workshop_paused",
                headers=retry_after_headers(30.0),
            )

    async def check_still_active(self) -> None:
        """401 when the token was revoked or expired since the request came in (while it waited its turn)."""
        if self.token is not None and self.tokens is not None:
            refuse_inactive(await run_sync(self.tokens.get, self.token.id))

    async def reserve(self, image_request: ImageRequest) -> Reservation:
        """Count the call's images, and the most it can cost in estimated dollars, against the token's
        budgets and the workshop's; 429 when they do not fit."""
        token, store = self.token, self.tokens
        images = image_request.n
        if token is None or store is None:
            return Reservation(self, images, 0.0, None)
        usd = await run_sync(cost_bound, image_request)
        try:
            lease = await run_sync(store.reserve, token.id, images, usd, self.holder)
            return Reservation(self, images, usd, lease)
        except Refusal as refused:
            why = refused.what
        current = await run_sync(store.get, token.id)
        if why in ("revoked", "expired"):  # since the call was authenticated
            refuse_inactive(current)
        room = await run_sync(store.workshop)
        used: float
        limit: float | None
        asked: float
        if why == "images":
            told = f"Token {token.name!r} has used {current.images} of its {current.budget} images"
            told += f" (this request asks for {images})"
            used, limit, asked = current.images, current.budget, images
        elif why == "usd":
            told = (
                f"Token {token.name!r} has spent about ${current.spent_usd:.2f} of its ${current.budget_usd:.2f}, "
                f"and this request could cost up to ${usd:.2f} (choose a quality and size, or fewer images, "
                "to ask for less)"
            )
            used, limit, asked = round(current.spent_usd, 4), current.budget_usd, round(usd, 4)
        elif why == "workshop_images":
            told = f"The workshop has used {room.images} of its {room.budget_images} images"
            used, limit, asked = room.images, room.budget_images, images
        else:
            told = f"The workshop has spent about ${room.spent_usd:.2f} of its ${room.budget_usd:.2f}"
            used, limit, asked = round(room.spent_usd, 4), room.budget_usd, round(usd, 4)
        raise ErrorReply(
            429,
            f"{told}: ask the workshop host for a bigger budget.",
            type="insufficient_quota",
            code="insufficient_quota",
            headers={"x-should-retry": "false"},
            details={"budget": {"kind": why, "used": used, "limit": limit, "asked": asked}},
        )


@dataclass
class Reservation:
    """What a call reserved (:meth:`Caller.reserve`): settled once its answer is made, else refunded, once
    (a second settle or refund does nothing; one whose database write failed is not done, and may be tried
    again). A reservation neither settled nor refunded when its request ends is refunded by
    :meth:`refund_soon`, which no cancellation can stop."""

    caller: Caller
    images: int
    usd: float
    lease_id: str | None
    closed: bool = False

    def refund_now(self) -> None:
        """Give back what the call reserved, and count the failure (blocking: from a worker thread)."""
        if self.closed:
            return
        token, store = self.caller.token, self.caller.tokens
        if token is not None and store is not None:  # an open server counts nothing
            store.record_failure(token.id, self.images, self.usd, self.lease_id)
        self.closed = True

    async def refund(self) -> None:
        if not self.closed:
            await run_sync(self.refund_now)

    def refund_soon(self) -> None:
        """Refund in a thread of its own, when the request is being cancelled (it cannot wait)."""
        if not self.closed:
            threading.Thread(target=self._refund_logged, name="ipyimagegen-refund", daemon=True).start()

    def _refund_logged(self) -> None:
        try:
            self.refund_now()
        except Exception:
            log.exception("could not give back a cancelled call's reservation")

    def hand_over(self) -> Reservation:
        """A reservation that takes this one's place (this one then does nothing): for an answer that goes
        on after the request's handler has returned (a stream)."""
        taken = Reservation(self.caller, self.images, self.usd, self.lease_id, closed=self.closed)
        self.closed = True
        return taken

    def settle_now(self, spent: float | None = None) -> None:
        """:meth:`settle`, blocking (from a worker thread)."""
        if self.closed:
            return
        token, store = self.caller.token, self.caller.tokens
        if token is not None and store is not None:
            cost = self.usd if spent is None else spent
            store.settle(token.id, self.usd, cost, self.lease_id, self.images)
        self.closed = True

    async def settle(self, spent: float | None) -> None:
        """The answer is delivered: the dollars reserved become what it cost (``spent``; None: the
        bound reserved stands)."""
        if not self.closed:
            await run_sync(self.settle_now, spent)


def refuse_inactive(info: TokenInfo) -> None:
    """401 ``invalid_api_key`` saying why, for a token revoked or past its expiry."""
    if info.revoked is not None:
        raise ErrorReply(
            401,
            "This participant token was revoked: ask the workshop host for a new one.",
            code="invalid_api_key",
        )
    if info.expired:
        assert info.expires is not None
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.expires))
        raise ErrorReply(
            401,
            f"This participant token expired at {when}: ask the workshop host for a new one.",
            code="invalid_api_key",
        )
