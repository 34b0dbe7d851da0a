"""Count the bytes widgets send to the browser, with no browser: a comm that serializes and counts.

:func:`recording_comms` makes every widget opened inside it use a :class:`RecordingComm`. Each
message (``comm_open`` with the widget's state, ``comm_msg`` updates, ``comm_close``) is
serialized by jupyter_client's :class:`Session` into the frames a kernel sends (identity,
HMAC signature, header, parent header, metadata, JSON content), plus its binary buffers; the
recorder adds up those bytes. Serializing costs what it costs in a kernel, so timings taken
inside the block include it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import comm
from comm.base_comm import BaseComm
from jupyter_client.session import Session

_SESSION = Session(key=b"bench-signing-key")


@dataclass(frozen=True)
class Traffic:
    """Messages and bytes sent: all of them, and the binary buffers (image bytes) among them."""

    messages: int = 0
    total_bytes: int = 0
    buffer_bytes: int = 0

    def __sub__(self, other: Traffic) -> Traffic:
        return Traffic(
            self.messages - other.messages,
            self.total_bytes - other.total_bytes,
            self.buffer_bytes - other.buffer_bytes,
        )


class Recorder:
    """A running count of what the recording comms sent (thread-safe: widgets update from workers)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._traffic = Traffic()

    def add(self, frame_bytes: int, buffer_bytes: int) -> None:
        with self._lock:
            current = self._traffic
            self._traffic = Traffic(
                current.messages + 1,
                current.total_bytes + frame_bytes + buffer_bytes,
                current.buffer_bytes + buffer_bytes,
            )

    @property
    def traffic(self) -> Traffic:
        with self._lock:
            return self._traffic


RECORDER = Recorder()


class RecordingComm(BaseComm):
    """A comm that builds each message as a kernel would and counts its bytes instead of sending it."""

    def publish_msg(
        self,
        msg_type: str,
        data: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: list[Any] | None = None,
        **keys: Any,
    ) -> None:
        content = {"data": data or {}, "comm_id": self.comm_id, **keys}
        message = _SESSION.msg(msg_type, content=content, metadata=metadata or {})
        frames = _SESSION.serialize(message, ident=self.topic)
        RECORDER.add(sum(len(frame) for frame in frames), sum(memoryview(b).nbytes for b in buffers or ()))


@contextmanager
def recording_comms() -> Iterator[Recorder]:
    """Widgets opened in this block send through :class:`RecordingComm`; yields the recorder."""
    previous = comm.create_comm
    comm.create_comm = RecordingComm
    try:
        yield RECORDER
    finally:
        comm.create_comm = previous


@contextmanager
def measured(recorder: Recorder) -> Iterator[list[Traffic]]:
    """The traffic sent inside the block, as the single item of the yielded list once it ends."""
    result: list[Traffic] = []
    before = recorder.traffic
    yield result
    result.append(recorder.traffic - before)
