"""``GET /models``: which models a server lists, until when, and which workshop pages it names.

Asked once per client, briefly (a slow list must not hold up the studio), and again after
:meth:`ModelDirectory.refresh`. An ``ipyimagegen serve`` workshop server names its queue, its
class wall and its usage page in headers of the same answer (:mod:`ipyimagegen.api.workshop` uses them).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from datetime import date
from typing import Any

from .budget import USAGE_HEADER
from .class_wall import WALL_HEADER
from .queue_watch import QUEUE_HEADER
from .transport import Transport

MODEL_LIST_SECONDS = 10.0
"""How long ``GET /models`` may take."""


@dataclass(frozen=True)
class ModelListing:
    """What ``GET /models`` answered: model ids with their shutdown dates (None: none given), and the
    workshop pages it named (None for a server that names none)."""

    shutdowns: dict[str, date | None]
    queue_url: str | None = None
    wall_url: str | None = None
    usage_url: str | None = None


def shutdown_dates(payload: Any) -> dict[str, date | None] | None:
    """``{model id: shutdown date or None}`` from a ``GET /models`` answer (None if it is not one)."""
    items = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(items, list):
        return None
    found: dict[str, date | None] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            continue
        when = item.get("shutdown_date")
        try:
            found[item["id"]] = date.fromisoformat(when) if isinstance(when, str) and when else None
        except ValueError:
            found[item["id"]] = None
    return found


def named_page_url(base_url: str, named: str | None) -> str | None:
    """The page (queue, wall) a workshop server names, under the API's own address; None for anything else."""
    if not named or not re.fullmatch(r"[a-z][a-z0-9_-]*", named):
        return None
    return f"{base_url.rstrip('/')}/{named}"


class ModelDirectory:
    """``GET {base_url}/models`` through ``transport``, asked once (thread-safe) and kept; with no
    ``base_url`` there is no list to ask (an Azure deployment's model is named by its owner)."""

    def __init__(self, transport: Transport, base_url: str | None) -> None:
        self._transport = transport
        self.base_url = base_url
        self._listing: ModelListing | None = None
        self._asked = False
        self._lock = threading.Lock()

    def listing(self) -> ModelListing | None:
        """The server's answer, asked the first time (None where it did not answer with a list)."""
        with self._lock:
            if not self._asked:
                self._asked = True
                self._listing = self._ask()
            return self._listing

    def known(self) -> ModelListing | None:
        """The answer if it was asked already: this never waits for the server."""
        return self._listing

    def refresh(self) -> None:
        """Ask again on the next look-up (models come and go)."""
        with self._lock:
            self._asked = False
            self._listing = None

    def _ask(self) -> ModelListing | None:
        if self.base_url is None:
            return None
        answer = self._transport.get_once(f"{self.base_url}/models", MODEL_LIST_SECONDS)
        if answer is None:
            return None
        response, body = answer
        try:
            shutdowns = shutdown_dates(json.loads(body))
        except ValueError:
            return None
        if shutdowns is None:
            return None
        return ModelListing(
            shutdowns,
            queue_url=named_page_url(self.base_url, response.headers.get(QUEUE_HEADER)),
            wall_url=named_page_url(self.base_url, response.headers.get(WALL_HEADER)),
            usage_url=named_page_url(self.base_url, response.headers.get(USAGE_HEADER)),
        )
