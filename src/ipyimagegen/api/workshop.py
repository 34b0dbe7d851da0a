"""What an ``ipyimagegen serve`` workshop server adds to the Images API: its queue, its class wall,
and what the caller's token has left.

Such a server names these pages in headers of ``GET /models`` (:mod:`ipyimagegen.api.model_list`);
a client asks nothing of a server that names none (OpenAI's own API, another compatible server).
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager, nullcontext

from .budget import USAGE_SECONDS, TokenBudget
from .class_wall import MAX_SHARED_PROMPT, shared_file
from .config import host_of
from .deadline import Deadline
from .model_list import ModelDirectory
from .queue_watch import QueueWatch
from .transport import Transport
from .types import CallHooks

SHARE_SECONDS = 30.0
"""How long sharing a picture on a class wall may take."""


class WorkshopClient:
    """The workshop pages a server names: where a call waits in its queue, its class wall, and what the
    caller's token has left."""

    def __init__(self, transport: Transport, directory: ModelDirectory) -> None:
        self._transport = transport
        self._directory = directory

    @property
    def queue_url(self) -> str | None:
        """The server's queue page, once ``GET /models`` has named it (never asked here)."""
        listing = self._directory.known()
        return listing.queue_url if listing is not None else None

    @property
    def wall_url(self) -> str | None:
        """The server's class wall, once ``GET /models`` has named it (never asked here)."""
        listing = self._directory.known()
        return listing.wall_url if listing is not None else None

    def watch_queue(self, hooks: CallHooks) -> AbstractContextManager[object]:
        """While the block runs, tell ``hooks`` where the call waits in the queue (where there is one,
        and someone listens to progress)."""
        url = self.queue_url
        if url is None or hooks.on_progress is None:
            return nullcontext()
        transport = self._transport
        return QueueWatch(transport.session, url, hooks, auth=transport.auth, headers=transport.api_headers())

    def share_picture(self, image: bytes, prompt: str = "") -> bool:
        """Put a picture, with its prompt, on the class wall (made smaller first); False where the
        server names no wall (``GET /models`` is asked first, if it was not yet)."""
        listing = self._directory.listing()
        if listing is None or listing.wall_url is None:
            return False
        self._transport.send(
            "POST",
            listing.wall_url,
            CallHooks(),
            Deadline(SHARE_SECONDS),
            files=[("image", shared_file(image))],
            data=[("prompt", prompt[:MAX_SHARED_PROMPT])],
        )
        return True

    def budget(self) -> TokenBudget | None:
        """What the caller's token has used and has left (``GET /usage``); None where the server names no
        usage page (no participant tokens, or not a workshop server) or its answer is not a usage record.
        ``GET /models`` is asked first, if it was not yet; a refused token raises as a call would."""
        listing = self._directory.listing()
        if listing is None or listing.usage_url is None:
            return None
        reply = self._transport.send("GET", listing.usage_url, CallHooks(), Deadline(USAGE_SECONDS))
        try:
            answer = json.loads(reply.body or b"")
        except ValueError:
            return None
        return TokenBudget.from_usage(answer, host_of(listing.usage_url))
