"""One pace for a room of servers: the upstream's allowance as one bucket in the database they share.

Each server of a room paced on its own would start with a window of allowance and send at the full
rate, so two servers send twice the organisation's rate and collide inside the upstream's short
window. Here the bucket (:class:`~ipyimagegen.server.pacer.PaceState`) is the row ``pace`` of the
shared database, timed by the database's clock: a server takes images from it in one short
transaction before it starts a call, and a refusal (429) one server gets pauses and slows them all.
The rate is the organisation's, written once for the room: a server started with ``--upstream-rate``
writes it in the row; one started without reads it from there.

Shares between servers follow the participants each has waiting: a server with 270 participants
waiting gets nine images for each one a server with 30 gets. Each server that wants images says how
many participants it has waiting; each image taken is owed to the servers that want, in those
shares; a server may take only while no other server that wants is owed more than an image more than
it (:func:`_may_take`). So a server left with a backlog after another restarts does not keep
the room's rate to itself, nor does a nearly idle one.

The fair queue calls :meth:`SharedPacer.start` in its event loop: the answer comes from what the
last transaction granted, and a new one runs in a worker thread meanwhile (the queue asks again
within :data:`POLL_S`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from .leases import Holder
from .pacer import PaceState
from .store import Connection, Database
from .tokens import Rate

log = logging.getLogger("ipyimagegen.server")

POLL_S = 0.02
"""How soon the queue asks again while the database answers, or another server is owed the next images."""
LONGEST_GAP_S = 1.0
"""A server that wants images asks at least this often (so its want stays known to the others)."""
WANT_FRESH_S = 2.5
"""A server that asked within this many seconds still wants (shares follow it)."""
RATE_READ_EVERY_S = 5.0
"""How often a server with no rate looks for one written for the room."""
HOLD_S = 2.0
"""Images granted and not started within this long are dropped, never sent late in a burst."""


@dataclass(frozen=True)
class Grant:
    """What one transaction answered: images granted (0: none), else the seconds to wait, and the pace
    this server may expect (images a second) by its share of the room."""

    images: int
    wait: float
    images_per_s: float
    db_offset: float  # the database's clock less this server's monotonic clock


class SharedPacer:
    """The room's pace, kept in ``database`` (see the module's docstring). ``rate``: the organisation's
    rate, written for the room (None: take the one written there, else no limit)."""

    def __init__(
        self,
        database: Database,
        holder: Holder,
        rate: Rate | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.database = database
        self.holder = holder
        self._clock = clock
        self.rate, db_now = write_rate(database, rate)
        self._db_offset: float | None = db_now - clock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ipyimagegen-pace")
        self._asking: Future[Grant] | None = None
        self._held = 0
        self._held_at = 0.0
        self._next_ask = -math.inf
        self._paused_until = -math.inf
        self._images_per_s = rate.count / rate.period_s if rate is not None else math.inf
        self._next_rate_read = clock() + RATE_READ_EVERY_S
        self._wanting = False  # asked the room for images since the queue was last empty

    def start(self, images: int, waiting: int = 1) -> float:
        now = self._clock()
        self._collect(now)
        if now < self._paused_until:
            return self._paused_until - now
        if self._held and now - self._held_at > HOLD_S:
            self._held = 0  # granted for calls that left: never sent late
        if self.rate is None:  # no rate written for the room (yet): unpaced, and look again now and then
            if now >= self._next_rate_read and self._asking is None:
                self._next_rate_read = now + RATE_READ_EVERY_S
                self._executor.submit(self._read_rate)
            return 0.0
        if self._held >= images:
            self._held -= images
            return 0.0
        if self._asking is None and now >= self._next_ask:
            self._asking = self._executor.submit(self._ask, images - self._held, max(1, waiting))
            self._wanting = True
        if self._asking is not None:
            return POLL_S
        return self._next_ask - now

    def slow_down(self, retry_after: float | None, started_at: float) -> None:
        now = self._clock()
        self._held = 0
        pause = 1.0 if retry_after is None else max(0.0, retry_after)
        self._paused_until = max(self._paused_until, now + pause)  # at once here; the room by the database
        offset = self._db_offset
        if offset is not None:
            self._executor.submit(self._slow, retry_after, started_at + offset)

    def seconds_for(self, images: int) -> float:
        """At this server's share of the room's pace (as the last transaction told)."""
        pause = max(0.0, self._paused_until - self._clock())
        return pause + (images / self._images_per_s if images > 0 else 0.0)

    def idle(self) -> None:
        """Nothing waits here any more: the room stops counting this server among those that want."""
        if self._wanting:
            self._wanting = False
            self._executor.submit(self._stop_wanting)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- inside -------------------------------------------------------------------------------------

    def _collect(self, now: float) -> None:
        """Take in the answer of the transaction that was running, if it is in."""
        asking = self._asking
        if asking is None or not asking.done():
            return
        self._asking = None
        try:
            grant = asking.result()
        except Exception as exc:  # the database is away: try again in a while, send nothing meanwhile
            log.warning("could not read the room's pace from the database: %s", type(exc).__name__)
            self._next_ask = now + LONGEST_GAP_S
            return
        self._images_per_s = grant.images_per_s
        self._db_offset = grant.db_offset
        if grant.images:
            self._held += grant.images
            self._held_at = now
        else:
            self._next_ask = now + min(grant.wait, LONGEST_GAP_S)

    def _ask(self, images: int, waiting: int) -> Grant:
        with self.database.transaction() as db:
            row = db.execute("SELECT * FROM pace WHERE id = 1 {FOR_UPDATE}").fetchone()
            now = db.now()
            offset = now - self._clock()
            rate = Rate.parse(row["rate"]) if row["rate"] else self.rate
            self.rate = rate
            state = _state(row, rate, now)
            wanting = _say_want(db, self.holder, waiting, now)
            lines_total = sum(lines for _, lines, _ in wanting) or waiting
            per_s = math.inf if rate is None else rate.count / rate.period_s * state.share(rate, now)
            my_pace = per_s * waiting / max(lines_total, waiting)
            if not _may_take(self.holder.name, wanting):  # another server is owed the next: ask again soon
                _store(db, state)
                return Grant(0, min(LONGEST_GAP_S, max(POLL_S, 0.5 / per_s)), my_pace, offset)
            wait = state.take(rate, images, now)
            if wait == 0:
                _owe(db, self.holder.name, wanting, images)
            _store(db, state)
        return Grant(images if wait == 0 else 0, wait, my_pace, offset)

    def _read_rate(self) -> None:
        self.rate = write_rate(self.database, None)[0]

    def _stop_wanting(self) -> None:
        with self.database.transaction() as db:
            db.execute(
                "UPDATE replicas SET wants_at = NULL, owed = 0, lines = 0 WHERE name = {name}",
                name=self.holder.name,
            )

    def _slow(self, retry_after: float | None, started_at: float) -> None:
        with self.database.transaction() as db:
            row = db.execute("SELECT * FROM pace WHERE id = 1 {FOR_UPDATE}").fetchone()
            now = db.now()
            rate = Rate.parse(row["rate"]) if row["rate"] else self.rate
            state = _state(row, rate, now)
            state.slow(rate, retry_after, started_at, now)
            _store(db, state)


def write_rate(database: Database, rate: Rate | None) -> tuple[Rate | None, float]:
    """Write the room's rate (when given); the room's rate, and the database's clock."""
    with database.transaction() as db:
        row = db.execute("SELECT rate FROM pace WHERE id = 1 {FOR_UPDATE}").fetchone()
        now = db.now()
        written = Rate.parse(row["rate"]) if row["rate"] else None
        if rate is None:
            return written, now
        if written != rate:
            db.execute("UPDATE pace SET rate = {rate} WHERE id = 1", rate=str(rate))
            if written is not None:
                log.warning("the room's upstream rate is now %s (it was %s)", rate, written)
    return rate, now


def _state(row: dict[str, object], rate: Rate | None, now: float) -> PaceState:
    if row["level"] is None:  # the room's first call: the bucket starts full
        return PaceState.full(rate, now)
    return PaceState(
        level=float(row["level"]),  # type: ignore[arg-type]
        filled_at=float(row["filled_at"]),  # type: ignore[arg-type]
        paused_until=float(row["paused_until"]),  # type: ignore[arg-type]
        cut_to=float(row["cut_to"]),  # type: ignore[arg-type]
        cut_at=-math.inf if row["cut_at"] is None else float(row["cut_at"]),  # type: ignore[arg-type]
    )


def _store(db: Connection, state: PaceState) -> None:
    db.execute(
        "UPDATE pace SET level = {level}, filled_at = {filled_at}, paused_until = {paused_until}, "
        "cut_to = {cut_to}, cut_at = {cut_at} WHERE id = 1",
        level=state.level if math.isfinite(state.level) else 1e9,
        filled_at=state.filled_at,
        paused_until=state.paused_until,
        cut_to=state.cut_to,
        cut_at=state.cut_at if math.isfinite(state.cut_at) else None,
    )


def _say_want(db: Connection, holder: Holder, lines: int, now: float) -> list[tuple[str, int, float]]:
    """Record that ``holder`` wants images for ``lines`` participants; the servers that want now, as
    (name, participants waiting, images owed)."""
    db.execute(
        "UPDATE replicas SET lines = {lines}, wants_at = {now} WHERE name = {name}",
        lines=lines,
        now=now,
        name=holder.name,
    )
    db.execute(  # a server that stopped wanting is owed nothing
        "UPDATE replicas SET owed = 0 WHERE owed <> 0 AND (wants_at IS NULL OR wants_at < {since})",
        since=now - WANT_FRESH_S,
    )
    rows = db.execute(
        "SELECT name, lines, owed FROM replicas WHERE wants_at >= {since} AND lines > 0",
        since=now - WANT_FRESH_S,
    ).fetchall()
    return [(row["name"], int(row["lines"]), float(row["owed"])) for row in rows]


def _may_take(name: str, wanting: list[tuple[str, int, float]]) -> bool:
    """Whether ``name`` may take the next images: no other server that wants is owed over an image more."""
    mine = next((owed for other, _, owed in wanting if other == name), 0.0)
    return all(owed <= mine + 1.0 for other, _, owed in wanting if other != name)


def _owe(db: Connection, name: str, wanting: list[tuple[str, int, float]], images: int) -> None:
    """``name`` took ``images``: each server that wants is owed its share of them, ``name`` less them."""
    total = sum(lines for _, lines, _ in wanting)
    for other, lines, _ in wanting:
        change = images * lines / total if total else 0.0
        if other == name:
            change -= images
        db.execute(
            "UPDATE replicas SET owed = owed + {change} WHERE name = {name}", change=change, name=other
        )
