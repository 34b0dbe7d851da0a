"""How the studio uses its gallery: opening it, the History tab, and reusing a saved image's settings.

By default the studio opens the gallery folder (``$IPYIMAGEGEN_GALLERY``, else
``./ipyimagegen-gallery``), so every result is on disk before it is shown. A folder that
cannot be opened leaves the studio working without one, and a notice says why.
"""

from __future__ import annotations

import html
import logging
import os
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from ..errors import describe_error
from ..gallery import DEFAULT_FOLDER, ENV_VARIABLE, Gallery, GalleryStore
from .history import HistoryBrowser

log = logging.getLogger(__name__)

GALLERY_OFF = (
    "The gallery is off (<code>gallery=False</code>): results are not saved, so there is no history."
)


def default_gallery_folder() -> Path:
    """Where the default gallery lives: ``$IPYIMAGEGEN_GALLERY``, else ``./ipyimagegen-gallery``."""
    return Path(os.environ.get(ENV_VARIABLE) or Path.cwd() / DEFAULT_FOLDER).expanduser()


def open_gallery(gallery: Any) -> tuple[Any, str]:
    """The gallery a studio uses, and a notice (HTML) when it has none.

    ``None`` opens the default gallery folder; ``False`` means no gallery; a path opens the
    gallery there; anything else is used as it is (an object with ``save_response``).
    """
    if gallery is False:
        return None, ""
    if gallery is not None and not isinstance(gallery, (str, os.PathLike)):
        return gallery, ""
    folder = default_gallery_folder() if gallery is None else Path(gallery).expanduser()
    try:
        return Gallery(folder), ""
    except Exception as exc:
        log.warning("could not open the gallery in %s: %s", folder, exc)
        return None, (
            f"Could not open the gallery in <code>{html.escape(str(folder))}</code> "
            f"({html.escape(describe_error(exc))}), so results are not saved to disk. "
            f"Set {ENV_VARIABLE} to a folder you can write to (or pass <code>gallery=</code>), "
            "then open the studio again."
        )


def can_browse(gallery: Any) -> bool:
    """Whether the History browser can list ``gallery`` (a GalleryStore: it lists, shows and deletes)."""
    return isinstance(gallery, GalleryStore)


def history_tab(gallery: Any, problem: str = "") -> widgets.Widget:
    """A :class:`HistoryBrowser` on ``gallery``, or a note saying why there is no history."""
    if gallery is not None and can_browse(gallery):
        return HistoryBrowser(gallery)
    if problem:
        text = problem
    elif gallery is None:
        text = GALLERY_OFF
    else:
        text = "This gallery cannot be browsed: give the studio an ipyimagegen Gallery to see the history."
    note = widgets.HTML(f'<div class="ipyimagegen-history-empty">{text}</div>', layout={"width": "100%"})
    note.add_class("ipyimagegen-history-off")
    return note


def settings_of(item: Any) -> dict[str, Any]:
    """The request parameters a saved image was made with (model, size, quality, style, n...)."""
    settings = dict(getattr(item, "options", None) or {})
    if getattr(item, "model", None):
        settings["model"] = item.model
    if not settings.get("size") and getattr(item, "size", None):
        settings["size"] = item.size
    if getattr(item, "seed", None) is not None:
        settings["seed"] = item.seed
    return settings
