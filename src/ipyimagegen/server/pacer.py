"""The pace of the upstream: when the next images may start, and slowing down when it refuses.

An upstream may enforce its limit over windows much shorter than its period: OpenAI says a limit
per minute may be enforced per second. So the bucket here holds only a short window's images,
a sixtieth of the period (a second of a per-minute rate; at most two seconds' worth, at least one
image), and starts with no more: images start at ``count / period`` from the first, never a
period's worth at once. A call larger than the bucket starts once the bucket is full and leaves
it in debt, so the pace holds on average.

When the upstream refuses anyway for its rate (429), :meth:`LocalPacer.slow_down` pauses every start
for as long as it asked (``Retry-After``; a second when it does not say), empties the bucket and
halves the pace, which climbs back to the full rate over one period. A burst of refusals cuts
once: a refusal of a call started before the last cut only extends the pause. Without a rate the
pacer only pauses.

The fair queue asks a pacer two things: when may N images start, and the upstream
said to slow down (:class:`Pacer`). :class:`LocalPacer` keeps the pace of one server; a pacer
shared by several servers can take its place.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol

from .tokens import Rate

SHORT_WINDOW = 1 / 60
"""The share of the rate's period the bucket holds: the window an upstream may enforce the rate over."""
MAX_BURST_S = 2.0
"""The bucket never holds more than this many seconds of the rate (an hourly or daily rate)."""
DEFAULT_PAUSE_S = 1.0
"""The pause after a refusal that says nothing of when to come back."""
SLOWER = 0.5
"""The pace after a refusal, as a share of the pace before it."""
SLOWEST = 1 / 16
"""The pace never falls below this share of the rate."""


class Pacer(Protocol):
    """What the fair queue asks of a pacer."""

    def start(self, images: int) -> float:
        """``0.0`` when ``images`` images may start now (they count as started), else the seconds to wait."""
        ...

    def slow_down(self, retry_after: float | None, started_at: float) -> None:
        """The upstream refused a call started at ``started_at`` (on the queue's clock) for its rate, asking
        to wait ``retry_after`` seconds (None: it did not say)."""
        ...


def burst_of(rate: Rate) -> float:
    """The images the bucket holds at most (and starts with) for ``rate``."""
    window_s = min(rate.period_s * SHORT_WINDOW, MAX_BURST_S)
    return max(1.0, rate.count * window_s / rate.period_s)


class LocalPacer:
    """Images started at ``rate`` (None: no limit) in short bursts, slower for a while after a refusal.

    ``clock`` gives seconds (the fair queue's clock: ``started_at`` is read on it).
    """

    def __init__(self, rate: Rate | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst_of(rate) if rate is not None else math.inf
        self._clock = clock
        now = clock()
        self._level = self.burst
        self._filled_at = now
        self._paused_until = now
        self._cut_to = 1.0  # the share of the rate the pace was cut to, last time
        self._cut_at = -math.inf

    def share(self, now: float | None = None) -> float:
        """The share of the rate the pace is at: 1.0, or less for one period after a refusal."""
        if self.rate is None:
            return 1.0
        now = self._clock() if now is None else now
        climbed = min(1.0, (now - self._cut_at) / self.rate.period_s)
        return self._cut_to + (1.0 - self._cut_to) * climbed

    def start(self, images: int) -> float:
        now = self._clock()
        self._refill(now)
        if now < self._paused_until:
            return self._paused_until - now
        needed = min(float(images), self.burst)
        if self._level >= needed - 1e-9:
            self._level -= images
            return 0.0
        assert self.rate is not None  # without a rate the bucket is never short
        return (needed - self._level) / (self.rate.count / self.rate.period_s * self.share(now))

    def slow_down(self, retry_after: float | None, started_at: float) -> None:
        now = self._clock()
        self._refill(now)
        pause = DEFAULT_PAUSE_S if retry_after is None else max(0.0, retry_after)
        self._paused_until = max(self._paused_until, now + pause)
        if self.rate is None:
            return
        self._level = min(self._level, 0.0)
        if started_at > self._cut_at:  # the first refusal of what started since the last cut
            self._cut_to = max(SLOWEST, self.share(now) * SLOWER)
            self._cut_at = now

    def _refill(self, now: float) -> None:
        if self.rate is None:
            return
        per_s = self.rate.count / self.rate.period_s
        average_share = (self.share(self._filled_at) + self.share(now)) / 2  # the share climbs linearly
        elapsed = max(0.0, now - self._filled_at)
        self._level = min(self.burst, self._level + elapsed * per_s * average_share)
        self._filled_at = now
