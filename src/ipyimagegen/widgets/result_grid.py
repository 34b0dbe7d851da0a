"""The results: a grid of thumbnail tiles, newest request first, in pages, with per-image actions.

Tiles carry small thumbnails only, so a saved notebook stays small; the full image goes to the
browser only when a tile is enlarged (in a viewer over the page), and closing the viewer frees
it. A request shows its placeholder tiles at once; each fills with its streamed previews and
then its result as they arrive. The page holds at most ``page_size`` tiles, so a session of a
thousand results costs the browser what a page costs; the older ones are a click away.

The kernel keeps as little: once the gallery has a result, its tile holds the thumbnail, the
request's settings and the gallery id, never the result's bytes nor an edit's input pictures; the
viewer, Save, Download, Compare, Edit and Variations read them back from the gallery when asked.
A grid without a gallery (``gallery=False``, or one that only saves) has nowhere to read them back
from, so it keeps each result as it came: about 2 MB a 1024² result, for as long as it is shown.
"""

from __future__ import annotations

import html
import io
import itertools
import json
import logging
import tempfile
import threading
import zipfile
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
from ipywidgets import CallbackDispatcher

from ..api.errors import ImageInputError, describe_error
from ..api.types import (
    EditRequest,
    GeneratedImage,
    ImageRequest,
    ImagesResponse,
    PartialImage,
    VariationRequest,
)
from ..gallery import GalleryLike
from ..media import MIME_BY_FORMAT, sniff_mime_type
from ..thumbnails import thumbnail_of
from .buttons import toolbar_button
from .download import download_name
from .lifecycle import close_all, close_contents
from .picture_facts import SVG, cost_text, format_badge, lineage_facts, picture_facts, pixel_size, svg_as_png
from .style import THUMBNAIL_SIDE
from .tile_grid import TileAction, TileGridView

if TYPE_CHECKING:
    from .compare import ComparePanel

log = logging.getLogger(__name__)

PAGE_SIZE = 24
"""Tiles on a page: what the browser holds at most, however many results there are."""

ACTIONS = (
    TileAction("enlarge", "Enlarge", "search-plus", "Show the full image and its details"),
    TileAction("save", "Save", "download", "Save the full image (a file, and a download in the browser)"),
    TileAction("use_prompt", "Use prompt", "reply", "Put this prompt in the prompt box"),
    TileAction("edit", "Edit", "pencil", "Edit this image, with its prompt and settings"),
    TileAction("variations", "Variations", "clone", "Make variations of this image"),
    TileAction("delete", "", "trash", "Remove from view (it stays in History)"),
    TileAction(
        "same_seed", "Same seed", "random", "Its prompt, settings and seed back in the form", on_tile=False
    ),
    TileAction(
        "share",
        "Share with the class",
        "share-alt",
        "Put it on the workshop's class wall",
        on_tile=False,
        keeps_viewer=True,
    ),
)


def _thumbnail(data: bytes) -> tuple[bytes, str]:
    from ..imaging import thumbnail

    return thumbnail(data, max_side=THUMBNAIL_SIDE)


class ResultTile:
    """One image of a request: a placeholder until the image (or a streamed preview) arrives."""

    _ids = itertools.count(1)

    def __init__(
        self, grid: ResultGrid, number: int, request: ImageRequest | None, index: int, total: int
    ) -> None:
        self.grid = grid
        self.id = f"t{next(self._ids)}"
        self.number = number
        self.request = request
        self.index = index
        self.total = total
        self.selected_box = False  # ticked in the page
        self.state = "waiting"
        self._details: GeneratedImage | None = None  # the result without its bytes
        self._image: GeneratedImage | None = None  # the result, when it is kept in memory
        self._stored_at: Path | None = None  # else its file in the gallery
        self.before_id: str | None = None  # a saved edit's input picture: its id in the gallery
        self._ready = False  # shows a result's thumbnail before it is filled (the result is not kept)
        self._picture: tuple[bytes, str] | None = None  # the thumbnail shown (bytes, MIME type)
        self.picture_version = 0
        self.cost_label = ""  # the request's estimated cost, for the viewer
        self.made: datetime | None = None  # when the result was shown: its file name says so

    @property
    def is_filled(self) -> bool:
        return self._details is not None

    @property
    def is_shown(self) -> bool:
        """Whether it shows a result's picture already (filled, or about to be)."""
        return self.is_filled or self._ready

    @property
    def picture(self) -> tuple[bytes, str] | None:
        """The thumbnail the tile shows (bytes, MIME type), or None while it waits."""
        return self._picture

    @property
    def details(self) -> GeneratedImage | None:
        """The result without its bytes (None until the tile is filled)."""
        return self._details

    @property
    def is_stored(self) -> bool:
        """Whether the gallery keeps its result: the tile then holds its thumbnail, not its bytes."""
        return self._stored_at is not None

    @property
    def image(self) -> GeneratedImage | None:
        """The full result; read back from the gallery when it is kept there (None if that file is gone)."""
        if self._image is not None or self._stored_at is None or self._details is None:
            return self._image
        try:
            data = self._stored_at.read_bytes()
        except OSError as exc:
            log.warning("could not read %s back from the gallery: %s", self._stored_at, exc)
            return None
        return replace(self._details, data=data)

    @property
    def has_before(self) -> bool:
        """Whether it is an edit whose input picture the viewer can show (Before/After)."""
        return bool(getattr(self.request, "images", None)) or self.before_id is not None

    @property
    def selected(self) -> bool:
        """Ticked for Compare (only a tile with its image can be)."""
        return self.is_filled and self.selected_box

    @property
    def prompt(self) -> str:
        """The prompt the user wrote (a model's rewrite of it is :attr:`revised_prompt`)."""
        return getattr(self.request, "prompt", None) or ""

    @property
    def revised_prompt(self) -> str:
        return (self._details.revised_prompt if self._details is not None else None) or ""

    def label_text(self) -> str:
        """``#3 · gpt-image-1.5 · 1024x1024 · 2/4`` (no ``1/1`` for a request of one image)."""
        request = self.request
        parts = [f"#{self.number}"]
        if request is not None:
            parts += [request.model, request.size or "auto"]
        if self.total > 1:
            parts.append(f"{self.index + 1}/{self.total}")
        return " · ".join(parts)

    def status_text(self) -> str:
        """The label with the tile's state: ``#3 · … · waiting``."""
        return self.label_text() + (f" · {self.state}" if self.state else "")

    def as_json(self) -> dict[str, Any]:
        """What the page draws."""
        filled = self.is_filled
        enabled = ["delete"]
        if filled:
            enabled += ["enlarge", "save", "edit", "variations"]
            if self.prompt:
                enabled.append("use_prompt")
        badge, badge_title = self.badge()
        return {
            "id": self.id,
            "prompt": self.prompt,
            "label": self.status_text(),
            "picture": self.picture_version,
            "placeholder": "waiting…",
            "enabled": enabled,
            "selectable": filled,
            "selected": self.selected,
            "badge": badge,
            "badge_title": badge_title,
        }

    def badge(self) -> tuple[str, str]:
        """("GIF", what it means) for an animation, ("SVG", ...) for a drawing; ("", "") otherwise."""
        if self._details is not None:
            return format_badge(self._details.mime_type)
        return format_badge(MIME_BY_FORMAT.get(getattr(self.request, "output_format", None) or ""))

    def file_name(self, image: GeneratedImage) -> str:
        """``ipyimagegen-20261206-155706-3-2.gif``: the name Save and the viewer's Download give it."""
        return download_name(self.made or datetime.now(), f"{self.number}-{self.index + 1}", image.mime_type)

    def show_preview(self, partial: PartialImage) -> None:
        """A streamed partial image: shown in place of the placeholder until the result comes."""
        if not self.is_filled:
            self.state = f"preview {partial.partial_index + 1}"
            self._set_picture(_thumbnail(partial.data))

    def show_ready(self, image: GeneratedImage) -> None:
        """A result's thumbnail, shown as soon as it is made; its actions wait for :meth:`fill`
        (once the result is on disk). The tile keeps the thumbnail only."""
        if self.is_filled:
            return
        self._ready = True
        self.state = "saving"
        picture = thumbnail_of(image, THUMBNAIL_SIDE)  # the same tuple again for the same image
        if picture is not self._picture:
            self._set_picture(picture)

    def fill(self, image: GeneratedImage) -> None:
        """Show a result. When the gallery has its file, the tile keeps the thumbnail and the request's
        settings, not the bytes (nor an edit's input pictures: the gallery has them too); without a
        gallery to read them back from, it keeps the result as it came."""
        item = self.grid.saved_item(image)
        self._stored_at = Path(item.path) if item is not None else None
        self._image = None if item is not None else image
        if item is not None and self.grid.keeps_inputs(item):
            self.before_id = _first_input(image.request, item)
            self.request = settings_only(self.request)
            self._details = replace(image, data=b"", request=settings_only(image.request))
        else:
            self._details = replace(image, data=b"")
        self._ready = False
        self.made = self.made or datetime.now()
        self.state = ""
        picture = thumbnail_of(image, THUMBNAIL_SIDE)
        if picture != self._picture:
            self._set_picture(picture)
        else:
            self.grid.tile_changed(self)

    def _set_picture(self, picture: tuple[bytes, str]) -> None:
        self._picture = picture
        self.picture_version += 1
        self.grid.tile_changed(self, picture=True)


class ResultBatch:
    """The tiles of one request, filled as its results arrive."""

    def __init__(self, grid: ResultGrid, number: int, request: ImageRequest | None, total: int) -> None:
        self.grid = grid
        self.number = number
        self.request = request
        self.total = total
        self.tiles = [ResultTile(grid, number, request, i, total) for i in range(total)]

    def show_partial(self, partial: PartialImage) -> None:
        with self.grid.lock:
            if 0 <= partial.index < len(self.tiles):
                self.tiles[partial.index].show_preview(partial)

    def show_ready(self, index: int, image: GeneratedImage) -> None:
        """The thumbnail of result ``index``, in its placeholder as soon as it is made (any thread)."""
        with self.grid.lock:
            if 0 <= index < len(self.tiles) and self.grid.is_shown(self.tiles[index]):
                self.tiles[index].show_ready(image)

    def fill(self, response: ImagesResponse) -> None:
        """Put the results in their placeholders; placeholders left over (failed parts) go away.

        A placeholder removed from view while waiting stays removed: its image is not shown.
        """
        with self.grid.lock, self.grid.changes():
            made = len(response.data)
            waiting = {tile.index: tile for tile in self.tiles}
            for index, image in enumerate(response.data):
                tile = waiting.get(index)
                if tile is None:
                    if index < self.total:
                        continue
                    tile = ResultTile(self.grid, self.number, self.request, index, made)
                    self.tiles.append(tile)
                tile.total = made
                tile.cost_label = _cost_label(response)
                tile.fill(image)
            for tile in [t for t in self.tiles if not t.is_filled]:
                self.grid.remove(tile)
            self.request = settings_only(self.request)  # each tile holds what it needs of the inputs
        self.grid.batch_filled(response)

    def keep(self, response: ImagesResponse) -> None:
        """Fill the tiles of the images a cancel kept (each at its own place); the others go away."""
        with self.grid.lock, self.grid.changes():
            tiles = {tile.index: tile for tile in self.tiles}
            for image in response.data:
                tile = tiles.get(image.index)
                if tile is not None and self.grid.is_shown(tile):
                    tile.fill(image)
            for tile in [t for t in self.tiles if not t.is_filled]:
                self.grid.remove(tile)
            self.request = settings_only(self.request)

    def discard(self, keep_shown: bool = False) -> None:
        """Remove every tile that has no result (after an error or a cancel); ``keep_shown``: not those
        that show a result already (a cancel keeps what is done)."""
        with self.grid.lock, self.grid.changes():
            for tile in [t for t in self.tiles if not t.is_filled]:
                if not (keep_shown and tile.is_shown):
                    self.grid.remove(tile)


class ResultGrid(widgets.VBox):
    """Thumbnail tiles of results, newest request first, in pages of ``page_size``.

    ``on_edit``, ``on_variations`` and ``on_use_prompt`` register ``callback(image)`` for the
    tile actions "Edit", "Variations" and "Use prompt" (the latter with the prompt text);
    ``on_filled`` registers ``callback(response)`` for every response shown. Ticking two or
    more tiles enables "Compare": a contact sheet of those images, with "Save PDF".
    """

    def __init__(self, *, save_dir: str | Path | None = None, page_size: int = PAGE_SIZE) -> None:
        self.save_dir = Path(save_dir) if save_dir is not None else None
        self.page_size = max(1, int(page_size))
        self.page_index = 0
        self.lock = threading.RLock()
        self.gallery: GalleryLike | None = (
            None  # where results are kept: tiles then hold thumbnails, not full images
        )
        self._batches: list[ResultBatch] = []
        self._numbers = itertools.count(1)
        self._edit_handlers = CallbackDispatcher()
        self._variations_handlers = CallbackDispatcher()
        self._use_prompt_handlers = CallbackDispatcher()
        self._filled_handlers = CallbackDispatcher()
        self._same_seed_handlers = CallbackDispatcher()
        self._share_handlers = CallbackDispatcher()
        self.can_share: Callable[[], bool] = lambda: False  # whether the viewer offers "Share with the class"
        self.comparison: ComparePanel | None = None
        self.viewed: ResultTile | None = None  # the tile open in the viewer
        self.notice_html = ""  # the last notice (it shows in the viewport for a few seconds)
        self.notice_kind = ""
        self._held = 0  # inside changes(): the page is sent once, at the end
        self._dirty = False
        self.view = TileGridView(ACTIONS, self._picture_of)
        self.view.on_event(self._on_event)
        self.compare_button = toolbar_button(
            "Compare",
            "th-large",
            "Tick two or more images to compare them in one sheet",
            "ipyimagegen-compare-button",
            self.compare,
            disabled=True,
        )
        self.clear_button = toolbar_button(
            "Clear results",
            "eraser",
            "Remove every result from view (they stay in the gallery, in History)",
            "ipyimagegen-clear-results",
            lambda: self.clear(say=True),
        )
        self.download_button = toolbar_button(
            "Download all",
            "file-archive-o",
            "The results as one zip with a manifest (the ticked ones, when some are ticked)",
            "ipyimagegen-download-all",
            self.download_zip,
        )
        self.toolbar = widgets.HBox(
            [self.compare_button, self.download_button, self.clear_button],
            layout=widgets.Layout(display="none"),
        )
        self.toolbar.add_class("ipyimagegen-grid-toolbar")
        self.compare_slot = widgets.Box(layout=widgets.Layout(width="100%"))
        super().__init__([self.toolbar, self.compare_slot, self.view], layout=widgets.Layout(width="100%"))
        self.add_class("ipyimagegen-results")

    # -- what is shown ---------------------------------------------------------------------

    @property
    def tiles(self) -> list[ResultTile]:
        """Every tile, on every page, in display order (newest request first)."""
        return [tile for batch in self._batches for tile in batch.tiles]

    @property
    def page_tiles(self) -> list[ResultTile]:
        """The tiles of the page shown."""
        start = self.page_index * self.page_size
        return self.tiles[start : start + self.page_size]

    @property
    def pages(self) -> int:
        return max(1, -(-len(self.tiles) // self.page_size))

    @property
    def images(self) -> list[GeneratedImage]:
        """The images shown, in display order (those kept in the gallery are read back from disk)."""
        return [image for image in (tile.image for tile in self.tiles if tile.is_filled) if image is not None]

    def filled_count(self) -> int:
        """How many tiles show a result (without reading any image)."""
        return sum(tile.is_filled for tile in self.tiles)

    def is_shown(self, tile: ResultTile) -> bool:
        """Whether ``tile`` is still in the grid (not removed)."""
        return any(tile in batch.tiles for batch in self._batches)

    def tile(self, tile_id: str) -> ResultTile | None:
        return next((tile for tile in self.tiles if tile.id == tile_id), None)

    @property
    def selected_tiles(self) -> list[ResultTile]:
        """The tiles ticked for Compare, in display order."""
        return [tile for tile in self.tiles if tile.selected]

    def next_number(self) -> int:
        """The number (``#3``) the next request's tiles get."""
        return next(self._numbers)

    def start(
        self, request: ImageRequest | None, total: int | None = None, number: int | None = None
    ) -> ResultBatch:
        """Show ``total`` (default ``request.n``) placeholder tiles for a new request, first in the grid
        (``number``: one taken with :meth:`next_number`); the grid turns to its first page."""
        count = total if total is not None else max(getattr(request, "n", 1), 1)
        with self.lock:
            batch = ResultBatch(self, number if number is not None else next(self._numbers), request, count)
            self._batches.insert(0, batch)
            self.page_index = 0
            self.relayout()
        return batch

    def add_response(self, response: ImagesResponse) -> ResultBatch:
        """Show a finished response (made elsewhere) as a new request."""
        batch = self.start(response.request, len(response.data))
        batch.fill(response)
        return batch

    def remove(self, tile: ResultTile) -> None:
        """Remove a tile from view."""
        with self.lock:
            for batch in self._batches:
                if tile in batch.tiles:
                    batch.tiles.remove(tile)
            self._batches = [batch for batch in self._batches if batch.tiles]
            self.page_index = min(self.page_index, self.pages - 1)
            self.relayout()
        if self.viewed is tile:
            self.close_preview()

    def remove_saved(self, item_id: str) -> None:
        """Remove the tiles of a gallery image that was deleted (in History)."""
        with self.lock, self.changes():
            for tile in self.tiles:
                details = tile.details
                if details is not None and details.metadata.get("gallery_id") == item_id:
                    self.remove(tile)

    def clear(self, say: bool = False) -> None:
        """Remove every tile (``say``: and tell the user where the images still are)."""
        with self.lock:
            count = self.filled_count()
            self._batches = []
            self.page_index = 0
            self.relayout()
        self.close_preview()
        if say and count:
            where = " They are in the gallery (History)." if self.gallery is not None else ""
            self.show_notice(f"Cleared {count} result{'s' if count != 1 else ''} from view.{where}", "info")

    def show_page(self, index: int) -> None:
        """Turn to page ``index`` (0: the newest results)."""
        with self.lock:
            self.page_index = max(0, min(int(index), self.pages - 1))
            self.relayout()

    def relayout(self) -> None:
        """Send the page as it is now (after tiles were added, filled or removed)."""
        with self.lock:
            if self._held:
                self._dirty = True
                return
            self._dirty = False
            tiles = self.tiles
            start = self.page_index * self.page_size
            page = tiles[start : start + self.page_size]
            self.view.show_tiles(
                [tile.as_json() for tile in page],
                {
                    "index": self.page_index,
                    "pages": self.pages,
                    "total": len(tiles),
                    "first": start + 1 if page else 0,
                    "last": start + len(page),
                },
            )
        self.selection_changed()

    def changes(self) -> _Held:
        """``with grid.changes():`` many tile changes, one update of the page."""
        return _Held(self)

    def tile_changed(self, tile: ResultTile, picture: bool = False) -> None:
        """A tile's picture or state changed: its thumbnail crosses first, then the page's JSON."""
        with self.lock:
            if tile not in self.page_tiles:
                return
            if picture:
                self.view.send_pictures([tile.id])
            self.relayout()

    def selection_changed(self) -> None:
        """Follow the ticked tiles: Compare is offered for two or more."""
        count = len(self.selected_tiles)
        self.compare_button.disabled = count < 2
        self.compare_button.description = f"Compare ({count})" if count else "Compare"
        self.download_button.description = f"Download ({count})" if count else "Download all"
        self.toolbar.layout.display = None if any(tile.is_filled for tile in self.tiles) else "none"

    def _picture_of(self, tile_id: str) -> tuple[int, bytes, str] | None:
        tile = self.tile(tile_id)
        if tile is None or tile.picture is None:
            return None
        data, mime = tile.picture
        return tile.picture_version, data, mime

    # -- what the page asks for ----------------------------------------------------------------

    def _on_event(self, message: dict[str, Any]) -> None:
        event = message.get("event")
        if event == "page":
            self.show_page(self.page_index + _step(message.get("by")))
            return
        if event == "viewer":
            if message.get("do") == "step":
                self.step_preview(_step(message.get("by")))
            elif message.get("do") == "before":
                self.send_before()
            else:
                self.close_preview()
            return
        tile = self.tile(str(message.get("id")))
        if tile is None:
            return
        if event == "select":
            tile.selected_box = bool(message.get("value")) and tile.is_filled
            self.tile_changed(tile)
        elif event == "action":
            self.act(tile, str(message.get("name")))

    def act(self, tile: ResultTile, name: str) -> None:
        """Do what a tile's button ``name`` does (as a click in the page does)."""
        actions: dict[str, Callable[[ResultTile], Any]] = {
            "enlarge": self.enlarge,
            "save": self.save,
            "delete": self.remove,
            "edit": self.send_to_edit,
            "variations": self.send_to_variations,
            "use_prompt": self.send_prompt,
            "same_seed": self.send_same_seed,
            "share": self.send_to_wall,
        }
        action = actions.get(name)
        if action is None:
            return
        if name != "delete" and not tile.is_filled:
            return
        if name in ("edit", "variations", "use_prompt", "same_seed"):
            self.close_preview()
        action(tile)

    def select(self, tile: ResultTile, value: bool = True) -> None:
        """Tick (or untick) a tile for Compare, as its checkbox does."""
        self._on_event({"event": "select", "id": tile.id, "value": value})

    # -- actions -----------------------------------------------------------------------------

    def enlarge(self, tile: ResultTile) -> None:
        """Show the tile's full image over the page, with its details (the only place the full bytes go)."""
        image = self._full_image(tile)
        if image is None:
            return
        self.viewed = tile
        filled = [t for t in self.tiles if t.is_filled]
        place = filled.index(tile) if tile in filled else -1
        self.view.open_viewer(
            {
                "id": tile.id,
                "title": tile.label_text(),
                "prompt": tile.prompt,
                "revised_prompt": tile.revised_prompt if tile.revised_prompt != tile.prompt else "",
                "facts": _facts(tile, image, self.gallery),
                "actions": [
                    "edit",
                    "variations",
                    *(["use_prompt"] if tile.prompt else []),
                    *(["same_seed"] if image.seed is not None and tile.request is not None else []),
                    *(["share"] if self.can_share() else []),
                ],
                "mime": image.mime_type,
                "size": pixel_size(image.data),
                "filename": tile.file_name(image),
                "has_previous": place > 0,
                "has_next": 0 <= place < len(filled) - 1,
                "has_before": tile.has_before,
            },
            image.data,
        )

    def step_preview(self, by: int) -> None:
        """Show the next (``by=1``) or previous result in the viewer, turning the page if need be."""
        if self.viewed is None:
            return
        filled = [t for t in self.tiles if t.is_filled]
        if self.viewed not in filled:
            return
        place = filled.index(self.viewed) + by
        if 0 <= place < len(filled):
            target = filled[place]
            at = self.tiles.index(target) // self.page_size
            if at != self.page_index:
                self.show_page(at)
            self.enlarge(target)

    def send_before(self) -> bool:
        """The picture an edit in the viewer started from, for its Before/After toggle (sent on asking)."""
        viewed = self.viewed
        before = self._before(viewed) if viewed is not None else None
        if viewed is None or before is None:
            return False
        data, mime = before
        self.view.send({"event": "before", "id": viewed.id, "mime": mime}, buffers=[data])
        return True

    def _before(self, tile: ResultTile) -> tuple[bytes, str] | None:
        """The first input picture of an edit (bytes, MIME type): from its request, or read back from the
        gallery once the gallery keeps it; None for other results (or when that file is gone)."""
        images = getattr(tile.request, "images", None)
        if images:
            return images[0].data, images[0].mime_type
        read = getattr(self.gallery, "input_data", None)
        if tile.before_id is None or read is None:
            return None
        try:
            data = read(tile.before_id)
        except (OSError, KeyError) as exc:
            log.warning("could not read an edit's input back from the gallery: %s", exc)
            self.show_notice("The picture this edit started from is no longer in the gallery.", "warning")
            return None
        return data, sniff_mime_type(data)

    @property
    def preview_open(self) -> bool:
        return bool(self.view.viewer.get("open"))

    def compare(self, tiles: list[ResultTile] | None = None) -> ComparePanel | None:
        """A contact sheet of the ticked tiles' images (or of ``tiles``), shown above the grid."""
        from .compare import ComparePanel

        ticked = tiles if tiles is not None else self.selected_tiles
        found = [(tile, tile.image) for tile in ticked]  # each image is read back from the gallery once
        chosen = [(tile, image) for tile, image in found if image is not None]
        if len(chosen) < 2:
            missing = len(found) - len(chosen)
            gone = (
                f" {missing} of the {len(found)} ticked images no longer {'has' if missing == 1 else 'have'}"
                " a file in the gallery (deleted or moved): tick others, or make them again."
                if missing
                else ""
            )
            self.show_notice(f"Tick two or more images to compare them.{gone}", "warning")
            return None
        try:
            panel = ComparePanel(
                [image for _tile, image in chosen],
                [tile.prompt for tile, _image in chosen],
                save_dir=self.save_dir,
            )
        except Exception as exc:
            log.exception("could not make the comparison sheet")
            self.show_notice(f"Could not make the comparison: {html.escape(describe_error(exc))}", "error")
            return None
        self.close_compare()
        panel.on_close(self._compare_closed)
        panel.on_file(self.view.send_file)
        self.comparison = panel
        self.compare_slot.children = (panel,)
        return panel

    def close(self) -> None:
        """Close every panel and part the grid made."""
        close_contents(self)
        close_all([self.comparison])
        super().close()

    def close_compare(self) -> None:
        """Close the comparison sheet, if one is shown."""
        if self.comparison is not None:
            self.comparison.dispose()

    def _compare_closed(self, panel: ComparePanel) -> None:
        if self.comparison is panel:
            self.comparison = None
            self.compare_slot.children = ()

    def close_preview(self) -> None:
        """Close the viewer and free the full image."""
        self.viewed = None
        if self.preview_open:
            self.view.close_viewer()

    def save(self, tile: ResultTile, folder: str | Path | None = None) -> Path | None:
        """Write the tile's full image to a file and hand it to the browser as a download."""
        image = self._full_image(tile)
        if image is None:
            return None
        target = Path(folder) if folder is not None else (self.save_dir or Path.cwd())
        try:
            target.mkdir(parents=True, exist_ok=True)
            path = _unique_path(target, tile.file_name(image))
            image.save(path)
        except OSError as exc:
            log.warning("could not save an image to %s: %s", target, exc)
            self.show_notice(
                f"Could not save the image to {html.escape(str(target))}: {html.escape(str(exc))}", "error"
            )
            return None
        self.view.send_file(image.data, image.mime_type, path.name)
        self.show_notice(f"Saved to <code>{html.escape(str(path))}</code> and downloaded.", "ok")
        return path

    def download_zip(self) -> str | None:
        """The ticked results (or all of them) as one zip, downloaded in the browser: their files
        with a manifest (from the gallery, with the inputs of edits, when it keeps them all)."""
        chosen = self.selected_tiles or [tile for tile in self.tiles if tile.is_filled]
        if not chosen:
            self.show_notice("There are no results to download yet.", "warning")
            return None
        name = f"ipyimagegen-results-{datetime.now():%Y%m%d-%H%M%S}.zip"
        try:
            data = self._zip_of(chosen)
        except (OSError, KeyError) as exc:
            log.warning("could not make the zip: %s", exc)
            self.show_notice(f"Could not make the zip: {html.escape(describe_error(exc))}", "error")
            return None
        if data is None:
            return None
        self.view.send_file(data, "application/zip", name)
        count = len(chosen)
        self.show_notice(
            f"Downloaded {count} result{'s' if count != 1 else ''} as <code>{html.escape(name)}</code>.", "ok"
        )
        return name

    def _zip_of(self, tiles: list[ResultTile]) -> bytes | None:
        ids = [
            tile.details.metadata.get("gallery_id") if tile.details is not None else None for tile in tiles
        ]
        export = getattr(self.gallery, "export", None)
        if callable(export) and all(isinstance(item_id, str) for item_id in ids):
            with tempfile.TemporaryDirectory(prefix="ipyimagegen-zip-") as folder:
                return Path(export(ids, Path(folder) / "results.zip")).read_bytes()
        buffer = io.BytesIO()
        manifest = []
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
            for tile in tiles:
                image = self._full_image(tile)
                if image is None:
                    return None
                file = f"images/{tile.file_name(image)}"
                archive.writestr(file, image.data)
                request = tile.request
                manifest.append(
                    {
                        "file": file,
                        "prompt": tile.prompt,
                        "revised_prompt": tile.revised_prompt or None,
                        "model": getattr(request, "model", None),
                        "size": getattr(request, "size", None),
                        "seed": image.seed,
                        "label": tile.label_text(),
                    }
                )
            archive.writestr("manifest.json", json.dumps({"items": manifest}, ensure_ascii=False, indent=2))
        return buffer.getvalue()

    def show_notice(self, message_html: str, kind: str = "ok") -> None:
        """A message in the viewport for a few seconds (HTML, already escaped)."""
        self.notice_html, self.notice_kind = message_html, kind
        if message_html:
            self.view.show_notice(message_html, kind)

    def reveal(self, selector: str) -> None:
        """Bring the studio's visible element matching ``selector`` into view and focus it."""
        self.view.reveal(selector)

    def on_edit(self, callback: Callable[[GeneratedImage], Any], remove: bool = False) -> None:
        """``callback(image)`` when a tile's "Edit" is clicked."""
        self._edit_handlers.register_callback(callback, remove=remove)

    def on_variations(self, callback: Callable[[GeneratedImage], Any], remove: bool = False) -> None:
        """``callback(image)`` when a tile's "Variations" is clicked."""
        self._variations_handlers.register_callback(callback, remove=remove)

    def on_use_prompt(self, callback: Callable[[str], Any], remove: bool = False) -> None:
        """``callback(prompt)`` when a tile's "Use prompt" is clicked (to put it back in the prompt box)."""
        self._use_prompt_handlers.register_callback(callback, remove=remove)

    def on_filled(self, callback: Callable[[ImagesResponse], Any], remove: bool = False) -> None:
        """``callback(response)`` after a response's images are shown (from whichever tab made them)."""
        self._filled_handlers.register_callback(callback, remove=remove)

    def send_to_edit(self, tile: ResultTile) -> None:
        """A tile's "Edit": its full image to the ``on_edit`` callbacks (an SVG drawing as a PNG of it)."""
        self._send_image(self._edit_handlers, tile, raster=True)

    def send_to_variations(self, tile: ResultTile) -> None:
        """A tile's "Variations": its full image to the ``on_variations`` callbacks (an SVG as a PNG)."""
        self._send_image(self._variations_handlers, tile, raster=True)

    def send_prompt(self, tile: ResultTile) -> None:
        """A tile's "Use prompt": the prompt the user wrote, to the ``on_use_prompt`` callbacks."""
        self._use_prompt_handlers(tile.prompt)

    def on_same_seed(self, callback: Callable[[GeneratedImage], Any], remove: bool = False) -> None:
        """``callback(image)`` when the viewer's "Same seed" is clicked (the image has its request and seed)."""
        self._same_seed_handlers.register_callback(callback, remove=remove)

    def send_same_seed(self, tile: ResultTile) -> None:
        details = tile.details
        if details is not None and details.seed is not None:
            self._same_seed_handlers(details)

    def on_share(self, callback: Callable[[GeneratedImage], Any], remove: bool = False) -> None:
        """``callback(image)`` when the viewer's "Share with the class" is clicked."""
        self._share_handlers.register_callback(callback, remove=remove)

    def send_to_wall(self, tile: ResultTile) -> None:
        self._send_image(self._share_handlers, tile)

    def batch_filled(self, response: ImagesResponse) -> None:
        """A batch has its images: tell the ``on_filled`` callbacks."""
        self._filled_handlers(response)

    def _send_image(self, dispatcher: CallbackDispatcher, tile: ResultTile, raster: bool = False) -> None:
        image = self._full_image(tile)
        if image is None:
            return
        try:
            picture = _as_raster(image) if raster else image
        except ImageInputError as exc:  # a drawing that cannot be drawn: said, never a grey card sent on
            self.show_notice(f"This picture cannot be used: {html.escape(describe_error(exc))}", "error")
            return
        dispatcher(picture)

    def _full_image(self, tile: ResultTile) -> GeneratedImage | None:
        """The tile's image for an action, or None with a notice saying why there is none."""
        if not tile.is_filled:
            return None
        image = tile.image
        if image is None:
            self.show_notice(
                "This image's file is no longer in the gallery (deleted or moved), so it cannot be "
                "opened: remove the tile, or make the image again.",
                "error",
            )
        return image

    def saved_item(self, image: GeneratedImage) -> Any:
        """The grid's gallery's item of ``image`` (with its ``path`` and ``input_ids``), when its file is
        there; else None (no gallery, a plain GalleryLike that only saves, or the save failed)."""
        item_id = image.metadata.get("gallery_id")
        look_up = getattr(self.gallery, "get", None)  # a plain GalleryLike only saves
        if look_up is None or not isinstance(item_id, str):
            return None
        try:
            item = look_up(item_id)
            stored = Path(item.path).is_file()
        except Exception:
            return None
        return item if stored else None

    def keeps_inputs(self, item: Any) -> bool:
        """Whether the grid's gallery gives a saved item's input pictures back (``input_data``), so that
        its tiles need not keep them."""
        return callable(getattr(self.gallery, "input_data", None)) and isinstance(
            getattr(item, "input_ids", None), list
        )


class _Held:
    """Many tile changes, one page update (see :meth:`ResultGrid.changes`)."""

    def __init__(self, grid: ResultGrid) -> None:
        self.grid = grid

    def __enter__(self) -> None:
        with self.grid.lock:
            self.grid._held += 1

    def __exit__(self, *_exc: object) -> None:
        with self.grid.lock:
            self.grid._held -= 1
            if not self.grid._held and self.grid._dirty:
                self.grid.relayout()


def settings_only(request: ImageRequest | None) -> ImageRequest | None:
    """``request`` without its input pictures (an edit's images, mask and markup, a variation's image):
    what a tile keeps of a request once the gallery keeps those."""
    if isinstance(request, EditRequest):
        return replace(request, images=[], mask=None, markup=None)
    if isinstance(request, VariationRequest):
        return replace(request, image=None)
    return request


def _first_input(request: ImageRequest | None, item: Any) -> str | None:
    """The gallery id of an edit's first input picture (what the viewer's Before shows), else None."""
    return item.input_ids[0] if isinstance(request, EditRequest) and item.input_ids else None


def _cost_label(response: ImagesResponse) -> str:
    return cost_text(response.cost, len(response.data))


def _step(by: Any) -> int:
    return 1 if isinstance(by, (int, float)) and by > 0 else -1


KINDS = {"GenerateRequest": "generation", "EditRequest": "edit", "VariationRequest": "variation"}


def _facts(tile: ResultTile, image: GeneratedImage, gallery: GalleryLike | None) -> list[list[str]]:
    """The viewer's table: size, settings, cost, where it is kept and what it was made from."""
    request = tile.request
    facts = picture_facts(image.data, image.mime_type)
    if request is not None:
        facts.append(["Made by", f"{KINDS.get(type(request).__name__, 'request')} on {request.model}"])
        for name in ("quality", "style", "background", "output_format", "input_fidelity"):
            value = getattr(request, name, None)
            if value:
                facts.append([name.replace("_", " ").capitalize(), str(value)])
    if image.seed is not None:
        facts.append(["Seed", str(image.seed)])
    outside = outside_mask_text(image.metadata)
    if outside:
        facts.append(["Outside the mask", outside])
    if tile.cost_label:
        facts.append(["Cost", tile.cost_label])
    item_id = image.metadata.get("gallery_id")
    look_up = getattr(gallery, "get", None)
    if isinstance(item_id, str) and look_up is not None:
        try:
            item = look_up(item_id)
        except Exception:  # gone from the gallery since: the rest still stands
            return [*facts, ["Gallery id", item_id]]
        facts += lineage_facts(gallery, item)
    return facts


def outside_mask_text(metadata: dict[str, Any]) -> str:
    """What an edit did outside its mask (from a result's metadata), or "" for other results."""
    changed = metadata.get("changed_outside_mask")
    if not isinstance(changed, (int, float)):
        return ""
    text = f"the model changed {changed:.1%} of the pixels"
    if metadata.get("pasted_back"):
        feather = metadata.get("feather") or 0
        text += "; the original was put back" + (f" (edge feathered {feather:g} px)" if feather else "")
    return text


def _as_raster(image: GeneratedImage) -> GeneratedImage:
    """``image``, or for an SVG drawing a PNG of it at its own size (what edits and variations take)."""
    if image.mime_type != SVG:
        return image
    return replace(image, data=svg_as_png(image.data), mime_type="image/png")


def _unique_path(folder: Path, name: str) -> Path:
    """``folder/name``, or ``folder/stem-2.ext`` (-3...) when that file is there already."""
    path = folder / name
    k = 1
    while path.exists():
        k += 1
        path = folder / f"{Path(name).stem}-{k}{Path(name).suffix}"
    return path
