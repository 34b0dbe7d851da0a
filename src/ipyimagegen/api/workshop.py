"""What an ``ipyimagegen serve`` workshop server adds to the Images API: its queue and its class wall.

Such a server names both pages in headers of ``GET /models`` (:mod:`ipyimagegen.api.model_list`);
a client asks nothing of a server that names none (OpenAI's own API, another compatible server).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

from .class_wall import MAX_SHARED_PROMPT, shared_file
from .deadline import Deadline
from .model_list import ModelDirectory
from .queue_watch import QueueWatch
from .transport import Transport
from .types import CallHooks

SHARE_SECONDS = 30.0
"""How long sharing a picture on a class wall may take."""


class WorkshopClient:
    """The workshop pages a server names: where a call waits in its queue, and its class wall."""

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
