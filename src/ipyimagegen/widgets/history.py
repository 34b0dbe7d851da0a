"""The History browser: saved images, page by page, with a prompt search, a model filter and actions.

Tiles show the gallery's cached thumbnails (a GIF's plays; GIF and SVG tiles carry a badge, as in the
results grid); a full image goes to the page only when it is enlarged (in the viewer over the page,
with Download there, and the grid viewer's facts). Each tile can reuse its settings,
start an edit or variations (the studio connects these callbacks to its tabs), show its lineage
(what it was made from, uploads and masks included, and what was made from it), be ticked for
an export (a zip with a manifest, downloaded in the browser), or be deleted (a second click
confirms; the studio removes its result tile too).
"""

from __future__ import annotations

import html
import logging
import math
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

import ipywidgets as widgets
from ipywidgets import CallbackDispatcher

from ..errors import ImageInputError, describe_error
from ..gallery import GalleryItem, GalleryReader, GalleryStore
from ..pricing import format_usd
from .buttons import toolbar_button
from .download import download_name
from .lifecycle import close_all, close_contents, close_tree
from .picture_facts import (
    GIF,
    SVG,
    children_of,
    cost_text,
    format_badge,
    lineage_facts,
    picture_facts,
    pixel_size,
    svg_as_png,
)
from .search_as_you_type import SearchAsYouType
from .style import CSS, THUMBNAIL_SIDE
from .tile_grid import TileAction, TileGridView

log = logging.getLogger(__name__)

PAGE_SIZE = 12
LINEAGE_SIDE_PX = 96
ALL_MODELS = ""
_MADE_BY = {"generations": "generated", "edits": "edit", "variations": "variation"}

ACTIONS = (
    TileAction("enlarge", "Enlarge", "search-plus", "Show the full image, its details and Download"),
    TileAction("reuse", "Reuse settings", "reply", "Put this image's prompt and settings back in the form"),
    TileAction(
        "lineage", "Lineage", "sitemap", "Show what this image was made from and what was made from it"
    ),
    TileAction("edit", "Edit", "pencil", "Edit this image, with its prompt and settings"),
    TileAction("variations", "Variations", "clone", "Make variations of this image"),
    TileAction("delete", "", "trash", "Delete this image from the gallery (click twice)"),
)

HISTORY_CSS = """
.ipyimagegen-history { max-width: 100%; }
.ipyimagegen-history-toolbar { gap: 8px; align-items: center; flex-wrap: wrap; }
.ipyimagegen-history-page { font-size: 13px; white-space: nowrap; font-variant-numeric: tabular-nums; }
.ipyimagegen-history-lineage { border: 1px solid var(--jp-border-color2, #ddd); border-radius: 4px; padding: 6px; }
.ipyimagegen-history-lineage-arrow { font-size: 20px; color: var(--jp-ui-font-color2, #666); align-self: center; }
.ipyimagegen-history-lineage-step { font-size: 11px; width: 96px; overflow: hidden; text-overflow: ellipsis;
  white-space: nowrap; }
.ipyimagegen-history-lineage-current { outline: 2px solid var(--jp-brand-color1, #1976d2); }
.ipyimagegen-history-lineage-heading { font-size: 12px; color: var(--jp-ui-font-color2, #666); width: 100%; }
"""


def _short(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _prompt_text(item: Any) -> str:
    """The prompt, or what made the image when it had none (a variation)."""
    return item.prompt or f"({_MADE_BY.get(item.endpoint, item.endpoint)}, no prompt)"


def _format_of(mime: str) -> str:
    return mime.split("/", 1)[-1]


def _small_picture(data: bytes, mime: str) -> widgets.Image:
    side = f"{LINEAGE_SIDE_PX}px"
    picture = widgets.Image(
        value=data, format=_format_of(mime), layout=widgets.Layout(width=side, height=side)
    )
    picture.add_class("ipyimagegen-tile-image")
    return picture


class HistoryTile:
    """One saved image on the page: its item, its cached thumbnail and its state."""

    def __init__(self, browser: HistoryBrowser, item: Any) -> None:
        self.browser = browser
        self.item = item
        self.id = item.id
        self.confirming = False  # the first click on delete asks for a second
        self.problem = ""
        try:
            self.picture: tuple[bytes, str] | None = _tile_picture(browser.gallery, item)
        except Exception as exc:
            log.warning("no thumbnail for %s: %s", item.id, exc)
            self.picture = None
            self.problem = describe_error(exc)

    @property
    def selected(self) -> bool:
        return self.id in self.browser.selected_ids

    def label_text(self) -> str:
        item = self.item
        made = f"{item.created.astimezone():%Y-%m-%d %H:%M}"
        return " · ".join(part for part in (item.model, item.size, made) if part)

    def as_json(self) -> dict[str, Any]:
        badge, badge_title = format_badge(self.item.mime_type)
        return {
            "id": self.id,
            "prompt": _prompt_text(self.item),
            "label": self.label_text(),
            "picture": 1 if self.picture is not None else 0,
            "placeholder": "no preview" if self.picture is None else "",
            "enabled": [action.name for action in ACTIONS],
            "selectable": True,
            "selected": self.selected,
            "labels": {"delete": "Delete?"} if self.confirming else {},
            "danger": ["delete"] if self.confirming else [],
            "badge": badge,
            "badge_title": badge_title,
        }


class HistoryBrowser(widgets.VBox):
    """Every image in a gallery, newest first, ``page_size`` at a time.

    ``on_reuse``, ``on_edit`` and ``on_variations`` register ``callback(item)`` (a
    :class:`~ipyimagegen.gallery.GalleryItem`) for the tile actions; ``on_delete`` registers
    ``callback(item_id)`` after an image is deleted. Call :meth:`refresh` after saving new images.

    Size: its methods are the History tab's API that the studio and notebooks call (paging and
    search, four tile actions with their callbacks, selection and export, the viewer, deletion,
    lineage) plus the page's messages; each is a few lines over the gallery and the tiles.
    """

    def __init__(self, gallery: GalleryStore, *, page_size: int = PAGE_SIZE) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {page_size}")
        self.gallery = gallery
        self.page_size = page_size
        self.page = 0
        self.total = 0
        self.selected_ids: list[str] = []  # ticked for export, on any page
        self.viewed: HistoryTile | None = None
        self._lock = threading.RLock()
        self._quiet = False
        self._tiles: dict[str, HistoryTile] = {}
        self._lineage_parts: list[widgets.Widget] = []
        self._lineage_ids: set[str] = set()
        self._reuse_handlers = CallbackDispatcher()
        self._edit_handlers = CallbackDispatcher()
        self._variations_handlers = CallbackDispatcher()
        self._delete_handlers = CallbackDispatcher()

        self.search = widgets.Text(
            placeholder="Search prompts (as you type)",
            tooltip="The list follows as you type; Enter searches at once",
            continuous_update=False,  # sent on Enter, or by the helper once typing pauses
            layout=widgets.Layout(width="280px"),
        )
        self.search.add_class("ipyimagegen-history-search")
        self.search_as_you_type = SearchAsYouType("ipyimagegen-history", "ipyimagegen-history-search")
        self.model_filter = widgets.Dropdown(
            options=[("All models", ALL_MODELS)], value=ALL_MODELS, layout=widgets.Layout(width="200px")
        )
        self.model_filter.add_class("ipyimagegen-history-model")
        self.refresh_button = toolbar_button(
            "", "refresh", "Reload the gallery", "ipyimagegen-history-refresh"
        )
        self.prev_button = toolbar_button("Prev", "chevron-left", "Newer images", "ipyimagegen-history-prev")
        self.next_button = toolbar_button("Next", "chevron-right", "Older images", "ipyimagegen-history-next")
        self.select_page_button = toolbar_button(
            "Select page",
            "check-square-o",
            "Tick every image on this page",
            "ipyimagegen-history-select-page",
        )
        self.unselect_button = toolbar_button(
            "Select none", "square-o", "Untick every image", "ipyimagegen-history-select-none"
        )
        self.export_button = toolbar_button(
            "Export",
            "file-archive-o",
            "Download the ticked images as a zip, with a manifest",
            "ipyimagegen-history-export",
        )
        self.page_label = widgets.HTML()
        self.page_label.add_class("ipyimagegen-history-page")
        self.status = widgets.HTML(layout=widgets.Layout(width="auto"))  # 100% and its margins would overflow
        self.status.add_class("ipyimagegen-status")
        self.lineage_title = widgets.HTML(layout=widgets.Layout(flex="1 1 auto"))
        self.lineage_close = toolbar_button(
            "Close", "times", "Close the lineage", "ipyimagegen-history-lineage-close"
        )
        self.lineage_steps = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap", width="100%"))
        self.lineage = widgets.VBox(
            [widgets.HBox([self.lineage_title, self.lineage_close]), self.lineage_steps],
            layout=widgets.Layout(display="none", width="100%"),
        )
        self.lineage.add_class("ipyimagegen-history-lineage")
        self.view = TileGridView(ACTIONS, self._picture_of)
        self.view.add_class("ipyimagegen-history-grid")
        self.view.on_event(self._on_event)

        self.search.observe(self._filters_changed, names="value")
        self.model_filter.observe(self._filters_changed, names="value")
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.prev_button.on_click(lambda _b: self.show_page(self.page - 1))
        self.next_button.on_click(lambda _b: self.show_page(self.page + 1))
        self.select_page_button.on_click(lambda _b: self.select_page())
        self.unselect_button.on_click(lambda _b: self.select_none())
        self.export_button.on_click(lambda _b: self.export())
        self.lineage_close.on_click(lambda _b: self.hide_lineage())

        toolbar = widgets.HBox([self.search, self.search_as_you_type, self.model_filter, self.refresh_button])
        toolbar.add_class("ipyimagegen-history-toolbar")
        selection = widgets.HBox([self.select_page_button, self.unselect_button, self.export_button])
        selection.add_class("ipyimagegen-history-toolbar")
        pager = widgets.HBox([self.prev_button, self.page_label, self.next_button])
        pager.add_class("ipyimagegen-history-toolbar")
        style = widgets.HTML(f"<style>{CSS}{HISTORY_CSS}</style>", layout=widgets.Layout(display="none"))
        super().__init__(
            [style, toolbar, selection, self.status, self.lineage, self.view, pager],
            layout=widgets.Layout(width="100%"),
        )
        self.add_class("ipyimagegen-history")
        self._show_selection()
        self.refresh()

    def close(self) -> None:
        """Close every control and panel the browser made."""
        close_contents(self)
        close_all(self._lineage_parts)
        super().close()

    # -- callbacks ---------------------------------------------------------------------------

    def on_reuse(self, callback: Callable[[Any], Any], remove: bool = False) -> None:
        """Call ``callback(item)`` when "Reuse settings" is clicked on a tile."""
        self._reuse_handlers.register_callback(callback, remove=remove)

    def on_edit(self, callback: Callable[[Any], Any], remove: bool = False) -> None:
        """Call ``callback(item)`` when "Edit" is clicked on a tile."""
        self._edit_handlers.register_callback(callback, remove=remove)

    def on_variations(self, callback: Callable[[Any], Any], remove: bool = False) -> None:
        """Call ``callback(item)`` when "Variations" is clicked on a tile."""
        self._variations_handlers.register_callback(callback, remove=remove)

    def on_delete(self, callback: Callable[[str], Any], remove: bool = False) -> None:
        """Call ``callback(item_id)`` after an image is deleted from the gallery."""
        self._delete_handlers.register_callback(callback, remove=remove)

    def send_to_reuse(self, item: Any) -> None:
        self._reuse_handlers(item)

    def send_to_edit(self, item: Any) -> None:
        """A tile's "Edit": the item to the ``on_edit`` callbacks (an SVG drawing as a PNG of it)."""
        self._send_picture(self._edit_handlers, item)

    def send_to_variations(self, item: Any) -> None:
        """A tile's "Variations": the item to the ``on_variations`` callbacks (an SVG drawing as a PNG)."""
        self._send_picture(self._variations_handlers, item)

    def _send_picture(self, handlers: CallbackDispatcher, item: Any) -> None:
        try:
            picture = as_raster(item)
        except (OSError, ImageInputError) as exc:
            self._show_error("Could not open the image", exc)
            return
        handlers(picture)

    # -- what is shown -----------------------------------------------------------------------

    @property
    def tiles(self) -> list[HistoryTile]:
        return list(self._tiles.values())

    def tile(self, item_id: str) -> HistoryTile | None:
        return self._tiles.get(item_id)

    @property
    def page_count(self) -> int:
        return max(1, math.ceil(self.total / self.page_size))

    def _filters(self) -> dict[str, Any]:
        return {"text": self.search.value.strip() or None, "model": self.model_filter.value or None}

    def _filters_changed(self, _change: Any) -> None:
        if not self._quiet:
            self.show_page(0)

    def refresh(self) -> None:
        """Reload the model list and the current page from the gallery."""
        with self._lock:
            try:
                self._update_models()
            except Exception as exc:
                self._show_error("Could not read the gallery", exc)
                return
            self.show_page(self.page)

    def show_page(self, page: int) -> None:
        """Show page ``page`` (from 0; clamped to the pages there are)."""
        with self._lock:
            try:
                filters = self._filters()
                self.total = self.gallery.count(**filters)
                spent = _total_cost(self.gallery, filters)
                self.page = min(max(page, 0), self.page_count - 1)
                items = self.gallery.items(offset=self.page * self.page_size, limit=self.page_size, **filters)
            except Exception as exc:
                self._show_error("Could not read the gallery", exc)
                return
            self._show_items(items)
            self.page_label.value = (
                f"page {self.page + 1} of {self.page_count} · {self.total} image{'s' if self.total != 1 else ''}"
                + (f" · ≈ {format_usd(spent)} (estimate)" if spent else "")
            )
            self.prev_button.disabled = self.page == 0
            self.next_button.disabled = self.page >= self.page_count - 1
            self.status.value = ""

    def _show_items(self, items: list[Any]) -> None:
        """Tiles for ``items``; tiles already shown are kept (their thumbnails are not read again)."""
        old = self._tiles
        self._tiles = {item.id: old.get(item.id) or HistoryTile(self, item) for item in items}
        filtered = any(self._filters().values())
        self.view.empty_text = "No image matches the search." if filtered else "No saved images yet."
        self._send_page()

    def _send_page(self) -> None:
        self.view.show_tiles([tile.as_json() for tile in self._tiles.values()])

    def _picture_of(self, item_id: str) -> tuple[int, bytes, str] | None:
        tile = self._tiles.get(item_id)
        if tile is None or tile.picture is None:
            return None
        return 1, *tile.picture

    def _update_models(self) -> None:
        options = [("All models", ALL_MODELS), *((model, model) for model in self.gallery.models())]
        if list(self.model_filter.options) == options:
            return
        current = self.model_filter.value
        self._quiet = True
        try:
            self.model_filter.options = options
            self.model_filter.value = current if current in dict(options).values() else ALL_MODELS
        finally:
            self._quiet = False

    def _show_error(self, what: str, exc: BaseException) -> None:
        log.warning("%s: %s", what, exc)
        self.status.value = (
            f'<span class="ipyimagegen-error">{html.escape(what)}: {html.escape(describe_error(exc))}</span>'
        )

    # -- what the page asks for ----------------------------------------------------------------

    def _on_event(self, message: dict[str, Any]) -> None:
        event = message.get("event")
        if event == "viewer":
            if message.get("do") == "step":
                self.step_viewer(1 if (message.get("by") or 0) > 0 else -1)
            else:
                self.close_viewer()
            return
        tile = self._tiles.get(str(message.get("id")))
        if tile is None:
            return
        if event == "select":
            self.select(tile.item, bool(message.get("value")))
        elif event == "action":
            self.act(tile, str(message.get("name")))

    def act(self, tile: HistoryTile, name: str) -> None:
        """Do what a tile's button ``name`` does (as a click in the page does)."""
        if name != "delete" and tile.confirming:
            tile.confirming = False
            self._send_page()
        if name in ("reuse", "edit", "variations"):
            self.close_viewer()
        if name == "enlarge":
            self.enlarge(tile.item)
        elif name == "reuse":
            self.send_to_reuse(tile.item)
        elif name == "edit":
            self.send_to_edit(tile.item)
        elif name == "variations":
            self.send_to_variations(tile.item)
        elif name == "lineage":
            self.show_lineage(tile.item)
        elif name == "delete":
            if not tile.confirming:  # the first click asks; the second deletes
                tile.confirming = True
                self._send_page()
            else:
                self.delete(tile.item)

    # -- selection and export ------------------------------------------------------------------

    def select(self, item: Any, value: bool = True) -> None:
        """Tick (or untick) an image for export."""
        with self._lock:
            if value and item.id not in self.selected_ids:
                self.selected_ids.append(item.id)
            elif not value and item.id in self.selected_ids:
                self.selected_ids.remove(item.id)
            self._show_selection()
            self._send_page()

    def select_page(self) -> None:
        with self._lock:
            for tile in self._tiles.values():
                if tile.id not in self.selected_ids:
                    self.selected_ids.append(tile.id)
            self._show_selection()
            self._send_page()

    def select_none(self) -> None:
        with self._lock:
            self.selected_ids = []
            self._show_selection()
            self._send_page()

    def _show_selection(self) -> None:
        count = len(self.selected_ids)
        self.export_button.description = f"Export ({count})" if count else "Export"
        self.export_button.disabled = count == 0
        self.unselect_button.disabled = count == 0

    def export(self, ids: list[str] | None = None) -> Path | None:
        """Download the ticked images (or ``ids``) as a zip with their inputs, manifest.json and manifest.csv."""
        chosen = list(ids if ids is not None else self.selected_ids)
        if not chosen:
            self.status.value = '<span class="ipyimagegen-warning">Tick the images to export first.</span>'
            return None
        name = f"ipyimagegen-export-{datetime.now():%Y%m%d-%H%M%S}.zip"
        try:
            with tempfile.TemporaryDirectory(prefix="ipyimagegen-export-") as folder:
                path = self.gallery.export(chosen, Path(folder) / name)
                data = path.read_bytes()
        except (OSError, KeyError) as exc:
            self._show_error("Could not export the images", exc)
            return None
        self.view.send_file(data, "application/zip", name)
        count = len(chosen)
        self.status.value = (
            f'<span class="ipyimagegen-ok">Exported {count} image{"s" if count != 1 else ""} as '
            f"<code>{html.escape(name)}</code> ({len(data) / 1e6:.1f} MB): it is in your downloads.</span>"
        )
        return Path(name)

    # -- the viewer ------------------------------------------------------------------------------

    def enlarge(self, item: Any) -> None:
        """The full image over the page, with its details, Download and the actions."""
        try:
            data = item.data
        except OSError as exc:
            self._show_error("Could not open the image", exc)
            return
        self.viewed = self._tiles.get(item.id)
        order = list(self._tiles)
        place = order.index(item.id) if item.id in order else -1
        self.view.open_viewer(
            {
                "id": item.id,
                "title": self._tiles[item.id].label_text() if item.id in self._tiles else item.id,
                "prompt": item.prompt or "",
                "revised_prompt": item.revised_prompt
                if item.revised_prompt not in (None, item.prompt)
                else "",
                "facts": _facts(self.gallery, item, data),
                "actions": ["reuse", "edit", "variations", "lineage"],
                "mime": item.mime_type,
                "size": pixel_size(data),
                "filename": download_name(item.prompt or "", item.mime_type, item.id),
                "has_previous": place > 0,
                "has_next": 0 <= place < len(order) - 1,
            },
            data,
        )

    def step_viewer(self, by: int) -> None:
        if self.viewed is None:
            return
        order = list(self._tiles)
        if self.viewed.id not in order:
            return
        place = order.index(self.viewed.id) + by
        if 0 <= place < len(order):
            self.enlarge(self._tiles[order[place]].item)

    def close_viewer(self) -> None:
        self.viewed = None
        if self.view.viewer.get("open"):
            self.view.close_viewer()

    # -- delete and lineage --------------------------------------------------------------------

    def delete(self, item: Any) -> None:
        """Delete an image from the gallery and from view."""
        with self._lock:
            try:
                self.gallery.delete(item.id)
            except Exception as exc:
                self._show_error("Could not delete the image", exc)
                return
            if item.id in self.selected_ids:
                self.selected_ids.remove(item.id)
                self._show_selection()
            if self.viewed is not None and self.viewed.id == item.id:
                self.close_viewer()
            if item.id in self._lineage_ids:
                self.hide_lineage()
            self.refresh()
        self._delete_handlers(item.id)

    def show_lineage(self, item: Any) -> None:
        """What ``item`` was made from (its ancestors, oldest first, and the uploads and mask of each
        edit) and what was made from it, as small thumbnails."""
        with self._lock:
            try:
                chain = self.gallery.lineage(item.id)
                children = children_of(self.gallery, item.id)
            except Exception as exc:
                self._show_error("Could not read the lineage", exc)
                return
            parts: list[widgets.Widget] = []
            for index, step in enumerate(chain):
                if index:
                    parts.append(self._arrow())
                parts.extend(self._inputs_of(step))
                parts.append(self._step(step, current=step.id == item.id))
            if children:
                parts.append(self._arrow())
                parts.extend(self._step(child) for child in children)
            old = self._lineage_parts
            self._lineage_parts = parts
            self._lineage_ids = {step.id for step in chain} | {child.id for child in children}
            self.lineage_steps.children = tuple(parts)
            for part in old:
                close_tree(part)
            count = len(chain) - 1
            made_from = (
                "an original"
                if count == 0
                else f"{count} step{'s' if count != 1 else ''} from its first image"
            )
            made = (
                f"; {len(children)} image{'s' if len(children) != 1 else ''} made from it" if children else ""
            )
            name = html.escape(_short(_prompt_text(item), 60))
            self.lineage_title.value = f"<b>Lineage</b> of “{name}”: {made_from}{made}"
            self.lineage.layout.display = None

    def _arrow(self) -> widgets.HTML:
        arrow = widgets.HTML("→")
        arrow.add_class("ipyimagegen-history-lineage-arrow")
        return arrow

    def _step(self, item: Any, current: bool = False) -> widgets.VBox:
        what = _MADE_BY.get(item.endpoint, item.endpoint)
        prompt = _prompt_text(item)
        caption = widgets.HTML(
            f'<div class="ipyimagegen-history-lineage-step" title="{html.escape(prompt, quote=True)}">'
            f"{html.escape(what)}: {html.escape(_short(prompt, 40))}</div>"
        )
        try:
            picture: widgets.Widget = _small_picture(
                *self.gallery.thumbnail(item.id, max_side=THUMBNAIL_SIDE)
            )
        except Exception as exc:
            log.warning("no thumbnail for %s: %s", item.id, exc)
            picture = widgets.HTML('<div class="ipyimagegen-placeholder">no preview</div>')
        step = widgets.VBox([picture, caption])
        step.add_class("ipyimagegen-history-lineage-item")
        if current:
            picture.add_class("ipyimagegen-history-lineage-current")
        return step

    def _inputs_of(self, item: Any) -> list[widgets.Widget]:
        """Small pictures of an edit's uploaded images and mask (those the gallery kept; an input that
        is the parent image itself is the step before)."""
        from ..imaging import thumbnail

        found: list[widgets.Widget] = []
        # An image made from a gallery image was sent that image first: the lineage shows it already.
        uploads = item.input_ids[1:] if item.parent_id else item.input_ids
        named = [(input_id, "upload") for input_id in uploads]
        if item.mask_id:
            named.append((item.mask_id, "mask"))
        for input_id, what in named:
            try:
                small = thumbnail(self.gallery.input_data(input_id), max_side=LINEAGE_SIDE_PX * 2)
            except Exception as exc:  # an input the gallery no longer has
                log.warning("no input %s for %s: %s", input_id, item.id, exc)
                continue
            caption = widgets.HTML(f'<div class="ipyimagegen-history-lineage-step">{what}</div>')
            step = widgets.VBox([_small_picture(*small), caption])
            step.add_class("ipyimagegen-history-lineage-input")
            found.append(step)
        return found

    def hide_lineage(self) -> None:
        """Close the lineage panel."""
        with self._lock:
            old = self._lineage_parts
            self._lineage_parts = []
            self._lineage_ids = set()
            self.lineage_steps.children = ()
            for part in old:
                close_tree(part)
            self.lineage.layout.display = "none"


def _tile_picture(gallery: GalleryReader, item: Any) -> tuple[bytes, str]:
    """A tile's thumbnail from the gallery's cache: a GIF's plays, as in the results grid."""
    if item.mime_type == GIF:
        return gallery.thumbnail(item.id, max_side=THUMBNAIL_SIDE, animated=True)
    return gallery.thumbnail(item.id, max_side=THUMBNAIL_SIDE)


@dataclass(frozen=True)
class RasterItem(GalleryItem):
    """A saved SVG drawing as Edit and Variations take it: the item, with a PNG of the drawing as its
    ``data`` (its ``path`` is still the drawing's file)."""

    png: bytes = field(default=b"", repr=False, compare=False)

    @property
    def data(self) -> bytes:
        return self.png


def as_raster(item: Any) -> Any:
    """``item``, or for a saved SVG drawing a :class:`RasterItem` of it (a PNG at its own size)."""
    if item.mime_type != SVG or not isinstance(item, GalleryItem):
        return item
    values = {f.name: getattr(item, f.name) for f in fields(item)}
    return RasterItem(**{**values, "mime_type": "image/png"}, png=svg_as_png(item.data))


def _facts(gallery: GalleryReader, item: Any, data: bytes) -> list[list[str]]:
    """The viewer's table for a saved image (``data``, its file): its size (and animation), how it
    was made, its cost and its lineage, in the words of the results grid's viewer."""
    facts = picture_facts(data, item.mime_type)
    if not facts and item.size:
        facts.append(["Size", item.size.replace("x", "×")])
    facts.append(
        ["Made by", f"{_MADE_BY.get(item.endpoint, item.endpoint)} on {item.model or 'an unknown model'}"]
    )
    said = {"n", "size", "prompt", "model"}  # the model: in "Made by"
    if item.mime_type == GIF:
        said |= {"frame_count", "frame_duration_ms"}  # the Animation row says them, from the file
    for name, value in sorted((item.options or {}).items()):
        if value not in (None, "", []) and name not in said:
            facts.append([name.replace("_", " ").capitalize(), str(value)])
    details = item.metadata.get("details") if isinstance(item.metadata, dict) else None
    cost = cost_text(details.get("cost") if isinstance(details, dict) else None)
    if cost:
        facts.append(["Cost", cost])
    return facts + lineage_facts(gallery, item)


def _total_cost(gallery: GalleryReader, filters: dict[str, Any]) -> float:
    """The estimated dollars of the images listed."""
    return float(gallery.total_cost(**filters))
