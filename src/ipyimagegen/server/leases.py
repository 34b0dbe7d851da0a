"""Reservations as leases: what a call counted against its token's budget, held by the server running it.

A call's images (and the most it can cost) are counted when it is accepted, so that two calls at
once cannot both pass the last image of a budget. Each such reservation is a row of ``leases``, held
by one run of one server (a :class:`Holder`): it is settled when the answer is delivered (the row
goes, the images stay counted), refunded when the call fails, is cancelled or its client leaves (the
row goes, the images are given back), and refunded by whoever notices that its holder died: the same
server restarting, or any server of the room once the holder has not been seen for a while
(:mod:`~ipyimagegen.server.replicas`). Deleting the row is the one step that decides, so a lease is
settled or refunded once, whoever gets there first.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from typing import Any

from .store import Connection


@dataclass(frozen=True)
class Holder:
    """A server that holds leases: its ``name`` in the room (the same across restarts) and this run of it."""

    name: str
    incarnation: str

    @classmethod
    def new(cls, name: str | None = None) -> Holder:
        """A new run of the server ``name`` (by default a name of its own: this host, process and run)."""
        run = secrets.token_hex(6)
        return cls(name or f"{socket.gethostname()}:{os.getpid()}:{run[:4]}", run)


def open_lease(db: Connection, holder: Holder, token_id: str, images: int, usd: float, now: float) -> str:
    """Record a reservation held by ``holder``; returns its id."""
    lease_id = "lease_" + secrets.token_hex(8)
    db.execute(
        "INSERT INTO leases (id, token_id, replica, incarnation, images, usd, created) "
        "VALUES ({id}, {token_id}, {replica}, {incarnation}, {images}, {usd}, {now})",
        id=lease_id,
        token_id=token_id,
        replica=holder.name,
        incarnation=holder.incarnation,
        images=images,
        usd=usd,
        now=now,
    )
    return lease_id


def close_lease(db: Connection, lease_id: str) -> bool:
    """Remove a lease; False when it was gone already (refunded because its holder was taken for dead)."""
    return bool(db.execute("DELETE FROM leases WHERE id = {id}", id=lease_id).rowcount)


def give_back(db: Connection, token_id: str, images: int, usd: float) -> None:
    """Give ``images`` and ``usd`` back to a token's budgets and the workshop's (in that order, as a
    reservation takes them)."""
    give_back_token(db, token_id, images, usd)
    give_back_workshop(db, images, usd)


def give_back_token(db: Connection, token_id: str, images: int, usd: float) -> None:
    db.execute(
        "UPDATE tokens SET images = {GREATEST}(0, images - {images}), "
        "spent_usd = {GREATEST}(0, spent_usd - {usd}) WHERE id = {id}",
        images=images,
        usd=usd,
        id=token_id,
    )


def give_back_workshop(db: Connection, images: int, usd: float) -> None:
    db.execute(
        "UPDATE workshop SET images = {GREATEST}(0, images - {images}), "
        "spent_usd = {GREATEST}(0, spent_usd - {usd}) WHERE id = 1",
        images=images,
        usd=usd,
    )


def charge_again(db: Connection, token_id: str, images: int, usd: float) -> None:
    """Count a call delivered after its lease was refunded (its holder was taken for dead): what was
    received is charged, whatever the budget says now."""
    db.execute(
        "UPDATE tokens SET images = images + {images}, spent_usd = spent_usd + {usd} WHERE id = {id}",
        images=images,
        usd=usd,
        id=token_id,
    )
    db.execute(
        "UPDATE workshop SET images = images + {images}, spent_usd = spent_usd + {usd} WHERE id = 1",
        images=images,
        usd=usd,
    )


def refund_where(db: Connection, condition: str, **params: Any) -> int:
    """Refund every lease matching ``condition`` (a template over the ``leases`` columns); returns the
    images given back.

    The leases go first, then each token's row, in the order of their ids, then the workshop's row once:
    a reservation locks a token's row and then the workshop's, so no order of the two can deadlock."""
    rows = db.execute(
        "SELECT id, token_id, images, usd FROM leases WHERE " + condition + " {FOR_UPDATE}", **params
    ).fetchall()
    by_token: dict[str, tuple[int, float]] = {}
    for row in rows:
        if close_lease(db, row["id"]):
            images, usd = by_token.get(row["token_id"], (0, 0.0))
            by_token[row["token_id"]] = (images + row["images"], usd + row["usd"])
    for token_id in sorted(by_token):
        images, usd = by_token[token_id]
        give_back_token(db, token_id, images, usd)
    images = sum(images for images, _ in by_token.values())
    if by_token:
        give_back_workshop(db, images, sum(usd for _, usd in by_token.values()))
    return images


def reserved_images(db: Connection) -> int:
    """The images reserved for calls in flight, in the whole room."""
    return int(db.execute("SELECT COALESCE(SUM(images), 0) AS images FROM leases").fetchone()["images"])
