"""A file button whose files cross to the kernel in pieces and are never kept in the widget's state.

ipywidgets' ``FileUpload`` keeps the files in its value (and so in a saved notebook) until the
kernel clears it, and sends each file in one message: Jupyter's websocket refuses a message over
10 MiB and drops the connection, so a phone photo never arrives. This button sends every file in
pieces of at most :data:`CHUNK_BYTES` (see ``static/file_picker.js`` for the messages), with
the progress in its note ("reading 6.2 of 18.0 MB"), and says what the kernel made of the files
("holiday.jpg" after a good upload). A file over ``max_bytes`` is refused from its size, in the
page before it is read and again in the kernel, and an upload that breaks off or is replaced by a
new one hands nothing on, so whatever the files were for stays as it was.

With ``drop_area``, files dropped on that part of the page, or images pasted (Ctrl/⌘+V) while it
is shown, are taken the same way.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anywidget
from ipywidgets import CallbackDispatcher
from traitlets import Bool, Int, Unicode

log = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024 - 16 * 1024
"""The most file bytes one message carries: with its header, a message stays under 1 MiB."""
MAX_FILES = 100
"""The most files one upload may name (with ``multiple``; one without)."""
MAX_NAME = 255
"""File names and types are cut to this many characters."""
_UPLOAD_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def size_text(n: int) -> str:
    """``2.1 MB``, ``340 KB``, ``512 bytes``."""
    if n < 1024:
        return f"{n} bytes"
    if n < 1024 * 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n / 1024 / 1024:.1f} MB"


def progress_text(received: int, total: int) -> str:
    """``6.2 of 18.0 MB``: both numbers in the unit of the total."""
    if total >= 1024 * 1024:
        return f"{received / 1024 / 1024:.1f} of {total / 1024 / 1024:.1f} MB"
    if total >= 100 * 1024:
        return f"{received / 1024:.0f} of {total / 1024:.0f} KB"
    return f"{received:,} of {total:,} bytes"


class _Refused(Exception):
    """Why a message ends an upload (a sentence's end, for the note)."""


@dataclass
class _Incoming:
    """One file of an upload: what the page said about it, and its bytes as they arrive (in one
    buffer of the file's size, made when its first piece comes)."""

    name: str
    type: str
    size: int
    taken: bool  # False: over the limit, never sent
    data: bytearray = field(default_factory=bytearray, repr=False)
    received: int = 0

    @property
    def complete(self) -> bool:
        return not self.taken or self.received == self.size

    def add(self, piece: memoryview) -> None:
        if not self.data:
            self.data = bytearray(self.size)
        self.data[self.received : self.received + piece.nbytes] = piece
        self.received += piece.nbytes


@dataclass
class _Upload:
    id: str
    files: list[_Incoming]

    @property
    def taken(self) -> list[_Incoming]:
        """The files being received (those within the limit)."""
        return [file for file in self.files if file.taken]

    @property
    def expected(self) -> int:
        return sum(file.size for file in self.taken)

    @property
    def received(self) -> int:
        return sum(file.received for file in self.files)


def _whole_number(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any, default: str) -> str:
    return value[:MAX_NAME] if isinstance(value, str) and value else default


class FilePicker(anywidget.AnyWidget):  # type: ignore[misc]
    """A button that opens the browser's file chooser; ``on_files(callback)`` gets the files as
    upload entries (``name``, ``type``, ``size``, ``content``), like ipywidgets' ``FileUpload``;
    ``on_error(callback)`` gets a sentence for each upload that did not arrive (too large, broken
    off), after which the note says which files were not used."""

    _esm = Path(__file__).parent / "static" / "file_picker.js"
    _css = """
    .ipyimagegen-file-note { margin-left: 6px; font-size: 12px; color: var(--jp-ui-font-color2, #666); }
    .ipyimagegen-drop-here { outline: 2px dashed var(--jp-brand-color1, #1976d2); outline-offset: -4px; }
    """
    description = Unicode("Upload").tag(sync=True)
    tooltip = Unicode("").tag(sync=True)
    accept = Unicode("").tag(sync=True)
    multiple = Bool(False).tag(sync=True)
    disabled = Bool(False).tag(sync=True)
    busy = Bool(False, help="True while files arrive or are handed on.").tag(sync=True)
    note = Unicode("", help="The progress, or what the last files became (a name, or why not).").tag(
        sync=True
    )
    max_bytes = Int(0, min=0, help="The largest file taken, in bytes (0: no limit).").tag(sync=True)
    chunk_bytes = Int(CHUNK_BYTES, min=1, help="The most file bytes the page sends in one message.").tag(
        sync=True
    )
    drop_area = Unicode(
        "",
        help="A CSS selector of an ancestor: files dropped on it, or pasted while it is shown, count as chosen.",
    ).tag(sync=True)

    def __init__(self, *, too_large_hint: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.too_large_hint = too_large_hint
        """Added to the message about a file over ``max_bytes`` (what to do instead)."""
        self.refused: list[str] = []
        """The files of the latest upload that were not handed on (over the limit, or broken off)."""
        self._upload: _Upload | None = None
        self._handlers = CallbackDispatcher()
        self._error_handlers = CallbackDispatcher()
        self.on_msg(self._handle_message)

    def on_files(self, callback: Callable[[list[dict[str, Any]]], Any], remove: bool = False) -> None:
        self._handlers.register_callback(callback, remove=remove)

    def on_error(self, callback: Callable[[str], Any], remove: bool = False) -> None:
        """``callback(message)`` for files refused or an upload broken off (nothing was handed on)."""
        self._error_handlers.register_callback(callback, remove=remove)

    def receive(self, entries: list[dict[str, Any]]) -> None:
        """Files as they arrive whole (each with its bytes in ``content``): handed to ``on_files``."""
        self._upload = None
        self.refused = []
        self._hand_on(entries)

    def close(self) -> None:
        self._upload = None
        super().close()

    # -- the page's messages -----------------------------------------------------------------------

    def _handle_message(self, _widget: Any, content: Any, buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        event = content.get("event")
        handler = {
            "upload-start": self._start,
            "upload-chunk": self._chunk,
            "upload-end": self._end,
            "upload-cancel": self._cancel,
        }.get(event if isinstance(event, str) else "")
        if handler is None:
            log.warning("the file button got a message it does not know: %.40r", event)
            return
        upload_id = content.get("id")
        if not isinstance(upload_id, str) or not _UPLOAD_ID.fullmatch(upload_id):
            log.warning("the file button got an upload message without a valid id")
            return
        handler(upload_id, content, list(buffers or []))

    def _start(self, upload_id: str, content: dict[str, Any], buffers: list[Any]) -> None:
        self._upload = None  # a new upload replaces the one in flight
        try:
            files = self._described(content.get("files"), buffers)
        except _Refused as exc:
            self.send({"event": "upload-stop", "id": upload_id})
            self.refused = []
            self.busy = False
            self.note = "upload refused"
            self._error_handlers(f"The upload was refused: {exc}. Choose the files again.")
            return
        upload = _Upload(upload_id, files)
        over = [file for file in files if not file.taken]
        self.refused = [file.name for file in over]
        if upload.taken:
            self._upload = upload
            self.busy = True
            self.note = f"reading {progress_text(0, upload.expected)}"
        else:
            self.busy = False
            self.note = f"not used: {', '.join(self.refused)}"
        for file in over:
            hint = f" {self.too_large_hint}" if self.too_large_hint else ""
            self._error_handlers(
                f"{file.name} is {size_text(file.size)}; the largest file accepted is "
                f"{size_text(self.max_bytes)}.{hint}"
            )

    def _described(self, described: Any, buffers: list[Any]) -> list[_Incoming]:
        """The files a start message names, each made ready to receive unless it is over the limit."""
        if buffers:
            raise _Refused("its first message carried file bytes")
        if not isinstance(described, list) or not described:
            raise _Refused("it named no files")
        most = MAX_FILES if self.multiple else 1
        if len(described) > most:
            raise _Refused(f"it named {len(described)} files; this button takes {most} at a time")
        files = []
        for info in described:
            if not isinstance(info, dict):
                raise _Refused("a file was described by something other than its name and size")
            name = _text(info.get("name"), "upload")
            size = _whole_number(info.get("size"))
            if size is None or size < 0:
                raise _Refused(f"{name} came without its size")
            within = not self.max_bytes or size <= self.max_bytes
            files.append(_Incoming(name, _text(info.get("type"), ""), size, within))
        return files

    def _chunk(self, upload_id: str, content: dict[str, Any], buffers: list[Any]) -> None:
        upload = self._upload
        if upload is None or upload.id != upload_id:
            log.debug("a piece of an upload that is over (replaced, refused or finished)")
            return
        try:
            file, piece = self._piece(upload, content, buffers)
        except _Refused as exc:
            self._refuse(upload, str(exc))
            return
        file.add(piece)
        received = upload.received
        self.note = f"reading {progress_text(received, upload.expected)}"
        self.send({"event": "upload-progress", "id": upload_id, "received": received})

    def _piece(
        self, upload: _Upload, content: dict[str, Any], buffers: list[Any]
    ) -> tuple[_Incoming, memoryview]:
        """The file a chunk message belongs to and its bytes, once they are known to fit in order."""
        index = _whole_number(content.get("file"))
        offset = _whole_number(content.get("offset"))
        if index is None or not 0 <= index < len(upload.files) or offset is None:
            raise _Refused("a piece came without its file and place in it")
        file = upload.files[index]
        if not file.taken:
            raise _Refused(f"a piece of {file.name} came although it is over the limit")
        if len(buffers) != 1:
            raise _Refused(f"a piece of {file.name} came with {len(buffers)} buffers instead of one")
        try:
            piece = memoryview(buffers[0]).cast("B")
        except (TypeError, ValueError):
            raise _Refused(f"a piece of {file.name} was not bytes") from None
        if not piece.nbytes:
            raise _Refused(f"an empty piece of {file.name} came")
        if piece.nbytes > self.chunk_bytes:
            raise _Refused(
                f"a piece of {file.name} was {size_text(piece.nbytes)}, over the "
                f"{size_text(self.chunk_bytes)} one message may carry"
            )
        if not all(earlier.complete for earlier in upload.files[:index]):
            raise _Refused(f"a piece of {file.name} came before the files ahead of it were complete")
        have = file.received
        if offset < have:
            raise _Refused(f"a piece of {file.name} came twice (at byte {offset:,})")
        if offset > have:
            raise _Refused(f"a piece of {file.name} came out of order (at byte {offset:,}, not {have:,})")
        if have + piece.nbytes > file.size:
            raise _Refused(f"{file.name} sent more than the {size_text(file.size)} it said it has")
        return file, piece

    def _end(self, upload_id: str, _content: dict[str, Any], _buffers: list[Any]) -> None:
        upload = self._upload
        if upload is None or upload.id != upload_id:
            return
        short = [file for file in upload.taken if not file.complete]
        if short:
            file = short[0]
            self._refuse(
                upload, f"it ended with {size_text(file.received)} of {file.name}'s {size_text(file.size)}"
            )
            return
        self._upload = None
        self._hand_on(
            [
                {"name": file.name, "type": file.type, "size": file.size, "content": memoryview(file.data)}
                for file in upload.taken
            ]
        )

    def _cancel(self, upload_id: str, content: dict[str, Any], _buffers: list[Any]) -> None:
        upload = self._upload
        if upload is not None and upload.id == upload_id:
            reason = content.get("reason")
            self._refuse(upload, _text(reason, "the page gave it up")[:200], tell_page=False)

    # -- outcomes ------------------------------------------------------------------------------------

    def _refuse(self, upload: _Upload, reason: str, tell_page: bool = True) -> None:
        """End ``upload`` with nothing handed on: the page stops sending, and the note and
        ``on_error`` say why."""
        self._upload = None
        if tell_page:
            self.send({"event": "upload-stop", "id": upload.id})
        names = [file.name for file in upload.taken]
        done = progress_text(upload.received, upload.expected)
        self.refused = [file.name for file in upload.files]
        self.busy = False
        self.note = f"not used: {', '.join(self.refused)}"
        self._error_handlers(
            f"The upload of {', '.join(names)} was stopped at {done}: {reason}. Nothing was changed; "
            "choose the file again."
        )

    def _hand_on(self, entries: list[dict[str, Any]]) -> None:
        self.busy = True
        self.note = ", ".join(
            str(entry.get("name") or "upload") for entry in entries if isinstance(entry, dict)
        )
        try:
            self._handlers(entries)
        finally:
            self.busy = False
