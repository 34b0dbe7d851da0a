"""Where a call waits in a workshop server's queue, told while it waits.

An ``ipyimagegen serve`` server names its queue page in a header of ``GET /models``
(:data:`QUEUE_HEADER`); while a call to such a server is out, :class:`QueueWatch` asks that page
once a second and reports "waiting in the workshop queue (position 3)" through the call's
progress hook (a message with a total of 0: no count), and an empty message once the call runs. Other servers are never asked.

A server whose queue is too long answers 429 ``workshop_busy`` at once instead (a
:class:`~ipyimagegen.errors.WorkshopBusyError`); :func:`wait_for_room` waits the time it asks and says
so through the same hook: "The workshop is busy: about 4 min, 37 ahead of you. Trying again at 12:04."
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

import requests

from ..errors import WorkshopBusyError
from .types import CallHooks

QUEUE_HEADER = "x-ipyimagegen-queue"
"""The header of ``GET /models`` that names the server's queue page (a path, such as ``/v1/queue``)."""
POLL_S = 1.0
BUSY_TICK_S = 1.0
"""How often the message of a wait for room is told again (its countdown, and over any other message)."""
COUNTDOWN_S = 90.0
"""Below this many seconds a wait for room counts down ("in 45 s"); above, it names the clock time."""


def waiting_text(position: int) -> str:
    return f"waiting in the workshop queue (position {position})"


def busy_text(error: WorkshopBusyError, left_s: float, retry_at: datetime) -> str:
    """What a wait for room says: "The workshop is busy: about 4 min, 37 ahead of you. Trying again at
    12:04." (``retry_at`` in the local clock), or "... Trying again in 45 s." in the last
    :data:`COUNTDOWN_S` seconds."""
    when = f"in {max(1, round(left_s))} s" if left_s < COUNTDOWN_S else f"at {retry_at:%H:%M}"
    return f"{error.situation} Trying again {when}."


def wait_for_room(
    error: WorkshopBusyError, seconds: float, hooks: CallHooks, pause: Callable[[float], None]
) -> None:
    """Wait ``seconds`` after a busy answer, telling ``hooks`` how busy and when the call is tried again
    (again every :data:`BUSY_TICK_S`, so the countdown moves); ``pause`` waits and raises when the call
    is cancelled (:meth:`RetryPolicy.wait <ipyimagegen.api.retry.RetryPolicy.wait>`). The message is
    cleared when the wait is over."""
    retry_at = datetime.now().astimezone() + timedelta(seconds=seconds)
    left = seconds
    try:
        while left > 0:
            hooks.progress(0, 0, busy_text(error, left, retry_at))
            step = min(BUSY_TICK_S, left)
            pause(step)
            left -= step
    finally:
        hooks.progress(0, 0, "")  # tried again now, or cancelled: the wait is over


class QueueWatch:
    """Ask ``url`` every :data:`POLL_S` while the block runs; report the caller's first position."""

    def __init__(
        self,
        session: requests.Session,
        url: str,
        hooks: CallHooks,
        *,
        auth: Any = None,
        headers: dict[str, str] | None = None,
        poll_s: float = POLL_S,
    ) -> None:
        self._get: Callable[[], requests.Response] = lambda: session.get(
            url, auth=auth, headers=headers, timeout=(2.0, 3.0), allow_redirects=False
        )
        self._hooks = hooks
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ipyimagegen-queue-watch", daemon=True)
        self._told = ""

    def __enter__(self) -> QueueWatch:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        if self._told:  # the call is over: nothing waits any more
            self._hooks.progress(0, 0, "")

    def _run(self) -> None:
        while not self._stop.wait(self._poll_s):
            position = self._position()
            if position is None:
                return  # no queue to read here: stop asking
            text = waiting_text(position) if position > 0 else ""
            if text != self._told and not self._stop.is_set():
                self._told = text
                self._hooks.progress(0, 0, text)  # a total of 0: a message, no count

    def _position(self) -> int | None:
        """The first of the caller's waiting calls' positions, 0 when none waits, None on no answer."""
        try:
            with self._get() as response:
                if response.status_code != 200:
                    return None
                found = json.loads(response.content).get("positions")
        except (requests.RequestException, ValueError, AttributeError):
            return None
        if not isinstance(found, list):
            return None
        numbers = [p for p in found if isinstance(p, int) and not isinstance(p, bool) and p > 0]
        return min(numbers) if numbers else 0
