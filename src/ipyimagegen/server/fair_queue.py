"""Fair shares of the upstream: calls served by participant in turn, within a rate and a concurrency.

An organisation's limit is a few hundred images a minute; served first come first served, one
participant asking for 10 images in a loop would hold the room. Here each participant has a
line of their own and the lines are served in turn by deficit round robin: at each turn a
participant's line earns one image of credit, and its first call goes once the credit covers the
images it asks for. So every participant waiting gets the same number of images per round
whether they ask for one at a time or ten. ``concurrency`` calls run at once; ``rate`` (images
per period, a token bucket) bounds the images started per minute.

Used from one event loop. :meth:`FairQueue.positions` tells a participant where their calls
stand (``GET /v1/queue``).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from .tokens import Rate


@dataclass(eq=False)
class Ticket:
    """One call waiting for, or holding, its turn."""

    key: str
    images: int
    queued_at: float
    granted: asyncio.Event = field(default_factory=asyncio.Event)


class FairQueue:
    """Calls by participant, in turn (see the module's docstring)."""

    def __init__(
        self, concurrency: int, rate: Rate | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency!r}")
        self.concurrency = concurrency
        self.rate = rate
        self._clock = clock
        self.running = 0
        self._lines: dict[str, deque[Ticket]] = {}  # participants with calls waiting, in turn order
        self._credit: dict[str, int] = {}
        self._bucket = float(rate.count) if rate else 0.0
        self._filled_at = clock()
        self._wakeup: asyncio.TimerHandle | None = None

    @property
    def waiting(self) -> int:
        return sum(len(line) for line in self._lines.values())

    @asynccontextmanager
    async def turn(self, key: str, images: int) -> AsyncIterator[Ticket]:
        """Wait for ``key``'s turn for a call of ``images`` images, and hold a slot while the block runs."""
        ticket = Ticket(key, max(1, images), self._clock())
        self._lines.setdefault(key, deque()).append(ticket)
        self._dispatch()
        try:
            await ticket.granted.wait()
        except BaseException:  # cancelled while waiting (the caller went away): leave the line
            if not ticket.granted.is_set():
                self._leave(ticket)
                self._dispatch()
            else:
                self._release()
            raise
        try:
            yield ticket
        finally:
            self._release()

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

    def _leave(self, ticket: Ticket) -> None:
        line = self._lines.get(ticket.key)
        if line is not None and ticket in line:
            line.remove(ticket)
            if not line:
                del self._lines[ticket.key]
                self._credit.pop(ticket.key, None)

    def _release(self) -> None:
        self.running -= 1
        self._dispatch()

    def _refill(self) -> None:
        if self.rate is None:
            return
        now = self._clock()
        per_s = self.rate.count / self.rate.period_s
        self._bucket = min(float(self.rate.count), self._bucket + (now - self._filled_at) * per_s)
        self._filled_at = now

    def _dispatch(self) -> None:
        """Start the calls whose turn it is, while slots and the rate allow."""
        self._refill()
        while self._lines and self.running < self.concurrency:
            key = next(iter(self._lines))
            line = self._lines[key]
            head = line[0]
            credit = self._credit.get(key, 0)
            if credit < head.images:  # a turn earns one image of credit; the line goes to the back
                self._credit[key] = credit + 1
                if credit + 1 < head.images:
                    self._lines[key] = self._lines.pop(key)
                    continue
            cost = min(head.images, self.rate.count) if self.rate else 0
            if self.rate is not None and self._bucket < cost:
                self._wake_in((cost - self._bucket) / (self.rate.count / self.rate.period_s))
                return
            line.popleft()
            self._credit[key] -= head.images
            self._bucket -= cost
            self.running += 1
            del self._lines[key]
            if line:
                self._lines[key] = line  # to the back: the others go first
            else:
                self._credit.pop(key, None)
            head.granted.set()

    def _wake_in(self, seconds: float) -> None:
        if self._wakeup is not None:
            self._wakeup.cancel()
        loop = asyncio.get_running_loop()
        self._wakeup = loop.call_later(max(0.001, seconds), self._dispatch)
