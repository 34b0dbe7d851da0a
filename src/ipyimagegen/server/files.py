"""Result images kept in memory for ``response_format=url`` answers, each under a random name, for a while."""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from ..api.types import EXTENSION_BY_MIME


@dataclass(frozen=True)
class StoredImage:
    data: bytes
    mime_type: str
    expires: float


class ResultStore:
    """Images by unguessable name, each kept ``ttl_s`` seconds; the oldest go first past ``max_bytes``."""

    def __init__(
        self,
        ttl_s: float = 3600.0,
        max_bytes: int = 512 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_bytes = max_bytes
        self._clock = clock
        self._images: OrderedDict[str, StoredImage] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def put(self, data: bytes, mime_type: str) -> str:
        """Keep an image; returns its name (``<random>.png``)."""
        name = f"{secrets.token_urlsafe(24)}.{EXTENSION_BY_MIME.get(mime_type, 'png')}"
        with self._lock:
            self._images[name] = StoredImage(data, mime_type, self._clock() + self.ttl_s)
            self._bytes += len(data)
            self._drop_old()
        return name

    def get(self, name: str) -> StoredImage | None:
        """The image stored under ``name``, or None when there is none or it has expired."""
        with self._lock:
            self._drop_old()
            return self._images.get(name)

    def __len__(self) -> int:
        with self._lock:
            return len(self._images)

    def _drop_old(self) -> None:
        now = self._clock()
        while self._images:
            name, oldest = next(iter(self._images.items()))
            if oldest.expires > now and self._bytes <= self.max_bytes:
                break
            del self._images[name]
            self._bytes -= len(oldest.data)
