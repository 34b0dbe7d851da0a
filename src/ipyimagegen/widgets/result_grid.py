"""The results: a grid of thumbnail tiles, newest request first, in pages, with per-image actions.

Tiles carry small thumbnails only, so a saved notebook stays small; the full image goes to the
browser only when a tile is enlarged (in a viewer over the page, as a message, never in widget
state), and closing the viewer frees it. A request shows its placeholder tiles at once; each fills
with its streamed previews and then its result as they arrive. The page holds at most
``page_size`` tiles, so a session of a thousand results costs the browser what a page costs; the
older ones are a click away.

The grid puts together its parts: the tiles (:class:`~.tile_model.TileModel`, which owns the lock
worker threads take), the page (:class:`~.tile_grid.TileGridView`), the viewer
(:class:`~.viewer.ResultViewer`), Save and Download all (:class:`~.exporter.ResultExporter`) and
Compare (:class:`~.compare.ComparePanel`). The kernel keeps as little as the page: once the
gallery has a result, its tile holds the thumbnail, the request's settings and the gallery id; the
viewer, Save, Download, Compare, Edit and Variations read the rest back from the gallery when asked.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
from ipywidgets import CallbackDispatcher

from ..api.types import GeneratedImage, ImageRequest, ImagesResponse
from ..errors import ImageInputError, describe_error
from ..gallery import GalleryWriter
from .buttons import toolbar_button
from .exporter import ResultExporter
from .lifecycle import close_all, close_contents
from .picture_facts import SVG, svg_as_png
from .tile_grid import TileAction, TileGridView
from .tile_model import PAGE_SIZE, ResultBatch, ResultTile, TileModel, read_image
from .viewer import ResultViewer

if TYPE_CHECKING:
    from .compare import ComparePanel

__all__ = ["ACTIONS", "CALLBACKS", "PAGE_SIZE", "ResultBatch", "ResultGrid", "ResultTile"]

log = logging.getLogger(__name__)

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

CALLBACKS = {
    "edit": "callback(image): a tile's Edit (an SVG drawing as a PNG of it)",
    "variations": "callback(image): a tile's Variations (an SVG drawing as a PNG of it)",
    "use_prompt": "callback(prompt): a tile's Use prompt, with the prompt the user wrote",
    "same_seed": "callback(image): the viewer's Same seed (the image without its bytes, with its request and seed)",
    "share": "callback(image): the viewer's Share with the class",
    "filled": "callback(response): a response's images are shown (from whichever tab made them)",
}
"""What :meth:`ResultGrid.on_action` can register for, and what each callback gets."""


class ResultGrid(widgets.VBox):
    """Thumbnail tiles of results, newest request first, in pages of ``page_size``.

    ``on_action(name, callback)`` registers for a tile's or the viewer's action (see
    :data:`CALLBACKS`). Ticking two or more tiles enables "Compare": a contact sheet of those
    images, with "Save PDF".

    Size: its methods are the grid's API that the tabs and notebooks use; each hands over to the tile
    model, the viewer or the exporter, which is why there are more of them than one job needs.
    """

    def __init__(self, *, save_dir: str | Path | None = None, page_size: int = PAGE_SIZE) -> None:
        self.model = TileModel(
            on_page=self._show_page,
            on_picture=lambda tile_id: self.view.send_pictures([tile_id]),
            on_filled=lambda response: self._callbacks["filled"](response),
            page_size=page_size,
        )
        self._callbacks = {name: CallbackDispatcher() for name in CALLBACKS}
        self.can_share: Callable[[], bool] = lambda: False  # whether the viewer offers "Share with the class"
        self.comparison: ComparePanel | None = None
        self.notice_html = ""  # the last notice (it shows in the viewport for a few seconds)
        self.notice_kind = ""
        self.view = TileGridView(ACTIONS, self.model.picture_of)
        self.view.on_event(self._on_event)
        self.viewer = ResultViewer(self.model, self.view, self.show_notice, lambda: self.can_share())
        self.exporter = ResultExporter(self.model.saved, self.view.send_file, self.show_notice, save_dir)
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

    # -- what is shown -----------------------------------------------------------------------

    @property
    def gallery(self) -> GalleryWriter | None:
        """Where results are kept: tiles then hold thumbnails, not full images."""
        return self.model.saved.gallery

    @gallery.setter
    def gallery(self, gallery: GalleryWriter | None) -> None:
        self.model.saved.gallery = gallery

    @property
    def save_dir(self) -> Path | None:
        return self.exporter.save_dir

    @property
    def tiles(self) -> list[ResultTile]:
        """Every tile, on every page, in display order (newest request first)."""
        return self.model.tiles

    @property
    def page_index(self) -> int:
        return self.model.page_index

    @property
    def page_size(self) -> int:
        return self.model.page_size

    @page_size.setter
    def page_size(self, size: int) -> None:
        self.model.page_size = size

    @property
    def pages(self) -> int:
        return self.model.pages

    @property
    def images(self) -> list[GeneratedImage]:
        """The images shown, in display order (those kept in the gallery are read back from disk)."""
        return [image for image in (tile.image for tile in self.model.filled_tiles()) if image is not None]

    def filled_count(self) -> int:
        """How many tiles show a result (without reading any image)."""
        return len(self.model.filled_tiles())

    def tile(self, tile_id: str) -> ResultTile | None:
        return self.model.tile(tile_id)

    @property
    def selected_tiles(self) -> list[ResultTile]:
        """The tiles ticked for Compare, in display order."""
        return self.model.selected_tiles()

    @property
    def viewed(self) -> ResultTile | None:
        """The tile open in the viewer."""
        return self.viewer.viewed

    @property
    def preview_open(self) -> bool:
        return self.viewer.is_open

    # -- changing what is shown --------------------------------------------------------------

    def next_number(self) -> int:
        """The number (``#3``) the next request's tiles get."""
        return self.model.next_number()

    def start(
        self, request: ImageRequest | None, total: int | None = None, number: int | None = None
    ) -> ResultBatch:
        """Show ``total`` (default ``request.n``) placeholder tiles for a new request, first in the grid
        (``number``: one taken with :meth:`next_number`); the grid turns to its first page."""
        count = total if total is not None else max(getattr(request, "n", 1), 1)
        return self.model.start(request, count, number)

    def add_response(self, response: ImagesResponse) -> ResultBatch:
        """Show a finished response (made elsewhere) as a new request."""
        batch = self.start(response.request, len(response.data))
        batch.fill(response)
        return batch

    def remove(self, tile: ResultTile) -> None:
        """Remove a tile from view (and from the viewer)."""
        self.model.remove(tile)

    def remove_saved(self, item_id: str) -> None:
        """Remove the tiles of a gallery image that was deleted (in History)."""
        self.model.remove_saved(item_id)

    def clear(self, say: bool = False) -> None:
        """Remove every tile (``say``: and tell the user where the images still are)."""
        count = self.model.clear()
        self.close_preview()
        if say and count:
            where = " They are in the gallery (History)." if self.gallery is not None else ""
            self.show_notice(f"Cleared {count} result{'s' if count != 1 else ''} from view.{where}", "info")

    def show_page(self, index: int) -> None:
        """Turn to page ``index`` (0: the newest results)."""
        self.model.show_page(index)

    @contextmanager
    def changes(self) -> Iterator[None]:
        """``with grid.changes():`` many tile changes, one update of the page."""
        with self.model.changes():
            yield

    def select(self, tile: ResultTile, value: bool = True) -> None:
        """Tick (or untick) a tile for Compare, as its checkbox does."""
        self.model.select(tile, value)

    def _show_page(self, tiles: list[dict[str, Any]], page: dict[str, int]) -> None:
        """The model laid out a page: show it, follow the ticked tiles, close a viewer whose tile went."""
        self.view.show_tiles(tiles, page)
        count = len(self.model.selected_tiles())
        self.compare_button.disabled = count < 2
        self.compare_button.description = f"Compare ({count})" if count else "Compare"
        self.download_button.description = f"Download ({count})" if count else "Download all"
        self.toolbar.layout.display = None if self.model.filled_tiles() else "none"
        viewed = self.viewer.viewed
        if viewed is not None and not self.model.is_shown(viewed):
            self.close_preview()

    # -- actions -----------------------------------------------------------------------------

    def on_action(self, name: str, callback: Callable[[Any], Any], remove: bool = False) -> None:
        """``callback(...)`` for action ``name``: one of :data:`CALLBACKS` (``remove``: unregister it)."""
        if name not in self._callbacks:
            raise ValueError(f"No grid action {name!r}: choose one of {', '.join(CALLBACKS)}.")
        self._callbacks[name].register_callback(callback, remove=remove)

    def act(self, tile: ResultTile, name: str) -> None:
        """Do what a tile's button ``name`` does (as a click in the page does)."""
        actions: dict[str, Callable[[ResultTile], Any]] = {
            "enlarge": self.enlarge,
            "save": self.save,
            "delete": self.remove,
            "edit": lambda t: self._send_image("edit", t, raster=True),
            "variations": lambda t: self._send_image("variations", t, raster=True),
            "use_prompt": lambda t: self._callbacks["use_prompt"](t.prompt),
            "same_seed": self._send_same_seed,
            "share": lambda t: self._send_image("share", t),
        }
        action = actions.get(name)
        if action is None or (name != "delete" and not tile.is_filled):
            return
        if name in ("edit", "variations", "use_prompt", "same_seed"):
            self.close_preview()
        action(tile)

    def enlarge(self, tile: ResultTile) -> None:
        """Show the tile's full image over the page, with its details."""
        self.viewer.open(tile)

    def close_preview(self) -> None:
        """Close the viewer and free the full image."""
        self.viewer.close()

    def save(self, tile: ResultTile, folder: str | Path | None = None) -> Path | None:
        """Write the tile's full image to a file and hand it to the browser as a download."""
        return self.exporter.save(tile, folder)

    def download_zip(self) -> str | None:
        """The ticked results (or all of them) as one zip with a manifest, downloaded in the browser."""
        return self.exporter.download_zip(self.model.selected_tiles() or self.model.filled_tiles())

    def _send_same_seed(self, tile: ResultTile) -> None:
        details = tile.details
        if details is not None and details.seed is not None:
            self._callbacks["same_seed"](details)

    def _send_image(self, name: str, tile: ResultTile, raster: bool = False) -> None:
        image = read_image(tile, self.show_notice)
        if image is None:
            return
        try:
            picture = _as_raster(image) if raster else image
        except ImageInputError as exc:  # a drawing that cannot be drawn: said, never a grey card sent on
            self.show_notice(f"This picture cannot be used: {html.escape(describe_error(exc))}", "error")
            return
        self._callbacks[name](picture)

    def _on_event(self, message: dict[str, Any]) -> None:
        event = message.get("event")
        if event == "page":
            self.show_page(self.page_index + _step(message.get("by")))
        elif event == "viewer":
            if message.get("do") == "step":
                self.viewer.step(_step(message.get("by")))
            elif message.get("do") == "before":
                self.viewer.send_before()
            else:
                self.close_preview()
        elif (tile := self.tile(str(message.get("id")))) is not None:
            if event == "select":
                self.select(tile, bool(message.get("value")))
            elif event == "action":
                self.act(tile, str(message.get("name")))

    # -- compare, notices, closing -----------------------------------------------------------

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
                gallery=self.model.saved.reader,
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

    def close_compare(self) -> None:
        """Close the comparison sheet, if one is shown."""
        if self.comparison is not None:
            self.comparison.dispose()

    def _compare_closed(self, panel: ComparePanel) -> None:
        if self.comparison is panel:
            self.comparison = None
            self.compare_slot.children = ()

    def show_notice(self, message_html: str, kind: str = "ok") -> None:
        """A message in the viewport for a few seconds (HTML, already escaped)."""
        self.notice_html, self.notice_kind = message_html, kind
        if message_html:
            self.view.show_notice(message_html, kind)

    def reveal(self, selector: str, block: str = "center", focus: str | None = None) -> None:
        """Bring the studio's visible element matching ``selector`` into view and focus it (see
        :meth:`TileGridView.reveal`)."""
        self.view.reveal(selector, block, focus)

    def close(self) -> None:
        """Close every panel and part the grid made."""
        close_contents(self)
        close_all([self.comparison])
        super().close()


def _step(by: Any) -> int:
    return 1 if isinstance(by, (int, float)) and by > 0 else -1


def _as_raster(image: GeneratedImage) -> GeneratedImage:
    """``image``, or for an SVG drawing a PNG of it at its own size (what edits and variations take)."""
    if image.mime_type != SVG:
        return image
    return replace(image, data=svg_as_png(image.data), mime_type="image/png")
