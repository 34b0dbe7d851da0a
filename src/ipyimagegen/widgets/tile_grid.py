"""One widget for a page of tiles, the image viewer over the page and the notices.

A tile is a few fields of JSON in ``tiles``; its thumbnail crosses once, as a binary buffer, when
it changes (or when a page that lacks it asks). The page draws each tile itself, so showing new
results touches only those tiles, whatever came before. The viewer and notices are drawn over the
viewport: the viewer's details are JSON in ``viewer``, its full picture crosses as a message buffer
(never in widget state, so a notebook saved with the viewer open stays small), again when a page
that lacks it asks. What the page asks for comes back as events: ``on_event(callback)`` gets
``callback(message)`` for ``action``, ``select``, ``page`` and ``viewer`` messages.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anywidget
from ipywidgets import CallbackDispatcher
from traitlets import Dict, Int, List, Unicode

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"


@dataclass(frozen=True)
class TileAction:
    """A button on every tile (and in the viewer): ``name`` is what the page sends back."""

    name: str
    label: str
    icon: str
    tooltip: str
    on_tile: bool = True  # False: in the viewer only
    keeps_viewer: bool = False  # True: the viewer stays open (the button is spent until it opens again)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "icon": self.icon,
            "tooltip": self.tooltip,
            "tile": self.on_tile,
            "keeps_viewer": self.keeps_viewer,
        }


PictureSource = Callable[[str], tuple[int, bytes, str] | None]
"""Gives a tile's (version, thumbnail bytes, MIME type) by id, or None when it has none."""


class TileGridView(anywidget.AnyWidget):  # type: ignore[misc]
    """The page's side of a grid of tiles (see the module's docstring)."""

    _esm = STATIC / "tile_grid.js"
    _css = STATIC / "tile_grid.css"
    actions: List[dict[str, Any]] = List(help="The tiles' buttons, as TileAction JSON.").tag(sync=True)
    tiles: List[dict[str, Any]] = List(help="The tiles of the page shown, in order.").tag(sync=True)
    page = Dict({"index": 0, "pages": 1, "total": 0, "first": 0, "last": 0}).tag(sync=True)
    empty_text = Unicode("").tag(sync=True)
    viewer = Dict({"open": False}, help="The viewer's details; its picture goes as a message.").tag(sync=True)
    notice = Dict({}).tag(sync=True)
    notice_count = Int(0)

    def __init__(self, actions: Iterable[TileAction], pictures: PictureSource, **kwargs: Any) -> None:
        super().__init__(actions=[action.as_json() for action in actions], **kwargs)
        self._pictures = pictures
        self._handlers = CallbackDispatcher()
        self._lock = threading.RLock()
        self._viewer_picture = b""  # the full picture the viewer shows, while it is open
        self._viewer_count = 0
        self.on_msg(self._handle_message)

    def on_event(self, callback: Callable[[dict[str, Any]], Any], remove: bool = False) -> None:
        """``callback(message)`` for each event the page sends (see the module's docstring)."""
        self._handlers.register_callback(callback, remove=remove)

    def show_tiles(self, tiles: list[dict[str, Any]], page: dict[str, int] | None = None) -> None:
        """Show the page's tiles (their JSON) and, when given, where the page stands."""
        with self._lock, self.hold_sync():
            self.tiles = tiles
            if page is not None:
                self.page = page

    def send_pictures(self, ids: Iterable[str]) -> None:
        """Send the thumbnails of these tiles (one message, a buffer each)."""
        items, buffers = [], []
        for tile_id in ids:
            found = self._pictures(tile_id)
            if found is None:
                continue
            version, data, mime = found
            items.append({"id": tile_id, "version": version, "mime": mime})
            buffers.append(data)
        if items:
            self.send({"event": "pictures", "items": items}, buffers=buffers)

    @property
    def viewer_image(self) -> bytes:
        """The full picture the viewer shows (``b""`` when it is closed): kept here, not in widget state."""
        return self._viewer_picture

    def open_viewer(self, details: dict[str, Any], image: bytes) -> None:
        """Show ``image`` over the page, with its details (title, prompt, facts, actions, ``mime``...).

        The picture is sent before the details, so a page has it when it draws them."""
        with self._lock:
            self._viewer_count += 1
            self._viewer_picture = image
            state = {**details, "open": True, "picture": self._viewer_count}
            self._send_viewer_picture(state)
            self.viewer = state

    def close_viewer(self) -> None:
        """Close the viewer and free the full image."""
        with self._lock:
            self.viewer = {"open": False}
            self._viewer_picture = b""

    def _send_viewer_picture(self, state: dict[str, Any]) -> None:
        if state.get("open") and self._viewer_picture:
            self.send(
                {"event": "viewer_picture", "picture": state["picture"], "mime": state.get("mime", "")},
                buffers=[self._viewer_picture],
            )

    def show_notice(self, message_html: str, kind: str = "ok") -> None:
        """A notice in the viewport (HTML, already escaped), gone after a few seconds."""
        self.notice_count += 1
        self.notice = {"html": message_html, "kind": kind, "nonce": self.notice_count}

    def send_file(self, data: bytes, mime: str, name: str) -> None:
        """Hand a file to the browser's own download."""
        self.send({"event": "file", "name": name, "mime": mime}, buffers=[data])

    def reveal(self, selector: str, block: str = "center", focus: str | None = None) -> None:
        """Scroll the studio's visible element matching ``selector`` into view (``block``: "center",
        "start" or "nearest") and focus it, or the element matching ``focus`` inside it."""
        self.send({"event": "reveal", "selector": selector, "block": block, "focus": focus})

    def _handle_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        if content.get("event") == "want":
            ids = content.get("ids")
            if isinstance(ids, list):
                self.send_pictures(str(tile_id) for tile_id in ids[:500])
            return
        if content.get("event") == "viewer" and content.get("do") == "want":
            with self._lock:
                self._send_viewer_picture(self.viewer)
            return
        try:
            self._handlers(content)
        except Exception:
            log.exception("could not act on %r from the page", content.get("event"))
