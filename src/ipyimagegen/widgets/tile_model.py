"""The results grid's model: its tiles, in requests, newest first, in pages, behind one lock.

Worker threads fill tiles while the page reads them, so every read and change of the tiles takes
:attr:`TileModel.lock`. The model draws nothing: it hands each page it lays out (the tiles' JSON
and where the page stands) and each tile whose thumbnail changed to the callbacks it was made with.

Once the gallery has a result, its tile holds the thumbnail, the request's settings and the gallery
id, never the result's bytes nor an edit's input pictures: they are read back from the gallery on
demand. A model without a gallery that gives them back keeps each result as it came.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from ..api.types import (
    EditRequest,
    GeneratedImage,
    ImageRequest,
    ImagesResponse,
    PartialImage,
    VariationRequest,
)
from ..gallery import GalleryItem, GalleryReader, GalleryWriter
from ..media import MIME_BY_FORMAT
from ..thumbnails import thumbnail_of
from .download import download_name
from .picture_facts import cost_text, format_badge
from .style import THUMBNAIL_SIDE

log = logging.getLogger(__name__)

TileState = Literal["waiting", "preview", "saving", "filled"]
"""Where a tile stands: nothing yet, a streamed preview, the result shown while it is saved, filled."""

PAGE_SIZE = 24
"""Tiles on a page: what the browser holds at most, however many results there are."""

MISSING_FILE = (
    "This image's file is no longer in the gallery (deleted or moved), so it cannot be "
    "opened: remove the tile, or make the image again."
)

PageSink = Callable[[list[dict[str, Any]], dict[str, int]], None]
"""Takes a laid-out page: its tiles' JSON and ``{"index", "pages", "total", "first", "last"}``."""


class SavedResults:
    """What the grid reads back from its gallery: a result's file, an edit's input, its item, a zip.

    A gallery that only saves (a :class:`~ipyimagegen.gallery.GalleryWriter` that is no
    :class:`~ipyimagegen.gallery.GalleryReader`) gives nothing back: the tiles keep their results.
    """

    def __init__(self, gallery: GalleryWriter | None = None) -> None:
        self.gallery = gallery

    @property
    def gallery(self) -> GalleryWriter | None:
        return self._gallery

    @gallery.setter
    def gallery(self, gallery: GalleryWriter | None) -> None:
        self._gallery = gallery
        self.reader = gallery if isinstance(gallery, GalleryReader) else None

    def item(self, item_id: Any) -> GalleryItem | None:
        """The gallery's item ``item_id`` (with ``path``, ``input_ids``...), or None."""
        if self.reader is None or not isinstance(item_id, str):
            return None
        return self.reader.get(item_id)

    def saved_item(self, image: GeneratedImage) -> GalleryItem | None:
        """The item of ``image`` when its file is there; else None (no reader, or the save failed)."""
        try:
            item = self.item(image.metadata.get("gallery_id"))
            stored = item is not None and Path(item.path).is_file()
        except Exception:
            return None
        return item if stored else None

    @property
    def keeps_inputs(self) -> bool:
        """Whether the gallery gives saved items' input pictures back, so tiles need not keep them."""
        return self.reader is not None

    def input_data(self, input_id: str) -> bytes | None:
        """An input picture's bytes (OSError or KeyError when its file is gone); None without a reader."""
        return None if self.reader is None else bytes(self.reader.input_data(input_id))

    def zip_of(self, ids: list[Any], path: Path) -> Path | None:
        """The gallery's own zip of ``ids`` (their files, inputs and a manifest) at ``path``, or None
        when it cannot make one (no reader, or a result it does not have)."""
        if self.reader is None or not all(isinstance(item_id, str) for item_id in ids):
            return None
        return Path(self.reader.export(ids, path))


class ResultTile:
    """One image of a request: a placeholder until the image (or a streamed preview) arrives."""

    _ids = itertools.count(1)

    def __init__(
        self, model: TileModel, number: int, request: ImageRequest | None, index: int, total: int
    ) -> None:
        self.model = model
        self.id = f"t{next(self._ids)}"
        self.number = number
        self.request = request
        self.index = index
        self.total = total
        self.selected_box = False  # ticked in the page
        self.state: TileState = "waiting"
        self.previews = 0  # streamed previews shown so far
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
        """The label with the tile's state: ``#3 · … · waiting`` (nothing once it is filled)."""
        if self.state == "filled":
            return self.label_text()
        state = f"preview {self.previews}" if self.state == "preview" else self.state
        return f"{self.label_text()} · {state}"

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
        """``<gallery id>-<prompt>.gif``: the name Save and the viewer's Download give it (see
        :func:`~.download.download_name`)."""
        gallery_id = image.metadata.get("gallery_id")
        return download_name(
            self.prompt,
            image.mime_type,
            gallery_id if isinstance(gallery_id, str) else None,
            made=self.made,
            key=self.id,
        )

    def show_preview(self, partial: PartialImage) -> None:
        """A streamed partial image: shown in place of the placeholder until the result comes."""
        if not self.is_filled:
            self.state = "preview"
            self.previews = partial.partial_index + 1
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
        saved = self.model.saved
        item = saved.saved_item(image)
        self._stored_at = Path(item.path) if item is not None else None
        self._image = None if item is not None else image
        if item is not None and saved.keeps_inputs:
            self.before_id = _first_input(image.request, item)
            self.request = settings_only(self.request)
            self._details = replace(image, data=b"", request=settings_only(image.request))
        else:
            self._details = replace(image, data=b"")
        self._ready = False
        self.made = self.made or datetime.now()
        self.state = "filled"
        picture = thumbnail_of(image, THUMBNAIL_SIDE)
        if picture != self._picture:
            self._set_picture(picture)
        else:
            self.model.tile_changed(self)

    def shows(self, image: GeneratedImage) -> bool:
        """Whether the tile is filled with ``image`` already (the very result, or its gallery item)."""
        if self._details is None:
            return False
        if self._image is image:
            return True
        saved = image.metadata.get("gallery_id")
        return saved is not None and self._details.metadata.get("gallery_id") == saved

    def _set_picture(self, picture: tuple[bytes, str]) -> None:
        self._picture = picture
        self.picture_version += 1
        self.model.tile_changed(self, picture=True)


class ResultBatch:
    """The tiles of one request, filled as its results arrive (from any thread)."""

    def __init__(self, model: TileModel, number: int, request: ImageRequest | None, total: int) -> None:
        self.model = model
        self.number = number
        self.request = request
        self.total = total
        self.tiles = [ResultTile(model, number, request, i, total) for i in range(total)]

    def show_partial(self, partial: PartialImage) -> None:
        with self.model.lock:
            if 0 <= partial.index < len(self.tiles):
                self.tiles[partial.index].show_preview(partial)

    def show_ready(self, index: int, image: GeneratedImage) -> None:
        """The thumbnail of result ``index``, in its placeholder as soon as it is made."""
        with self.model.lock:
            if (tile := self._placeholder(index)) is not None:
                tile.show_ready(image)

    def fill_one(self, index: int, image: GeneratedImage) -> None:
        """Result ``index``, saved before the rest of the request is done, in its placeholder at once."""
        with self.model.lock:
            if (tile := self._placeholder(index)) is not None:
                tile.cost_label = cost_text(image.metadata.get("cost"))
                tile.fill(image)

    def _placeholder(self, index: int) -> ResultTile | None:
        """The tile of result ``index``, while it is in the grid (one removed from view stays removed)."""
        tile = next((tile for tile in self.tiles if tile.index == index), None)
        return tile if tile is not None and self.model.is_shown(tile) else None

    def fill(self, response: ImagesResponse) -> None:
        """Put the results in their placeholders; placeholders left over (failed parts) go away.

        A placeholder removed from view while waiting stays removed: its image is not shown.
        """
        with self.model.changes():
            made = len(response.data)
            waiting = {tile.index: tile for tile in self.tiles}
            for index, image in enumerate(response.data):
                if (shown := self._showing(image)) is not None:  # filled as it arrived: not again
                    shown.cost_label = cost_text(response.cost, len(response.data))
                    continue
                tile = waiting.get(index)
                if tile is None:
                    if index < self.total:
                        continue
                    tile = ResultTile(self.model, self.number, self.request, index, made)
                    self.tiles.append(tile)
                tile.total = made
                tile.cost_label = cost_text(response.cost, len(response.data))
                tile.fill(image)
            self._drop_unfilled()
            self.request = settings_only(self.request)  # each tile holds what it needs of the inputs
        self.model.filled(response)

    def keep(self, response: ImagesResponse) -> None:
        """Fill the tiles of the images a cancel kept (each at its own place); the others go away."""
        with self.model.changes():
            tiles = {tile.index: tile for tile in self.tiles}
            for image in response.data:
                tile = tiles.get(image.index)
                if tile is not None and self.model.is_shown(tile) and not tile.shows(image):
                    tile.fill(image)
            self._drop_unfilled()
            self.request = settings_only(self.request)
        self.model.filled(response)

    def _showing(self, image: GeneratedImage) -> ResultTile | None:
        """The tile filled with ``image`` already, if there is one."""
        return next((tile for tile in self.tiles if tile.shows(image)), None)

    def discard(self, keep_shown: bool = False) -> None:
        """Remove every tile that has no result (after an error or a cancel); ``keep_shown``: not those
        that show a result already (a cancel keeps what is done)."""
        with self.model.changes():
            self._drop_unfilled(keep_shown)

    def _drop_unfilled(self, keep_shown: bool = False) -> None:
        for tile in [t for t in self.tiles if not t.is_filled]:
            if not (keep_shown and tile.is_shown):
                self.model.remove(tile)


class TileModel:
    """Every tile, newest request first, in pages of ``page_size``, behind :attr:`lock`.

    ``on_page(tiles, page)`` gets each page laid out; ``on_picture(tile_id)`` each tile on the page
    whose thumbnail changed (before its page); ``on_filled(response)`` each response whose tiles
    are filled.
    """

    def __init__(
        self,
        *,
        on_page: PageSink,
        on_picture: Callable[[str], Any],
        on_filled: Callable[[ImagesResponse], Any],
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.lock = threading.RLock()
        self.saved = SavedResults()
        self._page_size = max(1, int(page_size))
        self._page_index = 0
        self._batches: list[ResultBatch] = []
        self._numbers = itertools.count(1)
        self._held = 0  # inside changes(): the page is laid out once, at the end
        self._dirty = False
        self._on_page = on_page
        self._on_picture = on_picture
        self._on_filled = on_filled

    # -- reading (each under the lock) ------------------------------------------------------

    @property
    def batches(self) -> list[ResultBatch]:
        """The requests shown, newest first (a copy)."""
        with self.lock:
            return list(self._batches)

    @property
    def tiles(self) -> list[ResultTile]:
        """Every tile, on every page, in display order (a copy)."""
        with self.lock:
            return [tile for batch in self._batches for tile in batch.tiles]

    @property
    def page_index(self) -> int:
        return self._page_index

    @property
    def page_size(self) -> int:
        return self._page_size

    @page_size.setter
    def page_size(self, size: int) -> None:
        """Tiles on a page from now on: the page is laid out again, from the first."""
        with self.lock:
            self._page_size = max(1, int(size))
            self._page_index = 0
            self.lay_out()

    @property
    def pages(self) -> int:
        with self.lock:
            return max(1, -(-len(self.tiles) // self._page_size))

    @property
    def page_tiles(self) -> list[ResultTile]:
        """The tiles of the page shown."""
        with self.lock:
            start = self._page_index * self._page_size
            return self.tiles[start : start + self._page_size]

    def filled_tiles(self) -> list[ResultTile]:
        """The tiles that show a result, in display order."""
        return [tile for tile in self.tiles if tile.is_filled]

    def selected_tiles(self) -> list[ResultTile]:
        """The tiles ticked for Compare, in display order."""
        return [tile for tile in self.tiles if tile.selected]

    def tile(self, tile_id: str) -> ResultTile | None:
        return next((tile for tile in self.tiles if tile.id == tile_id), None)

    def is_shown(self, tile: ResultTile) -> bool:
        """Whether ``tile`` is still in the grid (not removed)."""
        with self.lock:
            return any(tile in batch.tiles for batch in self._batches)

    def page_of(self, tile: ResultTile) -> int:
        """The page ``tile`` is on (-1 when it is not in the grid)."""
        tiles = self.tiles
        return tiles.index(tile) // self._page_size if tile in tiles else -1

    # -- changing ---------------------------------------------------------------------------

    def next_number(self) -> int:
        """The number (``#3``) the next request's tiles get."""
        with self.lock:
            return next(self._numbers)

    def start(self, request: ImageRequest | None, total: int, number: int | None = None) -> ResultBatch:
        """``total`` placeholder tiles for a new request, first; the grid turns to its first page."""
        with self.lock:
            batch = ResultBatch(self, number if number is not None else next(self._numbers), request, total)
            self._batches.insert(0, batch)
            self._page_index = 0
            self.lay_out()
        return batch

    def remove(self, tile: ResultTile) -> None:
        with self.lock:
            for batch in self._batches:
                if tile in batch.tiles:
                    batch.tiles.remove(tile)
            self._batches = [batch for batch in self._batches if batch.tiles]
            self._page_index = min(self._page_index, self.pages - 1)
            self.lay_out()

    def remove_saved(self, item_id: str) -> None:
        """Remove the tiles of gallery image ``item_id``."""
        with self.changes():
            for tile in self.tiles:
                details = tile.details
                if details is not None and details.metadata.get("gallery_id") == item_id:
                    self.remove(tile)

    def clear(self) -> int:
        """Remove every tile; returns how many showed a result."""
        with self.lock:
            count = len(self.filled_tiles())
            self._batches = []
            self._page_index = 0
            self.lay_out()
        return count

    def show_page(self, index: int) -> None:
        """Turn to page ``index`` (0: the newest results)."""
        with self.lock:
            self._page_index = max(0, min(int(index), self.pages - 1))
            self.lay_out()

    def select(self, tile: ResultTile, value: bool) -> None:
        """Tick (or untick) a tile for Compare (only a filled one can be)."""
        with self.lock:
            tile.selected_box = value and tile.is_filled
            self.tile_changed(tile)

    @contextmanager
    def changes(self) -> Iterator[None]:
        """``with model.changes():`` many tile changes, one page laid out (holds the lock)."""
        with self.lock:
            self._held += 1
            try:
                yield
            finally:
                self._held -= 1
                if not self._held and self._dirty:
                    self.lay_out()

    def lay_out(self) -> None:
        """Hand the page as it is now to ``on_page`` (after tiles were added, filled or removed)."""
        with self.lock:
            if self._held:
                self._dirty = True
                return
            self._dirty = False
            tiles = self.tiles
            start = self._page_index * self._page_size
            page = tiles[start : start + self._page_size]
            where = {
                "index": self._page_index,
                "pages": self.pages,
                "total": len(tiles),
                "first": start + 1 if page else 0,
                "last": start + len(page),
            }
            self._on_page([tile.as_json() for tile in page], where)

    def tile_changed(self, tile: ResultTile, picture: bool = False) -> None:
        """A tile's picture or state changed: its thumbnail goes first, then the page."""
        with self.lock:
            if tile not in self.page_tiles:
                return
            if picture:
                self._on_picture(tile.id)
            self.lay_out()

    def filled(self, response: ImagesResponse) -> None:
        """A batch has its images: tell ``on_filled``."""
        self._on_filled(response)

    def picture_of(self, tile_id: str) -> tuple[int, bytes, str] | None:
        """A tile's (version, thumbnail bytes, MIME type), or None while it has none."""
        with self.lock:
            tile = self.tile(tile_id)
            if tile is None or tile.picture is None:
                return None
            data, mime = tile.picture
            return tile.picture_version, data, mime


def read_image(tile: ResultTile, report: Callable[[str, str], Any]) -> GeneratedImage | None:
    """The tile's full image for an action, or None: ``report(message, "error")`` says why when its
    file is gone."""
    if not tile.is_filled:
        return None
    image = tile.image
    if image is None:
        report(MISSING_FILE, "error")
    return image


def settings_only(request: ImageRequest | None) -> ImageRequest | None:
    """``request`` without its input pictures (an edit's images, mask and markup, a variation's image):
    what a tile keeps of a request once the gallery keeps those."""
    if isinstance(request, EditRequest):
        return replace(request, images=[], mask=None, markup=None)
    if isinstance(request, VariationRequest):
        return replace(request, image=None)
    return request


def _first_input(request: ImageRequest | None, item: GalleryItem) -> str | None:
    """The gallery id of an edit's first input picture (what the viewer's Before shows), else None."""
    return item.input_ids[0] if isinstance(request, EditRequest) and item.input_ids else None


def _thumbnail(data: bytes) -> tuple[bytes, str]:
    from ..imaging import thumbnail

    return thumbnail(data, max_side=THUMBNAIL_SIDE)
