"""The results: a wrapping grid of thumbnail tiles, newest request first, with per-image actions.

Tiles carry small thumbnails only, so a saved notebook stays small; the full image goes to
the browser only when a tile is enlarged, and closing the preview frees it. A request shows
its placeholder tiles at once; they fill with streamed previews and then with the results.
"""

from __future__ import annotations

import html
import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
from ipywidgets import CallbackDispatcher
from ipywidgets.widgets.widget_bool import CheckboxStyle
from ipywidgets.widgets.widget_string import HTMLStyle

from ..api.errors import describe_error
from ..api.types import EXTENSION_BY_MIME, GeneratedImage, ImageRequest, ImagesResponse, PartialImage
from ..gallery import GalleryLike
from ..thumbnails import thumbnail_of
from .download import DownloadButton
from .lifecycle import close_all, close_contents, close_tree
from .style import THUMBNAIL_SIDE, TILE_WIDTH_PX

if TYPE_CHECKING:
    from .compare import ComparePanel

log = logging.getLogger(__name__)

IMAGE_SIDE_PX = TILE_WIDTH_PX - 10  # the tile's padding and border
PROMPT_PREVIEW_CHARS = 160


def _thumbnail(data: bytes) -> tuple[bytes, str]:
    from ..imaging import thumbnail

    return thumbnail(data, max_side=THUMBNAIL_SIDE)


def _image_format(mime: str) -> str:
    return mime.split("/", 1)[-1] if "/" in mime else "png"


def _short(text: str, limit: int = PROMPT_PREVIEW_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class TileParts:
    """Layout and style widgets that every tile of a grid shares.

    A tile is some twenty widgets; giving each its own Layout and Style would more than double
    the widgets (and the messages to the browser) per result.
    """

    def __init__(self) -> None:
        self.action_layout = widgets.Layout(width="auto", flex="1 1 auto", margin="1px")
        self.button_style = widgets.ButtonStyle()
        self.full_width = widgets.Layout(width="100%")
        self.html_style = HTMLStyle()
        self.picture = widgets.Layout(width=f"{IMAGE_SIDE_PX}px", height=f"{IMAGE_SIDE_PX}px")
        self.row = widgets.Layout(width="100%", flex_flow="row nowrap")
        self.caption = widgets.Layout(width="100%", align_items="center")
        self.checkbox = widgets.Layout(width="20px", flex="0 0 auto", margin="0 4px 0 0")
        self.checkbox_style = CheckboxStyle()
        self.tile = widgets.Layout(width=f"{TILE_WIDTH_PX}px", flex="0 0 auto")
        self.all = [part for part in vars(self).values() if isinstance(part, widgets.Widget)]

    def html(self, value: str = "") -> widgets.HTML:
        return widgets.HTML(value, layout=self.full_width, style=self.html_style)

    def action(self, description: str, icon: str, tooltip: str, css: str) -> widgets.Button:
        button = widgets.Button(
            description=description,
            icon=icon,
            tooltip=tooltip,
            disabled=True,
            layout=self.action_layout,
            style=self.button_style,
        )
        button.add_class(css)
        return button


class ResultTile(widgets.VBox):
    """One image of a request: a placeholder until the image (or a streamed preview) arrives."""

    def __init__(
        self, grid: ResultGrid, number: int, request: ImageRequest | None, index: int, total: int
    ) -> None:
        self.grid = grid
        self.number = number
        self.request = request
        self.index = index
        self.total = total
        self._details: GeneratedImage | None = None  # the result without its bytes
        self._image: GeneratedImage | None = None  # the result, when it is kept in memory
        self._stored_at: Path | None = None  # else its file in the gallery
        self.picture: widgets.Image | None = None
        self._shown: GeneratedImage | None = None  # the result whose thumbnail shows before it is filled
        parts = grid.parts
        self.slot = widgets.Box(
            [parts.html('<div class="ipyimagegen-placeholder">waiting…</div>')], layout=parts.picture
        )
        self.prompt_html = parts.html()
        self.label = parts.html()
        self.label.add_class("ipyimagegen-tile-label")
        self.enlarge_button = parts.action(
            "Enlarge", "search-plus", "Show the full image", "ipyimagegen-enlarge"
        )
        self.save_button = parts.action(
            "Save", "download", "Save the full image to a file", "ipyimagegen-save"
        )
        self.delete_button = parts.action("", "trash", "Remove from view", "ipyimagegen-delete")
        self.edit_button = parts.action("Edit", "pencil", "Edit this image", "ipyimagegen-edit")
        self.variations_button = parts.action(
            "Variations", "clone", "Make variations of this image", "ipyimagegen-variations"
        )
        self.use_prompt_button = parts.action(
            "Use prompt", "reply", "Put this prompt in the prompt box", "ipyimagegen-use-prompt"
        )
        self.delete_button.disabled = False
        self.select_box = widgets.Checkbox(
            value=False,
            description="",
            indent=False,
            disabled=True,
            tooltip="Select for Compare",
            layout=parts.checkbox,
            style=parts.checkbox_style,
        )
        self.select_box.add_class("ipyimagegen-select")
        self.select_box.observe(lambda _change: grid.selection_changed(), "value")
        self.enlarge_button.on_click(lambda _b: grid.enlarge(self))
        self.save_button.on_click(lambda _b: grid.save(self))
        self.delete_button.on_click(lambda _b: grid.remove(self))
        self.edit_button.on_click(lambda _b: grid.send_to_edit(self))
        self.variations_button.on_click(lambda _b: grid.send_to_variations(self))
        self.use_prompt_button.on_click(lambda _b: grid.send_prompt(self))
        actions = widgets.VBox(
            [
                widgets.HBox(
                    [self.enlarge_button, self.save_button, self.use_prompt_button], layout=parts.row
                ),
                widgets.HBox(
                    [self.edit_button, self.variations_button, self.delete_button], layout=parts.row
                ),
            ],
            layout=parts.full_width,
        )
        caption = widgets.HBox([self.select_box, self.label], layout=parts.caption)
        super().__init__([self.slot, self.prompt_html, caption, actions], layout=parts.tile)
        self.add_class("ipyimagegen-tile")
        self._show_text(getattr(request, "prompt", None) or "", "waiting")

    @property
    def is_filled(self) -> bool:
        return self._details is not None

    @property
    def is_shown(self) -> bool:
        """Whether it shows a result's picture already (filled, or about to be)."""
        return self.is_filled or self._shown is not None

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
    def selected(self) -> bool:
        """Ticked for Compare (only a tile with its image can be)."""
        return self.is_filled and self.select_box.value

    @property
    def prompt(self) -> str:
        if self._details is not None and self._details.prompt:
            return self._details.prompt
        return getattr(self.request, "prompt", None) or ""

    def label_text(self) -> str:
        """``#3 · gpt-image-1.5 · 1024x1024 · 2/4`` (no ``1/1`` for a request of one image)."""
        request = self.request
        parts = [f"#{self.number}"]
        if request is not None:
            parts += [request.model, request.size or "auto"]
        if self.total > 1:
            parts.append(f"{self.index + 1}/{self.total}")
        return " · ".join(parts)

    def show_preview(self, partial: PartialImage) -> None:
        """A streamed partial image: shown in place of the placeholder until the result comes."""
        if not self.is_filled:
            self._set_picture(*_thumbnail(partial.data))
            self._show_text(self.prompt, f"preview {partial.partial_index + 1}")

    def show_ready(self, image: GeneratedImage) -> None:
        """A result's thumbnail, shown as soon as it is made; its actions wait for :meth:`fill`
        (once the result is on disk)."""
        if not self.is_filled and self._shown is not image:
            self._shown = image
            self._set_picture(*thumbnail_of(image, THUMBNAIL_SIDE))
            self._show_text(self.prompt, "saving")

    def fill(self, image: GeneratedImage) -> None:
        """Show a result. When the gallery has its file, the tile keeps the thumbnail, not the bytes."""
        self._details = replace(image, data=b"")
        self._stored_at = self.grid.stored_file(image)
        self._image = None if self._stored_at is not None else image
        self._set_picture(*thumbnail_of(image, THUMBNAIL_SIDE))
        self._show_text(self.prompt, "")
        for button in (
            self.enlarge_button,
            self.save_button,
            self.edit_button,
            self.variations_button,
            self.select_box,
        ):
            button.disabled = False
        self.use_prompt_button.disabled = not self.prompt

    def dispose(self) -> None:
        """Close this tile and every widget in it (the thumbnail included)."""
        close_tree(self, keep=self.grid.parts.all)
        self.picture = None

    def _set_picture(self, small: bytes, mime: str) -> None:
        if self.picture is None:
            self.picture = widgets.Image(
                value=small,
                format=_image_format(mime),
                layout=self.grid.parts.picture,
            )
            self.picture.add_class("ipyimagegen-tile-image")
            old = self.slot.children
            self.slot.children = (self.picture,)
            for child in old:
                close_tree(child, keep=self.grid.parts.all)
        else:
            self.picture.format = _image_format(mime)
            self.picture.value = small

    def _show_text(self, prompt: str, state: str) -> None:
        if prompt:
            full = html.escape(prompt, quote=True)
            text = f'<div class="ipyimagegen-tile-prompt" title="{full}">{html.escape(_short(prompt))}</div>'
        else:  # variations have no prompt
            text = '<div class="ipyimagegen-tile-prompt ipyimagegen-no-prompt">a variation (no prompt)</div>'
        self.prompt_html.value = text
        label = self.label_text() + (f" · {state}" if state else "")
        self.label.value = f'<span title="{html.escape(label, quote=True)}">{html.escape(label)}</span>'


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
            if 0 <= index < len(self.tiles) and self.tiles[index] in self.grid.tiles:
                self.tiles[index].show_ready(image)

    def fill(self, response: ImagesResponse) -> None:
        """Put the results in their placeholders; placeholders left over (failed parts) go away.

        A placeholder removed from view while waiting stays removed: its image is not shown.
        """
        with self.grid.lock:
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
                tile.fill(image)
            for tile in [t for t in self.tiles if not t.is_filled]:
                self.grid.remove(tile)
            self.grid.relayout()
        self.grid.batch_filled(response)

    def keep(self, response: ImagesResponse) -> None:
        """Fill the tiles of the images a cancel kept (each at its own place); the others go away."""
        with self.grid.lock:
            tiles = {tile.index: tile for tile in self.tiles}
            for image in response.data:
                tile = tiles.get(image.index)
                if tile is not None and tile in self.grid.tiles:
                    tile.fill(image)
            for tile in [t for t in self.tiles if not t.is_filled]:
                self.grid.remove(tile)
            self.grid.relayout()

    def discard(self, keep_shown: bool = False) -> None:
        """Remove every tile that has no result (after an error or a cancel); ``keep_shown``: not those
        that show a result already (a cancel keeps what is done)."""
        with self.grid.lock:
            for tile in [t for t in self.tiles if not t.is_filled]:
                if not (keep_shown and tile.is_shown):
                    self.grid.remove(tile)


class ResultGrid(widgets.VBox):
    """Thumbnail tiles of results, newest request first, with a shared preview area above them.

    ``on_edit``, ``on_variations`` and ``on_use_prompt`` register ``callback(image)`` for the
    tile actions "Edit", "Variations" and "Prompt" (the latter with the prompt text);
    ``on_filled`` registers ``callback(response)`` for every response shown. Ticking two or
    more tiles enables "Compare": a contact sheet of those images, with "Save PDF".
    """

    def __init__(self, *, save_dir: str | Path | None = None) -> None:
        self.save_dir = Path(save_dir) if save_dir is not None else None
        self.lock = threading.RLock()
        self.gallery: GalleryLike | None = (
            None  # where results are kept: tiles then hold thumbnails, not full images
        )
        self.parts = TileParts()
        self._batches: list[ResultBatch] = []
        self._numbers = itertools.count(1)
        self._edit_handlers = CallbackDispatcher()
        self._variations_handlers = CallbackDispatcher()
        self._use_prompt_handlers = CallbackDispatcher()
        self._filled_handlers = CallbackDispatcher()
        self.comparison: ComparePanel | None = None
        self._preview_image: widgets.Image | None = None
        self._previewed: ResultTile | None = None
        # the Download button, when there is one, sits right after the message
        self.notice = widgets.HTML(layout=widgets.Layout(flex="0 1 auto"))
        self.notice.add_class("ipyimagegen-notice")
        self.download: DownloadButton | None = None  # the last saved file's, until the next notice
        self.notice_row = widgets.HBox(
            [self.notice], layout=widgets.Layout(width="100%", align_items="center")
        )
        self.preview_caption = widgets.HTML(layout=widgets.Layout(flex="1 1 auto"))
        self.preview_close = widgets.Button(
            description="Close", icon="times", tooltip="Close the preview", layout={"width": "auto"}
        )
        self.preview_close.add_class("ipyimagegen-preview-close")
        self.preview_close.on_click(lambda _b: self.close_preview())
        self.preview_slot = widgets.Box()
        self.preview = widgets.VBox(
            [widgets.HBox([self.preview_caption, self.preview_close]), self.preview_slot],
            layout=widgets.Layout(display="none", width="100%"),
        )
        self.preview.add_class("ipyimagegen-preview")
        self.compare_button = widgets.Button(
            description="Compare",
            icon="th-large",
            tooltip="Tick two or more images to compare them in one sheet",
            disabled=True,
            layout=widgets.Layout(width="auto"),
        )
        self.compare_button.add_class("ipyimagegen-compare-button")
        self.compare_button.on_click(lambda _b: self.compare())
        self.toolbar = widgets.HBox([self.compare_button], layout=widgets.Layout(display="none"))
        self.compare_slot = widgets.Box(layout=widgets.Layout(width="100%"))
        self.tiles_box = widgets.Box(layout=widgets.Layout(flex_flow="row wrap", width="100%"))
        self.tiles_box.add_class("ipyimagegen-grid")
        super().__init__(
            [self.notice_row, self.toolbar, self.compare_slot, self.preview, self.tiles_box],
            layout=widgets.Layout(width="100%"),
        )
        self.add_class("ipyimagegen-results")

    # -- what is shown ---------------------------------------------------------------------

    @property
    def tiles(self) -> list[ResultTile]:
        return [tile for tile in self.tiles_box.children if isinstance(tile, ResultTile)]

    @property
    def images(self) -> list[GeneratedImage]:
        """The images shown, in display order (those kept in the gallery are read back from disk)."""
        return [image for image in (tile.image for tile in self.tiles if tile.is_filled) if image is not None]

    def filled_count(self) -> int:
        """How many tiles show a result (without reading any image)."""
        return sum(tile.is_filled for tile in self.tiles)

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
        (``number``: one taken with :meth:`next_number`)."""
        count = total if total is not None else max(getattr(request, "n", 1), 1)
        with self.lock:
            batch = ResultBatch(self, number if number is not None else next(self._numbers), request, count)
            self._batches.insert(0, batch)
            self.relayout()
        return batch

    def add_response(self, response: ImagesResponse) -> ResultBatch:
        """Show a finished response (made elsewhere) as a new request."""
        batch = self.start(response.request, len(response.data))
        batch.fill(response)
        return batch

    def remove(self, tile: ResultTile) -> None:
        """Remove a tile from view and close its widgets."""
        with self.lock:
            for batch in self._batches:
                if tile in batch.tiles:
                    batch.tiles.remove(tile)
            self._batches = [batch for batch in self._batches if batch.tiles]
            self.relayout()
        if self._preview_image is not None and self._previewed is tile:
            self.close_preview()
        tile.dispose()

    def clear(self) -> None:
        """Remove every tile."""
        for tile in self.tiles:
            self.remove(tile)

    def relayout(self) -> None:
        """Show the batches' tiles in order (after a batch is filled or a tile removed)."""
        self.tiles_box.children = tuple(tile for batch in self._batches for tile in batch.tiles)
        self.selection_changed()

    def selection_changed(self) -> None:
        """Follow the ticked tiles: Compare is offered for two or more."""
        count = len(self.selected_tiles)
        self.compare_button.disabled = count < 2
        self.compare_button.description = f"Compare ({count})" if count else "Compare"
        self.toolbar.layout.display = None if any(tile.is_filled for tile in self.tiles) else "none"

    # -- actions -----------------------------------------------------------------------------

    def enlarge(self, tile: ResultTile) -> None:
        """Show the tile's full image in the preview area (the only place the full bytes go)."""
        image = self._full_image(tile)
        if image is None:
            return
        old = self._preview_image
        self._preview_image = widgets.Image(value=image.data, format=_image_format(image.mime_type))
        self._preview_image.add_class("ipyimagegen-preview-image")
        self._previewed = tile
        self.preview_slot.children = (self._preview_image,)
        if old is not None:
            close_tree(old)
        width, height = image.size
        details = f"{tile.label_text()} · {width}×{height}"
        self.preview_caption.value = (
            f"<div><b>{html.escape(details)}</b></div><div>{html.escape(tile.prompt)}</div>"
        )
        self.preview.layout.display = None

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
        self.comparison = panel
        self.compare_slot.children = (panel,)
        return panel

    def close(self) -> None:
        """Close every tile, panel and shared part the grid made."""
        close_contents(self)
        close_all([self.comparison, self._preview_image, self.preview, self.download, *self.parts.all])
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
        """Hide the preview and free the full image."""
        old = self._preview_image
        self._preview_image = None
        self._previewed = None
        self.preview_slot.children = ()
        self.preview_caption.value = ""
        self.preview.layout.display = "none"
        if old is not None:
            close_tree(old)

    def save(self, tile: ResultTile, folder: str | Path | None = None) -> Path | None:
        """Write the tile's full image to a file; say where, with a download link."""
        image = self._full_image(tile)
        if image is None:
            return None
        target = Path(folder) if folder is not None else (self.save_dir or Path.cwd())
        try:
            target.mkdir(parents=True, exist_ok=True)
            path = _unique_path(target, tile, image)
            image.save(path)
        except OSError as exc:
            log.warning("could not save an image to %s: %s", target, exc)
            self.show_notice(
                f"Could not save the image to {html.escape(str(target))}: {html.escape(str(exc))}", "error"
            )
            return None
        self.show_notice(f"Saved to <code>{html.escape(str(path))}</code>", "ok")
        mime = image.mime_type
        self.download = DownloadButton(lambda: (path.read_bytes(), mime), path.name)
        self.notice_row.children = (self.notice, self.download)
        return path

    def show_notice(self, message_html: str, kind: str = "ok") -> None:
        """A one-line message above the grid (replaces the previous one, and its download button)."""
        self.notice.value = f'<span class="ipyimagegen-{kind}">{message_html}</span>' if message_html else ""
        if self.download is not None:
            old, self.download = self.download, None
            self.notice_row.children = (self.notice,)
            close_tree(old)

    def on_edit(self, callback: Callable[[GeneratedImage], Any], remove: bool = False) -> None:
        """``callback(image)`` when a tile's "Edit" is clicked."""
        self._edit_handlers.register_callback(callback, remove=remove)

    def on_variations(self, callback: Callable[[GeneratedImage], Any], remove: bool = False) -> None:
        """``callback(image)`` when a tile's "Variations" is clicked."""
        self._variations_handlers.register_callback(callback, remove=remove)

    def on_use_prompt(self, callback: Callable[[str], Any], remove: bool = False) -> None:
        """``callback(prompt)`` when a tile's "Prompt" is clicked (to put it back in the prompt box)."""
        self._use_prompt_handlers.register_callback(callback, remove=remove)

    def on_filled(self, callback: Callable[[ImagesResponse], Any], remove: bool = False) -> None:
        """``callback(response)`` after a response's images are shown (from whichever tab made them)."""
        self._filled_handlers.register_callback(callback, remove=remove)

    def send_to_edit(self, tile: ResultTile) -> None:
        """A tile's "Edit": its full image to the ``on_edit`` callbacks."""
        self._send_image(self._edit_handlers, tile)

    def send_to_variations(self, tile: ResultTile) -> None:
        """A tile's "Variations": its full image to the ``on_variations`` callbacks."""
        self._send_image(self._variations_handlers, tile)

    def send_prompt(self, tile: ResultTile) -> None:
        """A tile's "Use prompt": its prompt to the ``on_use_prompt`` callbacks."""
        self._use_prompt_handlers(tile.prompt)

    def batch_filled(self, response: ImagesResponse) -> None:
        """A batch has its images: tell the ``on_filled`` callbacks."""
        self._filled_handlers(response)

    def _send_image(self, dispatcher: CallbackDispatcher, tile: ResultTile) -> None:
        image = self._full_image(tile)
        if image is not None:
            dispatcher(image)

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

    def stored_file(self, image: GeneratedImage) -> Path | None:
        """The file of ``image`` in the grid's gallery, when it was saved there."""
        item_id = image.metadata.get("gallery_id")
        look_up = getattr(self.gallery, "get", None)  # a plain GalleryLike only saves
        if look_up is None or not isinstance(item_id, str):
            return None
        try:
            path = Path(look_up(item_id).path)
        except Exception:
            return None
        return path if path.is_file() else None


def _unique_path(folder: Path, tile: ResultTile, image: GeneratedImage) -> Path:
    ext = EXTENSION_BY_MIME.get(image.mime_type, "png")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    stem = f"ipyimagegen-{stamp}-{tile.number}-{tile.index + 1}"
    path, k = folder / f"{stem}.{ext}", 1
    while path.exists():
        k += 1
        path = folder / f"{stem}-{k}.{ext}"
    return path
