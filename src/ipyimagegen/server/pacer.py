"""The pace of the upstream: when the next images may start, and slowing down when it refuses.

An upstream may enforce its limit over windows much shorter than its period: OpenAI says a limit
per minute may be enforced per second. So the bucket here holds only a short window's images,
a sixtieth of the period (a second of a per-minute rate; at most two seconds' worth, at least one
image), less one image of headroom (:func:`capacity_of`), and starts with no more: images start at
``count / period`` from the first, never a period's worth at once. A call larger than the bucket
starts once the bucket is full and leaves it in debt, so the pace holds on average.

When the upstream refuses anyway for its rate (429), :meth:`LocalPacer.slow_down` pauses every start
for as long as it asked (``Retry-After``; a second when it does not say), empties the bucket and
halves the pace, which climbs back to the full rate over one period. A burst of refusals cuts
once: a refusal of a call started before the last cut only extends the pause. Without a rate the
pacer only pauses.

The fair queue asks a pacer when N images may start and tells it that the upstream said to slow
down (:class:`Pacer`). The bucket's arithmetic is :class:`PaceState`; :class:`LocalPacer` keeps it in
memory for one server, :class:`~ipyimagegen.server.shared_pace.SharedPacer` in the database that a
room of servers shares, so that together they send at the organisation's rate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .tokens import Rate

SHORT_WINDOW = 1 / 60
"""The share of the rate's period the bucket holds: the window an upstream may enforce the rate over."""
MAX_BURST_S = 2.0
"""The short window is never longer than this many seconds of the rate (an hourly or daily rate)."""
HEADROOM = 1.0
"""Images of the upstream's short window the bucket leaves unused (see :func:`capacity_of`)."""
DEFAULT_PAUSE_S = 1.0
"""The pause after a refusal that says nothing of when to come back."""
SLOWER = 0.5
"""The pace after a refusal, as a share of the pace before it."""
SLOWEST = 1 / 16
"""The pace never falls below this share of the rate."""


class Pacer(Protocol):
    """What the fair queue asks of a pacer."""

    def start(self, images: int, waiting: int = 1) -> float:
        """``0.0`` when ``images`` images may start now (they count as started), else the seconds to wait.
        ``waiting``: the participants with calls waiting here (a shared pacer shares by them)."""
        ...

    def slow_down(self, retry_after: float | None, started_at: float) -> None:
        """The upstream refused a call started at ``started_at`` (on the queue's clock) for its rate, asking
        to wait ``retry_after`` seconds (None: it did not say)."""
        ...

    def seconds_for(self, images: int) -> float:
        """About how long until ``images`` more images may have started here, one after another (how long
        a queue takes to drain)."""
        ...

    def idle(self) -> None:
        """Nothing waits for the pacer any more (until the next :meth:`start`)."""
        ...


def burst_of(rate: Rate) -> float:
    """The images the upstream's short window holds for ``rate`` (a sixtieth of its period, at most
    two seconds of it, at least one image)."""
    window_s = min(rate.period_s * SHORT_WINDOW, MAX_BURST_S)
    return max(1.0, rate.count * window_s / rate.period_s)


def capacity_of(rate: Rate) -> float:
    """The images the bucket holds at most (and starts with): the upstream's short window less one image
    (half of it when it holds one or two), so that a call arriving early (network jitter, replicas'
    turns a few milliseconds apart) still finds the upstream's window holding what it asks."""
    burst = burst_of(rate)
    return max(burst - HEADROOM, burst / 2)


@dataclass
class PaceState:
    """A pacer's state: the bucket's ``level`` at ``filled_at``, the pause the upstream asked for, and the
    last cut of the pace (:meth:`share`). Pure: the clock's time is passed in (the fair queue's, or a
    shared database's), so the state can live in memory or in a database row."""

    level: float
    filled_at: float
    paused_until: float
    cut_to: float = 1.0  # the share of the rate the pace was cut to, last time
    cut_at: float = -math.inf

    @classmethod
    def full(cls, rate: Rate | None, now: float) -> PaceState:
        return cls(capacity_of(rate) if rate is not None else math.inf, now, now)

    def share(self, rate: Rate | None, now: float) -> float:
        """The share of the rate the pace is at: 1.0, or less for one period after a refusal."""
        if rate is None:
            return 1.0
        climbed = min(1.0, max(0.0, now - self.cut_at) / rate.period_s)
        return self.cut_to + (1.0 - self.cut_to) * climbed

    def refill(self, rate: Rate | None, now: float) -> None:
        if rate is None:
            return
        per_s = rate.count / rate.period_s
        average_share = (self.share(rate, self.filled_at) + self.share(rate, now)) / 2  # it climbs linearly
        elapsed = max(0.0, now - self.filled_at)
        self.level = min(capacity_of(rate), self.level + elapsed * per_s * average_share)
        self.filled_at = max(self.filled_at, now)

    def take(self, rate: Rate | None, images: int, now: float) -> float:
        """``0.0`` when ``images`` may start now (taken from the bucket), else the seconds to wait."""
        self.refill(rate, now)
        if now < self.paused_until:
            return self.paused_until - now
        if rate is None:
            return 0.0
        needed = min(float(images), capacity_of(rate))
        if self.level >= needed - 1e-9:
            self.level -= images
            return 0.0
        return (needed - self.level) / (rate.count / rate.period_s * self.share(rate, now))

    def seconds_for(self, rate: Rate | None, images: int, now: float) -> float:
        """The seconds until ``images`` more may have started one after another (none taken meanwhile)."""
        self.refill(rate, now)
        pause = max(0.0, self.paused_until - now)
        if rate is None or images <= 0:
            return pause
        needed = images - 1 + min(1.0, capacity_of(rate)) - self.level  # the last starts once this refilled
        return pause + max(0.0, needed) / (rate.count / rate.period_s * self.share(rate, now))

    def slow(self, rate: Rate | None, retry_after: float | None, started_at: float, now: float) -> None:
        """The upstream refused a call started at ``started_at``: pause, empty the bucket, cut the pace
        (once for a burst of refusals: see the module's docstring)."""
        self.refill(rate, now)
        pause = DEFAULT_PAUSE_S if retry_after is None else max(0.0, retry_after)
        self.paused_until = max(self.paused_until, now + pause)
        if rate is None:
            return
        self.level = min(self.level, 0.0)
        if started_at > self.cut_at:  # the first refusal of what started since the last cut
            self.cut_to = max(SLOWEST, self.share(rate, now) * SLOWER)
            self.cut_at = now


class LocalPacer:
    """One server's pace, in memory: images started at ``rate`` (None: no limit) in short bursts, slower
    for a while after a refusal. ``clock`` gives seconds (the fair queue's: ``started_at`` is read on it).
    """

    def __init__(self, rate: Rate | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._state = PaceState.full(rate, clock())

    @property
    def burst(self) -> float:
        return capacity_of(self.rate) if self.rate is not None else math.inf

    def share(self, now: float | None = None) -> float:
        return self._state.share(self.rate, self._clock() if now is None else now)

    def start(self, images: int, waiting: int = 1) -> float:
        return self._state.take(self.rate, images, self._clock())

    def slow_down(self, retry_after: float | None, started_at: float) -> None:
        self._state.slow(self.rate, retry_after, started_at, self._clock())

    def seconds_for(self, images: int) -> float:
        return self._state.seconds_for(self.rate, images, self._clock())

    def idle(self) -> None:
        pass
