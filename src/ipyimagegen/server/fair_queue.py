"""Fair shares of the upstream: calls served by participant in turn, within a rate and a concurrency.

An organisation's limit is a few hundred images a minute; served first come first served, one
participant asking for 10 images in a loop would hold the room. Here each participant has a
line of their own and the lines are served in turn by deficit round robin: at each turn a
participant's line earns one image of credit, and its first call goes once the credit covers the
images it asks for. So every participant waiting gets the same number of images per round
whether they ask for one at a time or ten. A participant keeps their place in the round while a
call of theirs runs: one who sends the next call as soon as an answer comes is not sent behind
those who keep several calls waiting; their turn passes them by only if it comes while they have
nothing waiting. ``concurrency`` calls run at once, and a pacer
(:mod:`~ipyimagegen.server.pacer`) says when the next images may start: at ``rate`` (images per
period), in bursts of a few, never a period's worth at once.

A call the upstream refused for its rate goes back to the front of its participant's line
(``turn(..., again=True)``) after :meth:`FairQueue.slow_down` tells the pacer, and waits its turn
again; the caller gives back its slot meanwhile.

Used from one event loop. :meth:`FairQueue.positions` tells a participant where their calls
stand (``GET /v1/queue``).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from .pacer import LocalPacer, Pacer
from .tokens import Rate


class TurnTooLate(Exception):
    """A call's turn did not come within the time it could wait."""


@dataclass(frozen=True)
class QueueEstimate:
    """How long a new call would wait: the calls and images ahead of it, the seconds it would wait for its
    turn, and the seconds a call takes once it runs (0.0 until one has run)."""

    ahead: int
    images_ahead: int
    wait_s: float
    call_s: float


PLACES_KEPT = 2000
"""Past this many places held, those past their time are forgotten."""
TURN_AVERAGE = 0.1
"""The weight of the latest call in the running average of how long a call takes."""


@dataclass(eq=False)
class Ticket:
    """One call waiting for, or holding, its turn."""

    key: str
    images: int
    queued_at: float
    granted: asyncio.Event = field(default_factory=asyncio.Event)
    started_at: float | None = None
    expired: bool = False  # its time to wait ran out before its turn


class FairQueue:
    """Calls by participant, in turn (see the module's docstring).

    ``pacer`` replaces the one made from ``rate`` on ``clock``.
    """

    def __init__(
        self,
        concurrency: int,
        rate: Rate | None = None,
        clock: Callable[[], float] = time.monotonic,
        pacer: Pacer | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency!r}")
        self.concurrency = concurrency
        self.rate = rate
        self.pacer = pacer if pacer is not None else LocalPacer(rate, clock)
        self._clock = clock
        self.running = 0
        # the participants in the round, in turn order: a line of calls waiting (empty while one runs)
        self._lines: dict[str, deque[Ticket]] = {}
        self._credit: dict[str, int] = {}
        self._running_by: dict[str, int] = {}  # participant -> calls of theirs running
        self._wakeup: asyncio.TimerHandle | None = None
        self._places: dict[str, float] = {}  # participant -> until when a place at the front is theirs
        self.call_s = 0.0  # how long a call takes once it runs: a running average

    @property
    def waiting(self) -> int:
        return sum(len(line) for line in self._lines.values())

    @asynccontextmanager
    async def turn(
        self, key: str, images: int, *, again: bool = False, wait_at_most: float | None = None
    ) -> AsyncIterator[Ticket]:
        """Wait for ``key``'s turn for a call of ``images`` images, and hold a slot while the block runs.
        ``again``: a call that had a turn and must try once more: first in ``key``'s line.
        ``wait_at_most``: seconds; :class:`TurnTooLate` (the call out of the line) when its turn has not
        come by then."""
        ticket = Ticket(key, max(1, images), self._clock())
        if self._holds_place(key):  # back after waiting outside: first in the round
            del self._places[key]
            self._lines = {
                key: self._lines.get(key, deque()),
                **{k: v for k, v in self._lines.items() if k != key},
            }
        line = self._lines.setdefault(key, deque())
        if again:
            line.appendleft(ticket)
        else:
            line.append(ticket)
        self._dispatch()
        timer = None
        if wait_at_most is not None:
            timer = asyncio.get_running_loop().call_later(max(0.0, wait_at_most), self._expire, ticket)
        try:
            await ticket.granted.wait()
            if ticket.expired:
                raise TurnTooLate()
        except BaseException:  # cancelled or too late while waiting (the caller went away): leave the line
            if ticket.expired:
                pass  # out of the line already
            elif not ticket.granted.is_set():
                self._leave(ticket)
                self._dispatch()
            else:
                self._release(ticket, ran=False)
            raise
        finally:
            if timer is not None:
                timer.cancel()
        try:
            yield ticket
        except BaseException:
            self._release(ticket, ran=False)
            raise
        self._release(ticket)

    def slow_down(self, ticket: Ticket, retry_after: float | None) -> None:
        """The upstream refused ``ticket``'s call for its rate (asking to wait ``retry_after`` seconds):
        the pacer pauses and slows down. Send the call again with ``turn(..., again=True)``."""
        self.pacer.slow_down(
            retry_after, ticket.started_at if ticket.started_at is not None else self._clock()
        )
        self._dispatch()

    def estimate(self, key: str, images: int) -> QueueEstimate:
        """How long a new call of ``key`` for ``images`` images would wait: the calls ahead of it in the round
        (see :meth:`positions`), at the pace the pacer expects and with the slots calls take."""
        line = self._lines.get(key, ())
        index = len(line)
        order = list(self._lines)
        if self._holds_place(key):
            before: set[str] = set()  # it comes back to the front of the round
        else:
            before = set(order[: order.index(key)] if key in self._lines else order)
        ahead_lines = [
            (other, min(len(self._lines[other]), index + (other in before)))
            for other in order
            if other != key
        ]
        ahead = sum(count for _, count in ahead_lines) + index
        images_ahead = sum(
            sum(ticket.images for ticket in list(self._lines[other])[:count]) for other, count in ahead_lines
        ) + sum(ticket.images for ticket in line)
        by_rate = self.pacer.seconds_for(images_ahead + max(1, images))
        free = self.concurrency - self.running
        by_slots = max(0, ahead + 1 - free) * self.call_s / self.concurrency
        return QueueEstimate(ahead, images_ahead, max(by_rate, by_slots), self.call_s)

    def hold_place(self, key: str, until: float) -> None:
        """``key`` was told to come back (the room was full) and has nothing here: its next call, if it
        comes by ``until`` (the queue's clock), goes to the front of the round, having waited outside."""
        if self._lines.get(key) or self._running_by.get(key):
            return  # a participant with a call here already has its place
        now = self._clock()
        if len(self._places) > PLACES_KEPT:
            self._places = {k: at for k, at in self._places.items() if at > now}
        self._places[key] = until

    def _holds_place(self, key: str) -> bool:
        return self._places.get(key, -1.0) > self._clock() and not self._lines.get(key)

    def positions(self, key: str) -> list[int]:
        """Where each of ``key``'s waiting calls stands: 1 is the next to run."""
        line = self._lines.get(key)
        if not line:
            return []
        order = list(self._lines)
        found = []
        for index in range(len(line)):
            ahead = sum(min(len(self._lines[other]), index) for other in order)
            ahead += sum(1 for other in order[: order.index(key)] if len(self._lines[other]) > index)
            found.append(ahead + 1)
        return found

    # -- inside ------------------------------------------------------------------------------

    def _expire(self, ticket: Ticket) -> None:
        """``ticket``'s time to wait is over before its turn: out of the line, its waiter woken."""
        if not ticket.granted.is_set():
            ticket.expired = True
            self._leave(ticket)
            ticket.granted.set()  # wakes the waiter, which sees it expired
            self._dispatch()

    def _leave(self, ticket: Ticket) -> None:
        line = self._lines.get(ticket.key)
        if line is not None and ticket in line:
            line.remove(ticket)
            if not line and not self._running_by.get(ticket.key):
                del self._lines[ticket.key]
                self._credit.pop(ticket.key, None)

    def _release(self, ticket: Ticket, ran: bool = True) -> None:
        """``ticket``'s slot is free; ``ran``: its call ran to an answer (how long it took counts)."""
        if ran and ticket.started_at is not None:
            took = self._clock() - ticket.started_at
            self.call_s = took if not self.call_s else self.call_s + TURN_AVERAGE * (took - self.call_s)
        self.running -= 1
        left = self._running_by[ticket.key] - 1
        if left:
            self._running_by[ticket.key] = left
        else:
            del self._running_by[ticket.key]
        self._dispatch()

    def _pass_over(self, key: str) -> None:
        """The participants before ``key`` in the round had their turn with nothing waiting: to the back
        while a call of theirs runs, else out of the round."""
        for other in list(itertools.takewhile(lambda k: k != key, self._lines)):
            self._credit.pop(other, None)
            line = self._lines.pop(other)
            if self._running_by.get(other):
                self._lines[other] = line

    def _dispatch(self) -> None:
        """Start the calls whose turn it is, while slots and the pacer allow."""
        if self.running >= self.concurrency:
            self.pacer.idle()  # no slot to start a call in: no images wanted now
        while self.running < self.concurrency:
            key = next((k for k, line in self._lines.items() if line), None)  # the first with a call waiting
            if key is None:
                self.pacer.idle()
                return
            line = self._lines[key]
            head = line[0]
            credit = self._credit.get(key, 0)
            if credit < head.images:  # a turn earns one image of credit; the line goes to the back
                self._credit[key] = credit + 1
                if credit + 1 < head.images:
                    self._lines[key] = self._lines.pop(key)
                    continue
            wait = self.pacer.start(head.images, waiting=sum(1 for queued in self._lines.values() if queued))
            if wait > 0:
                self._wake_in(wait)
                return
            self._pass_over(key)
            line.popleft()
            self._credit[key] -= head.images
            head.started_at = self._clock()
            self.running += 1
            self._running_by[key] = self._running_by.get(key, 0) + 1
            self._lines[key] = self._lines.pop(key)  # to the back, the others go first; it keeps its place
            if not line:
                self._credit.pop(key, None)
            head.granted.set()

    def _wake_in(self, seconds: float) -> None:
        if self._wakeup is not None:
            self._wakeup.cancel()
        loop = asyncio.get_running_loop()
        self._wakeup = loop.call_later(max(0.001, seconds), self._dispatch)
