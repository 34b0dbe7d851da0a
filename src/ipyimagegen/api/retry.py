"""When to retry a failed call, and how long to wait first.

The policy follows the official clients: retry 408, 409, 429 and 5xx answers, dropped
connections and timeouts; obey the server's ``x-should-retry`` header; wait what
``Retry-After`` (or ``retry-after-ms``) asks, up to a cap, else back off exponentially
with jitter. A busy workshop server's 429 (``workshop_busy``) is the exception: it says exactly when
to come back, so that wait is neither capped nor counted as a retry; only the call's deadline bounds it.
"""

from __future__ import annotations

import email.utils
import math
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from ..errors import APIError, CancelledError, WorkshopBusyError

RETRYABLE_STATUS = frozenset({408, 409, 429})


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asks to wait: ``retry-after-ms``, else ``Retry-After`` (seconds or an HTTP date)."""
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            continue
        return seconds if math.isfinite(seconds) else None
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": UTC by RFC 5322
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - time.time())


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float | None:
    """Seconds in a duration as rate-limit headers give it: ``"1s"``, ``"6m0s"``, ``"20ms"``, ``"1h2m3.5s"``
    or plain seconds (``"0.5"``); None when it is none of these."""
    text = text.strip().lower()
    try:
        seconds = float(text)
    except ValueError:
        parts = _DURATION_PART.findall(text)
        if not parts or "".join(number + unit for number, unit in parts) != text:
            return None
        seconds = sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def rate_limit_reset(headers: Mapping[str, str]) -> float | None:
    """Seconds until the server's exhausted rate limits reset, from OpenAI's ``x-ratelimit-reset-<limit>``
    headers: the longest among the limits whose ``x-ratelimit-remaining-<limit>`` is 0 or not given
    (None when no such header says)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    waits = []
    for name, value in lowered.items():
        if not name.startswith("x-ratelimit-reset-"):
            continue
        remaining = lowered.get("x-ratelimit-remaining-" + name.removeprefix("x-ratelimit-reset-"))
        if remaining is not None and remaining.strip() not in ("0", "0.0"):
            continue  # this limit is not the one spent
        seconds = parse_duration(value)
        if seconds is not None:
            waits.append(seconds)
    return max(waits, default=None)


def wait_or_cancel(seconds: float, cancel: threading.Event | None) -> None:
    """Sleep ``seconds``, waking at once (with :class:`CancelledError`) if ``cancel`` is set."""
    if cancel is None:
        time.sleep(seconds)
    elif cancel.wait(seconds):
        raise CancelledError()


@dataclass
class RetryPolicy:
    """How many times to retry, and how long to wait between tries.

    ``sleep`` replaces the wait (tests pass a recorder); by default the wait ends early when
    the call is cancelled.
    """

    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0
    sleep: Callable[[float], None] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if (
            not isinstance(self.max_retries, int)
            or isinstance(self.max_retries, bool)
            or self.max_retries < 0
        ):
            raise ValueError(f"max_retries must be a whole number of at least 0, got {self.max_retries!r}.")

    def should_retry(
        self, status_code: int, headers: Mapping[str, str], error: APIError | None = None
    ) -> bool:
        """Whether an error answer is worth another try."""
        retry_after = parse_retry_after(headers)
        if retry_after is not None and retry_after > self.max_retry_after:
            return False  # the caller is better told to come back later than kept waiting
        should = (headers.get("x-should-retry") or "").strip().lower()
        if should in ("true", "false"):
            return should == "true"
        if error is not None and error.code == "insufficient_quota":
            return False  # waiting does not refill a quota
        return status_code in RETRYABLE_STATUS or status_code >= 500

    def delay(self, retries_done: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retries_done + 1``."""
        if retry_after is not None and 0 < retry_after <= self.max_retry_after:
            return retry_after
        backoff = min(self.initial_delay * 2.0**retries_done, self.max_delay)
        return backoff * (1 - 0.25 * random.random())

    def wait(self, seconds: float, cancel: threading.Event | None = None) -> None:
        """Wait before the next try; raise :class:`CancelledError` if the call is cancelled."""
        if self.sleep is None:
            wait_or_cancel(seconds, cancel)
            return
        self.sleep(seconds)
        if cancel is not None and cancel.is_set():
            raise CancelledError()


BUSY_MIN_WAIT_S = 1.0
"""The shortest wait after a busy workshop's answer, whatever its ``Retry-After`` says; and the least
time the call must have left once the wait is over to be worth trying again."""


def come_back_later(error: APIError, retry_after: float, longest_wait: float) -> APIError:
    """``error``, telling when to try again: the server asks for a longer wait than this call allows.

    A busy workshop's error says how busy, and when in the local clock: "The workshop is busy: about
    4 min, 37 ahead of you. Try again at 12:04 (in 2 min): this call waits 60 s at most."
    """
    when = datetime.now(timezone.utc) + timedelta(seconds=retry_after)
    if isinstance(error, WorkshopBusyError):
        error.message = (
            f"{error.situation} Try again at {when.astimezone():%H:%M} (in {_duration(retry_after)}): "
            f"this call waits {_duration(longest_wait)} at most."
        )
    else:
        error.message = (
            f"{error.message.rstrip()} The server asks to wait {_duration(retry_after)} before another try "
            f"(until {when:%H:%M:%S} UTC), longer than this call waits ({_duration(longest_wait)}): "
            "try again then."
        )
    error.args = (error.message,)
    error.retry_at = when
    return error


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
