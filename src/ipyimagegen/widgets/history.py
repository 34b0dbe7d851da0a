"""The History browser: saved images, page by page, with a prompt search, a model filter and actions.

Tiles show the gallery's cached thumbnails only; full images are never loaded. Each tile can
reuse its settings, start an edit or variations (the studio connects these callbacks to its
tabs), show its lineage, or delete the image (a second click confirms).
"""

from __future__ import annotations

import html
import logging
import math
import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
from ipywidgets import CallbackDispatcher
from ipywidgets.widgets.widget_bool import CheckboxStyle
from ipywidgets.widgets.widget_string import HTMLStyle

from ..api.errors import describe_error
from ..pricing import format_usd
from .lifecycle import close_all, close_contents, close_tree
from .style import CSS, THUMBNAIL_SIDE, TILE_WIDTH_PX

log = logging.getLogger(__name__)

PAGE_SIZE = 12
IMAGE_SIDE_PX = TILE_WIDTH_PX - 10
LINEAGE_SIDE_PX = 96
PROMPT_PREVIEW_CHARS = 120
ALL_MODELS = ""
_MADE_BY = {"generations": "generated", "edits": "edit", "variations": "variation"}

HISTORY_CSS = """
.ipyimagegen-history { max-width: 100%; }
.ipyimagegen-history-toolbar { gap: 8px; align-items: center; }
.ipyimagegen-history-page { font-size: 13px; white-space: nowrap; font-variant-numeric: tabular-nums; }
.ipyimagegen-history-lineage { border: 1px solid var(--jp-border-color2, #ddd); border-radius: 4px; padding: 6px; }
.ipyimagegen-history-lineage-arrow { font-size: 20px; color: var(--jp-ui-font-color2, #666); align-self: center; }
.ipyimagegen-history-lineage-step { font-size: 11px; width: 96px; overflow: hidden; text-overflow: ellipsis;
  white-space: nowrap; }
.ipyimagegen-history-empty { color: var(--jp-ui-font-color2, #666); padding: 12px 4px; }
"""


def _short(text: str, limit: int = PROMPT_PREVIEW_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _prompt_text(item: Any) -> str:
    """The prompt, or what made the image when it had none (a variation)."""
    return item.prompt or f"({_MADE_BY.get(item.endpoint, item.endpoint)}, no prompt)"


def _format_of(mime: str) -> str:
    return mime.split("/", 1)[-1]


def _toolbar_button(description: str, icon: str, tooltip: str, css: str) -> widgets.Button:
    button = widgets.Button(
        description=description,
        icon=icon,
        tooltip=tooltip,
        layout=widgets.Layout(width="auto", flex="1 1 auto", margin="1px"),
    )
    button.add_class(css)
    return button


def _picture(gallery: Any, item: Any, layout: widgets.Layout) -> widgets.Widget:
    """The item's cached thumbnail, or a placeholder saying why there is none."""
    try:
        data, mime = gallery.thumbnail(item.id, max_side=THUMBNAIL_SIDE)
    except Exception as exc:
        log.warning("no thumbnail for %s: %s", item.id, exc)
        reason = html.escape(describe_error(exc), quote=True)
        placeholder = widgets.HTML(
            f'<div class="ipyimagegen-placeholder" title="{reason}">no preview</div>', layout=layout
        )
        return placeholder
    picture = widgets.Image(value=data, format=_format_of(mime), layout=layout)
    picture.add_class("ipyimagegen-tile-image")
    return picture


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


class HistoryTile(widgets.VBox):
    """One saved image: thumbnail, prompt (all of it on hover), a label and the actions."""

    def __init__(self, browser: HistoryBrowser, item: Any) -> None:
        self.browser = browser
        self.item = item
        parts = browser.parts
        self.picture = _picture(browser.gallery, item, parts.picture)
        prompt = _prompt_text(item)
        self.prompt_html = parts.html(
            f'<div class="ipyimagegen-tile-prompt" title="{html.escape(prompt, quote=True)}">'
            f"{html.escape(_short(prompt))}</div>"
        )
        label = " · ".join(
            part for part in (item.model, item.size, f"{item.created.astimezone():%Y-%m-%d %H:%M}") if part
        )
        self.label = parts.html(
            f'<span title="{html.escape(item.id, quote=True)}">{html.escape(label)}</span>'
        )
        self.label.add_class("ipyimagegen-tile-label")
        self.reuse_button = parts.action(
            "Reuse settings",
            "reply",
            "Put this image's prompt and settings back in the form",
            "ipyimagegen-reuse",
        )
        self.lineage_button = parts.action(
            "Lineage", "sitemap", "Show the images this one was made from", "ipyimagegen-lineage"
        )
        self.edit_button = parts.action("Edit", "pencil", "Edit this image", "ipyimagegen-edit")
        self.variations_button = parts.action(
            "Variations", "clone", "Make variations of this image", "ipyimagegen-variations"
        )
        self.delete_button = parts.action(
            "", "trash", "Delete this image from the gallery", "ipyimagegen-delete"
        )
        for button in (
            self.reuse_button,
            self.lineage_button,
            self.edit_button,
            self.variations_button,
            self.delete_button,
        ):
            button.disabled = False
        self.confirming = False
        self.reuse_button.on_click(lambda _b: browser.send_to_reuse(self.item))
        self.edit_button.on_click(lambda _b: browser.send_to_edit(self.item))
        self.variations_button.on_click(lambda _b: browser.send_to_variations(self.item))
        self.lineage_button.on_click(lambda _b: browser.show_lineage(self.item))
        self.delete_button.on_click(lambda _b: self._delete_clicked())
        actions = widgets.VBox(
            [
                widgets.HBox([self.reuse_button, self.lineage_button], layout=parts.row),
                widgets.HBox(
                    [self.edit_button, self.variations_button, self.delete_button], layout=parts.row
                ),
            ],
            layout=parts.full_width,
        )
        super().__init__([self.picture, self.prompt_html, self.label, actions], layout=parts.tile)
        self.add_class("ipyimagegen-tile")
        self.add_class("ipyimagegen-history-tile")

    def _delete_clicked(self) -> None:
        """The first click asks for confirmation; the second deletes."""
        if not self.confirming:
            self.confirming = True
            self.delete_button.description = "Delete?"
            self.delete_button.button_style = "danger"
            self.delete_button.tooltip = "Click again to delete the image file for good"
            return
        self.browser.delete(self.item)

    def dispose(self) -> None:
        close_tree(self, keep=self.browser.parts.all)


class HistoryBrowser(widgets.VBox):
    """Every image in a gallery, newest first, ``page_size`` at a time.

    ``on_reuse``, ``on_edit`` and ``on_variations`` register ``callback(item)`` (a
    :class:`~ipyimagegen.gallery.GalleryItem`) for the tile actions. Call :meth:`refresh` after
    saving new images.
    """

    def close(self) -> None:
        """Close every tile and control the browser made, and the parts its tiles share."""
        close_contents(self)
        close_all([self.empty_note, *self.parts.all])  # the note is shown only when nothing is
        super().close()

    def __init__(self, gallery: Any, *, page_size: int = PAGE_SIZE) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {page_size}")
        self.gallery = gallery
        self.page_size = page_size
        self.page = 0
        self.total = 0
        self._lock = threading.RLock()
        self._quiet = False
        self._tiles: dict[str, HistoryTile] = {}
        self.parts = TileParts()
        self._lineage_parts: list[widgets.Widget] = []
        self._lineage_ids: set[str] = set()
        self._reuse_handlers = CallbackDispatcher()
        self._edit_handlers = CallbackDispatcher()
        self._variations_handlers = CallbackDispatcher()

        self.search = widgets.Text(
            placeholder="Search prompts", continuous_update=False, layout=widgets.Layout(width="280px")
        )
        self.search.add_class("ipyimagegen-history-search")
        self.model_filter = widgets.Dropdown(
            options=[("All models", ALL_MODELS)], value=ALL_MODELS, layout=widgets.Layout(width="200px")
        )
        self.model_filter.add_class("ipyimagegen-history-model")
        self.refresh_button = _toolbar_button(
            "", "refresh", "Reload the gallery", "ipyimagegen-history-refresh"
        )
        self.refresh_button.layout.flex = "0 0 auto"
        self.prev_button = _toolbar_button("Prev", "chevron-left", "Newer images", "ipyimagegen-history-prev")
        self.next_button = _toolbar_button(
            "Next", "chevron-right", "Older images", "ipyimagegen-history-next"
        )
        for button in (self.prev_button, self.next_button):
            button.layout.flex = "0 0 auto"
        self.page_label = widgets.HTML()
        self.page_label.add_class("ipyimagegen-history-page")
        self.status = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.status.add_class("ipyimagegen-status")
        self.empty_note = widgets.HTML()
        self.empty_note.add_class("ipyimagegen-history-empty")
        self.lineage_title = widgets.HTML(layout=widgets.Layout(flex="1 1 auto"))
        self.lineage_close = _toolbar_button(
            "Close", "times", "Close the lineage", "ipyimagegen-history-lineage-close"
        )
        self.lineage_close.layout.flex = "0 0 auto"
        self.lineage_steps = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap", width="100%"))
        self.lineage = widgets.VBox(
            [widgets.HBox([self.lineage_title, self.lineage_close]), self.lineage_steps],
            layout=widgets.Layout(display="none", width="100%"),
        )
        self.lineage.add_class("ipyimagegen-history-lineage")
        self.tiles_box = widgets.Box(layout=widgets.Layout(flex_flow="row wrap", width="100%"))
        self.tiles_box.add_class("ipyimagegen-grid")

        self.search.observe(self._filters_changed, names="value")
        self.model_filter.observe(self._filters_changed, names="value")
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.prev_button.on_click(lambda _b: self.show_page(self.page - 1))
        self.next_button.on_click(lambda _b: self.show_page(self.page + 1))
        self.lineage_close.on_click(lambda _b: self.hide_lineage())

        toolbar = widgets.HBox([self.search, self.model_filter, self.refresh_button])
        toolbar.add_class("ipyimagegen-history-toolbar")
        pager = widgets.HBox([self.prev_button, self.page_label, self.next_button])
        pager.add_class("ipyimagegen-history-toolbar")
        style = widgets.HTML(f"<style>{CSS}{HISTORY_CSS}</style>", layout=widgets.Layout(display="none"))
        super().__init__(
            [style, toolbar, self.status, self.lineage, self.tiles_box, pager],
            layout=widgets.Layout(width="100%"),
        )
        self.add_class("ipyimagegen-history")
        self.refresh()

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

    def send_to_reuse(self, item: Any) -> None:
        """A tile's "Reuse settings": its item to the ``on_reuse`` callbacks."""
        self._reuse_handlers(item)

    def send_to_edit(self, item: Any) -> None:
        """A tile's "Edit": its item to the ``on_edit`` callbacks."""
        self._edit_handlers(item)

    def send_to_variations(self, item: Any) -> None:
        """A tile's "Variations": its item to the ``on_variations`` callbacks."""
        self._variations_handlers(item)

    # -- what is shown -----------------------------------------------------------------------

    @property
    def tiles(self) -> list[HistoryTile]:
        return [child for child in self.tiles_box.children if isinstance(child, HistoryTile)]

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
        """Tiles for ``items``; tiles already shown are kept (their thumbnails are not sent again)."""
        old = self._tiles
        self._tiles = {item.id: old.get(item.id) or HistoryTile(self, item) for item in items}
        if items:
            self.tiles_box.children = tuple(self._tiles.values())
        else:
            filtered = any(self._filters().values())
            self.empty_note.value = "No image matches the search." if filtered else "No saved images yet."
            self.tiles_box.children = (self.empty_note,)
        for item_id, tile in old.items():
            if item_id not in self._tiles:
                tile.dispose()

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

    # -- actions -----------------------------------------------------------------------------

    def delete(self, item: Any) -> None:
        """Delete an image from the gallery and from view."""
        with self._lock:
            try:
                self.gallery.delete(item.id)
            except Exception as exc:
                self._show_error("Could not delete the image", exc)
                return
            if item.id in self._lineage_ids:
                self.hide_lineage()
            self.refresh()

    def show_lineage(self, item: Any) -> None:
        """Show the chain of images ``item`` was made from, as small thumbnails, oldest first."""
        with self._lock:
            try:
                chain = self.gallery.lineage(item.id)
            except Exception as exc:
                self._show_error("Could not read the lineage", exc)
                return
            parts: list[widgets.Widget] = []
            for index, step in enumerate(chain):
                if index:
                    arrow = widgets.HTML("→")
                    arrow.add_class("ipyimagegen-history-lineage-arrow")
                    parts.append(arrow)
                parts.append(self._lineage_step(step))
            old = self._lineage_parts
            self._lineage_parts = parts
            self._lineage_ids = {step.id for step in chain}
            self.lineage_steps.children = tuple(parts)
            for part in old:
                close_tree(part)
            count = len(chain) - 1
            made_from = (
                "an original"
                if count == 0
                else f"{count} step{'s' if count != 1 else ''} from its first image"
            )
            name = html.escape(_short(_prompt_text(item), 60))
            self.lineage_title.value = f"<b>Lineage</b> of “{name}”: {made_from}"
            self.lineage.layout.display = None

    def _lineage_step(self, item: Any) -> widgets.VBox:
        what = _MADE_BY.get(item.endpoint, item.endpoint)
        prompt = _prompt_text(item)
        caption = widgets.HTML(
            f'<div class="ipyimagegen-history-lineage-step" title="{html.escape(prompt, quote=True)}">'
            f"{html.escape(what)}: {html.escape(_short(prompt, 40))}</div>"
        )
        side = f"{LINEAGE_SIDE_PX}px"
        step = widgets.VBox([_picture(self.gallery, item, widgets.Layout(width=side, height=side)), caption])
        step.add_class("ipyimagegen-history-lineage-item")
        return step

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


def _total_cost(gallery: Any, filters: dict[str, Any]) -> float:
    """The estimated dollars of the images listed (0 for a gallery that keeps no costs)."""
    total_cost = getattr(gallery, "total_cost", None)
    return float(total_cost(**filters)) if callable(total_cost) else 0.0
