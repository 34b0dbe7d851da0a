"""Compare: the chosen results side by side in a contact sheet, shown inline and saved as PDF.

The sheet is a matplotlib figure (:func:`ipyimagegen.plots.contact_sheet`) with each image's
prompt as its caption. It is shown as a PNG of modest size; "Save PDF" writes the full figure.
"""

from __future__ import annotations

import html
import io
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import ipywidgets as widgets
from ipywidgets import CallbackDispatcher
from matplotlib.figure import Figure

from .lifecycle import close_tree

log = logging.getLogger(__name__)

SHEET_WIDTH_PX = 560
"""How wide the sheet is shown; the saved PDF keeps its full size."""
PREVIEW_DPI = 100


def figure_png(figure: Figure, dpi: int = PREVIEW_DPI) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _unique_pdf(folder: Path) -> Path:
    stem = f"ipyimagegen-compare-{datetime.now():%Y%m%d-%H%M%S}"
    path, k = folder / f"{stem}.pdf", 1
    while path.exists():
        k += 1
        path = folder / f"{stem}-{k}.pdf"
    return path


class ComparePanel(widgets.VBox):
    """A contact sheet of ``images`` captioned with ``prompts``, with "Save PDF" and "Close".

    ``save_dir`` is where Save PDF writes (default: the current folder).
    """

    def __init__(
        self, images: Sequence[Any], prompts: Sequence[str], *, save_dir: str | Path | None = None
    ) -> None:
        from ..plots import contact_sheet

        if len(images) < 2:
            raise ValueError(f"Compare needs at least 2 images, got {len(images)}: select more tiles.")
        self.save_dir = Path(save_dir) if save_dir is not None else None
        self.figure = contact_sheet(list(images), titles=list(prompts), columns=min(len(images), 4))
        self.saved_path: Path | None = None
        self.closed = False
        self.picture = widgets.Image(
            value=figure_png(self.figure),
            format="png",
            layout=widgets.Layout(max_width=f"{SHEET_WIDTH_PX}px", width="100%", height="auto"),
        )
        self.picture.add_class("ipyimagegen-compare-image")
        self.title = widgets.HTML(
            f"<b>Compare</b> · {len(images)} images", layout=widgets.Layout(flex="1 1 auto")
        )
        self.save_button = widgets.Button(
            description="Save PDF", icon="file-pdf-o", tooltip="Save this sheet as a PDF file",
            layout=widgets.Layout(width="auto"),
        )  # fmt: skip
        self.save_button.add_class("ipyimagegen-compare-save")
        self.close_button = widgets.Button(
            description="Close", icon="times", tooltip="Close the comparison", layout={"width": "auto"}
        )
        self.close_button.add_class("ipyimagegen-compare-close")
        self.notice = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.notice.add_class("ipyimagegen-notice")
        self._close_handlers = CallbackDispatcher()
        self._file_handlers = CallbackDispatcher()
        self.save_button.on_click(lambda _b: self.save_pdf())
        self.close_button.on_click(lambda _b: self.dispose())
        super().__init__(
            [widgets.HBox([self.title, self.save_button, self.close_button]), self.notice, self.picture],
            layout=widgets.Layout(width="100%"),
        )
        self.add_class("ipyimagegen-compare")

    def save_pdf(self, folder: str | Path | None = None) -> Path | None:
        """Write the sheet as PDF to ``folder`` (default: ``save_dir``); the notice says where."""
        from ..plots import save_figure

        target = Path(folder) if folder is not None else (self.save_dir or Path.cwd())
        try:
            target.mkdir(parents=True, exist_ok=True)
            path = save_figure(self.figure, _unique_pdf(target))
        except OSError as exc:
            log.warning("could not save the comparison to %s: %s", target, exc)
            self.notice.value = (
                f'<span class="ipyimagegen-error">Could not save the PDF to '
                f"{html.escape(str(target))}: {html.escape(str(exc))}. "
                "Choose another folder with save_pdf(folder).</span>"
            )
            return None
        self.saved_path = path
        downloaded = bool(self._file_handlers.callbacks)
        self._file_handlers(path.read_bytes(), "application/pdf", path.name)
        self.notice.value = (
            f'<span class="ipyimagegen-ok">Saved to <code>{html.escape(str(path))}</code>'
            f"{' and downloaded' if downloaded else ''}.</span>"
        )
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
        self._close_handlers(self)
        close_tree(self)
