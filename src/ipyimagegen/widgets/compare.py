"""Compare: the chosen results side by side across the panel's width, each captioned; Save PDF and PNG.

The page lays the pictures out in as many columns of at least :data:`MIN_COLUMN_PX` as the panel's
width holds (never more columns than pictures, so two pictures share the whole width), each under
its caption: its prompt (a variation: what it was made from), model and size. The pictures go to the
page as display copies, never the full images. "Save PDF" and "Save PNG" draw the same captions in a
matplotlib contact sheet (:func:`ipyimagegen.plots.contact_sheet`), write it to ``save_dir`` and hand
it to the browser's download (``on_file``), named as every download is
(:func:`~.download.download_name`).
"""

from __future__ import annotations

import html
import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import ipywidgets as widgets
from ipywidgets import CallbackDispatcher
from matplotlib.figure import Figure

from ..api.types import GeneratedImage, VariationRequest
from ..gallery import GalleryItem, GalleryReader
from .download import download_name, saved_notice
from .exporter import unique_path
from .lifecycle import close_tree
from .picture_facts import pixel_size

log = logging.getLogger(__name__)

MIN_COLUMN_PX = 320
"""The narrowest a picture is shown: the sheet has as many columns of at least this as fit."""
DISPLAY_SIDE_PX = 768
"""The display copies' longest side (about a column's width on a wide page, at twice its pixels)."""
SHEET_COLUMNS = 4
"""The most columns of the saved sheet."""
SHEET_FORMATS = {"pdf": "application/pdf", "png": "image/png"}
SHEET_COLUMNS_CSS = f"repeat(auto-fit, minmax(min({MIN_COLUMN_PX}px, 100%), 1fr))"
"""The page's columns: as many of at least MIN_COLUMN_PX as fit, sharing the width among the pictures."""

COMPARE_CSS = """
.ipyimagegen-compare { gap: 6px; }
.ipyimagegen-compare-header { align-items: center; gap: 6px; flex-wrap: wrap; }
.ipyimagegen-compare-item { min-width: 0; gap: 4px; }
.ipyimagegen-compare-item img.ipyimagegen-compare-image {
  width: 100%; height: auto; max-height: 75vh; object-fit: contain;
  background: var(--jp-layout-color2, #eee);
}
.ipyimagegen-compare-caption .widget-html-content { line-height: 1.35; white-space: normal; }
.ipyimagegen-compare-title {
  font-size: 13px; color: var(--jp-ui-font-color1, #333); overflow: hidden;
  display: -webkit-box; -webkit-line-clamp: 3; -webkit-box-orient: vertical;
}
.ipyimagegen-compare-details { font-size: 12px; color: var(--jp-ui-font-color2, #666); }
.ipyimagegen-compare .ipyimagegen-notice .ipyimagegen-ok { color: var(--jp-success-color1, #2e7d32); }
"""

_panels = itertools.count(1)  # names each panel's sheets apart


@dataclass(frozen=True)
class Caption:
    """What a picture on the sheet is captioned with."""

    title: str
    """Its prompt, or for a variation ``variation of <source>``."""
    details: str
    """Its model and size: ``gpt-image-1.5 · 1024×1024``."""

    def as_html(self) -> str:
        title = html.escape(self.title, quote=True)
        return (
            f'<div class="ipyimagegen-compare-title" title="{title}">{title}</div>'
            f'<div class="ipyimagegen-compare-details">{html.escape(self.details)}</div>'
        )


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _parent(image: GeneratedImage, gallery: GalleryReader | None) -> GalleryItem | None:
    """The gallery item ``image`` was made from, when the gallery knows it."""
    item_id = image.metadata.get("gallery_id")
    if gallery is None or not isinstance(item_id, str):
        return None
    try:
        parent_id = gallery.get(item_id).parent_id
        return gallery.get(parent_id) if parent_id else None
    except Exception as exc:  # deleted since, or the gallery cannot be read: the caption says less
        log.warning("could not read what %s was made from: %s", item_id, exc)
        return None


def source_of(image: GeneratedImage, gallery: GalleryReader | None = None) -> str:
    """What a variation was made from: its source's prompt (or download name), else the file sent."""
    parent = _parent(image, gallery)
    if parent is not None:
        if parent.prompt:
            return f"“{_short(parent.prompt)}”"
        return download_name("", parent.mime_type, parent.id)
    sent = getattr(image.request, "image", None)
    return sent.filename if sent is not None else "an uploaded picture"


def caption_of(image: GeneratedImage, prompt: str = "", gallery: GalleryReader | None = None) -> Caption:
    """``image``'s caption: ``prompt`` (default: its request's), or what a variation was made from,
    with its model and size in pixels."""
    request = image.request
    title = prompt or getattr(request, "prompt", None) or ""
    if not title:
        title = f"variation of {source_of(image, gallery)}" if isinstance(request, VariationRequest) else ""
    model = getattr(request, "model", None) or image.metadata.get("model") or ""
    size = pixel_size(image.data)
    shown_size = f"{size[0]}×{size[1]}" if size else (getattr(request, "size", None) or "")
    return Caption(title or "(no prompt)", " · ".join(part for part in (str(model), shown_size) if part))


def _picture_cell(picture: tuple[bytes, str], caption: Caption) -> widgets.VBox:
    data, mime = picture
    image = widgets.Image(
        value=data, format=mime.split("/", 1)[-1], layout=widgets.Layout(width="100%", height="auto")
    )
    image.add_class("ipyimagegen-compare-image")
    text = widgets.HTML(caption.as_html(), layout=widgets.Layout(width="100%"))
    text.add_class("ipyimagegen-compare-caption")
    cell = widgets.VBox([image, text])
    cell.add_class("ipyimagegen-compare-item")
    return cell


class ComparePanel(widgets.VBox):
    """``images`` side by side, captioned, with "Save PDF", "Save PNG" and "Close".

    ``prompts``: each image's caption in place of its request's prompt (an empty one keeps it).
    ``gallery``: where a variation's source is looked up for its caption. ``save_dir``: where the
    sheets are written (default: the current folder).
    """

    def __init__(
        self,
        images: Sequence[GeneratedImage],
        prompts: Sequence[str] | None = None,
        *,
        save_dir: str | Path | None = None,
        gallery: GalleryReader | None = None,
    ) -> None:
        from ..imaging import thumbnail

        if len(images) < 2:
            raise ValueError(f"Compare needs at least 2 images, got {len(images)}: select more tiles.")
        if prompts is not None and len(prompts) != len(images):
            raise ValueError(f"Got {len(prompts)} prompts for {len(images)} images; give one per image.")
        self.save_dir = Path(save_dir) if save_dir is not None else None
        self.captions = [
            caption_of(image, prompts[index] if prompts is not None else "", gallery)
            for index, image in enumerate(images)
        ]
        self.pictures = [thumbnail(image.data, DISPLAY_SIDE_PX) for image in images]
        self.saved_path: Path | None = None
        self.closed = False
        self._figure: Figure | None = None
        self._made = datetime.now()
        self._key = f"compare-{next(_panels)}"
        self.title = widgets.HTML(
            f"<b>Compare</b> · {len(images)} images", layout=widgets.Layout(flex="1 1 auto")
        )
        self.save_button = self._button("Save PDF", "file-pdf-o", "the sheet as a PDF file", "save")
        self.save_png_button = self._button(
            "Save PNG", "file-image-o", "the sheet as a PNG picture", "save-png"
        )
        self.close_button = self._button("Close", "times", "", "close")
        self.close_button.tooltip = "Close the comparison"
        self.notice = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.notice.add_class("ipyimagegen-notice")
        self.sheet = widgets.GridBox(
            [
                _picture_cell(picture, caption)
                for picture, caption in zip(self.pictures, self.captions, strict=True)
            ],
            layout=widgets.Layout(width="100%", grid_template_columns=SHEET_COLUMNS_CSS, grid_gap="12px"),
        )
        self.sheet.add_class("ipyimagegen-compare-sheet")
        self._close_handlers = CallbackDispatcher()
        self._file_handlers = CallbackDispatcher()
        self.save_button.on_click(lambda _b: self.save_pdf())
        self.save_png_button.on_click(lambda _b: self.save_png())
        self.close_button.on_click(lambda _b: self.dispose())
        style = widgets.HTML(f"<style>{COMPARE_CSS}</style>", layout=widgets.Layout(display="none"))
        header = widgets.HBox([self.title, self.save_button, self.save_png_button, self.close_button])
        header.add_class("ipyimagegen-compare-header")
        super().__init__([style, header, self.notice, self.sheet], layout=widgets.Layout(width="100%"))
        self.add_class("ipyimagegen-compare")

    @staticmethod
    def _button(label: str, icon: str, what: str, name: str) -> widgets.Button:
        button = widgets.Button(
            description=label,
            icon=icon,
            tooltip=f"Save {what} and download it" if what else "",
            layout=widgets.Layout(width="auto"),
        )
        button.add_class(f"ipyimagegen-compare-{name}")
        return button

    @property
    def figure(self) -> Figure:
        """The sheet as a matplotlib figure (made on first use): what Save PDF and Save PNG write."""
        if self._figure is None:
            from ..plots import contact_sheet

            self._figure = contact_sheet(
                [data for data, _mime in self.pictures],
                titles=[caption.title for caption in self.captions],
                subtitles=[caption.details for caption in self.captions],
                columns=min(len(self.pictures), SHEET_COLUMNS),
            )
        return self._figure

    def save_pdf(self, folder: str | Path | None = None) -> Path | None:
        """Write the sheet as PDF to ``folder`` (default: ``save_dir``) and download it."""
        return self.save("pdf", folder)

    def save_png(self, folder: str | Path | None = None) -> Path | None:
        """Write the sheet as PNG to ``folder`` (default: ``save_dir``) and download it."""
        return self.save("png", folder)

    def save(self, fmt: str = "pdf", folder: str | Path | None = None) -> Path | None:
        """Write the sheet as ``fmt`` ("pdf" or "png") to ``folder`` (default: ``save_dir``), hand it to
        the ``on_file`` callbacks (the browser's download) and say so in the notice."""
        from ..plots import save_figure

        if fmt not in SHEET_FORMATS:
            raise ValueError(f"Save the sheet as one of {', '.join(SHEET_FORMATS)}, not {fmt!r}.")
        mime = SHEET_FORMATS[fmt]
        target = Path(folder) if folder is not None else (self.save_dir or Path.cwd())
        name = download_name(f"compare {len(self.pictures)} images", mime, made=self._made, key=self._key)
        try:
            target.mkdir(parents=True, exist_ok=True)
            path = save_figure(self.figure, unique_path(target, name))
            data = path.read_bytes()
        except OSError as exc:
            log.warning("could not save the comparison to %s: %s", target, exc)
            self.notice.value = (
                f'<span class="ipyimagegen-error">Could not save the {fmt.upper()} to '
                f"{html.escape(str(target))}: {html.escape(str(exc))}. "
                f"Choose another folder with save_{fmt}(folder).</span>"
            )
            return None
        self.saved_path = path
        downloaded = bool(self._file_handlers.callbacks)
        self._file_handlers(data, mime, path.name)
        self.notice.value = f'<span class="ipyimagegen-ok">{saved_notice(path, downloaded)}</span>'
        return path

    def on_file(self, callback: Callable[[bytes, str, str], Any], remove: bool = False) -> None:
        """``callback(data, mime, name)`` with each file the panel saves (the grid hands it to the browser)."""
        self._file_handlers.register_callback(callback, remove=remove)

    def on_close(self, callback: Callable[[ComparePanel], Any], remove: bool = False) -> None:
        """``callback(panel)`` when the panel is closed."""
        self._close_handlers.register_callback(callback, remove=remove)

    def dispose(self) -> None:
        """Close the panel and its widgets (the figure is freed with it)."""
        if self.closed:
            return
        self.closed = True
        self._figure = None
        self._close_handlers(self)
        close_tree(self)
