"""The servers of a room: who is alive, and the reservations of those that died.

Every server that keeps its state in a database (its SQLite file, or a PostgreSQL database several
share) writes a row of ``replicas`` when it starts (:meth:`Replicas.join`) and beats every few
seconds while it runs (:meth:`Replicas.beat`: when it was last seen, the calls it runs and has
waiting). A server killed
without a word (``kill -9``, a lost machine) leaves leases behind (:mod:`~ipyimagegen.server.leases`):
reservations for calls nobody will deliver. They are refunded by the same server when it starts again
under its name, and by any server of the room, at start and every :data:`RECONCILE_EVERY_S`, once the
dead one has not been seen for :data:`LOST_AFTER_S`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .leases import Holder, refund_where, reserved_images
from .store import Database

log = logging.getLogger("ipyimagegen.server")

BEAT_EVERY_S = 3.0
"""How often a server of a room says it is alive."""
LOST_AFTER_S = 30.0
"""A server not seen for this long is taken for dead: its reservations are refunded."""
RECONCILE_EVERY_S = 10.0
"""How often a server looks for dead ones."""


@dataclass(frozen=True)
class ReplicaInfo:
    """A server of the room as its last beat told."""

    name: str
    started: float
    seen: float
    running: int
    waiting: int


class Replicas:
    """The ``replicas`` and ``leases`` of one database, as one server (``holder``) sees them."""

    def __init__(self, database: Database, holder: Holder, *, lost_after: float = LOST_AFTER_S) -> None:
        self.database = database
        self.holder = holder
        self.lost_after = lost_after

    def join(self) -> int:
        """Take this server's place: refund what an earlier run under its name held (it was stopped or
        killed: none of its calls will be delivered), then what dead servers held. Returns the images
        given back."""
        with self.database.transaction() as db:
            now = db.now()
            refunded = refund_where(db, "replica = {name} AND incarnation <> {incarnation}", **self._me())
            db.execute("DELETE FROM replicas WHERE name = {name}", name=self.holder.name)
            db.execute(
                "INSERT INTO replicas (name, incarnation, started, seen) "
                "VALUES ({name}, {incarnation}, {now}, {now})",
                now=now,
                **self._me(),
            )
        if refunded:
            log.warning(
                "%s: gave back %d images reserved by its last run, which ended without delivering them",
                self.holder.name,
                refunded,
            )
        return refunded + self.reconcile()

    def beat(self, running: int, waiting: int) -> None:
        """Say this server is alive, with the calls it runs and has waiting (its row comes back if a
        server that took it for dead removed it)."""
        with self.database.transaction() as db:
            now = db.now()
            cursor = db.execute(
                "UPDATE replicas SET seen = {now}, running = {running}, waiting = {waiting} "
                "WHERE name = {name} AND incarnation = {incarnation}",
                now=now,
                running=running,
                waiting=waiting,
                **self._me(),
            )
            if cursor.rowcount == 0:
                db.execute(
                    "INSERT INTO replicas (name, incarnation, started, seen, running, waiting) "
                    "VALUES ({name}, {incarnation}, {now}, {now}, {running}, {waiting}) "
                    "ON CONFLICT (name) DO UPDATE SET incarnation = {incarnation}, seen = {now}",
                    now=now,
                    running=running,
                    waiting=waiting,
                    **self._me(),
                )

    def reconcile(self) -> int:
        """Refund the leases of servers not seen for :attr:`lost_after` seconds (and of servers with no
        row at all) and forget those servers; returns the images given back."""
        with self.database.transaction() as db:
            since = db.now() - self.lost_after
            lost = [
                row["name"]
                for row in db.execute("SELECT name FROM replicas WHERE seen < {since}", since=since)
            ]
            refunded = refund_where(
                db,
                "created < {since} AND replica NOT IN (SELECT name FROM replicas WHERE seen >= {since})",
                since=since,
            )
            db.execute("DELETE FROM replicas WHERE seen < {since}", since=since)
        if refunded or lost:
            log.warning(
                "gave back %d images reserved by servers not seen for %g s (%s)",
                refunded,
                self.lost_after,
                ", ".join(lost) or "gone",
            )
        return refunded

    def leave(self) -> None:
        """This server stops: its row goes (its calls ended with it)."""
        with self.database.transaction() as db:
            refund_where(db, "replica = {name} AND incarnation = {incarnation}", **self._me())
            db.execute(
                "DELETE FROM replicas WHERE name = {name} AND incarnation = {incarnation}", **self._me()
            )

    def alive(self) -> list[ReplicaInfo]:
        """The servers seen within :attr:`lost_after` seconds, by name."""
        with self.database.transaction() as db:
            since = db.now() - self.lost_after
            rows = db.execute(
                "SELECT name, started, seen, running, waiting FROM replicas WHERE seen >= {since} ORDER BY name",
                since=since,
            ).fetchall()
        return [ReplicaInfo(r["name"], r["started"], r["seen"], r["running"], r["waiting"]) for r in rows]

    def reserved(self) -> int:
        """The images reserved for calls in flight, on every server of the room."""
        with self.database.transaction() as db:
            return reserved_images(db)

    def _me(self) -> dict[str, str]:
        return {"name": self.holder.name, "incarnation": self.holder.incarnation}
