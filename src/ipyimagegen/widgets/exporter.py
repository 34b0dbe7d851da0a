"""The results grid's exporter: Save writes a result to a file, Download all makes one zip.

Each file is handed to the browser's own download as well (``send_file(data, mime, name)``), under
the name :func:`~.download.download_name` gives it; what happened is said in a notice
(``report(message_html, kind)``): what was downloaded, and where the file was written only where
the user can open that folder (:func:`~.download.shows_paths`).
"""

from __future__ import annotations

import html
import io
import json
import logging
import tempfile
import zipfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import describe_error
from .download import saved_notice
from .tile_model import ResultTile, SavedResults, read_image

log = logging.getLogger(__name__)


class ResultExporter:
    """Saves and zips the results of a grid (``save_dir``: where Save writes; default the current folder)."""

    def __init__(
        self,
        saved: SavedResults,
        send_file: Callable[[bytes, str, str], Any],
        report: Callable[[str, str], Any],
        save_dir: str | Path | None = None,
    ) -> None:
        self.save_dir = Path(save_dir) if save_dir is not None else None
        self._saved = saved
        self._send_file = send_file
        self._report = report

    def save(self, tile: ResultTile, folder: str | Path | None = None) -> Path | None:
        """Write the tile's full image to a file and hand it to the browser as a download."""
        image = read_image(tile, self._report)
        if image is None:
            return None
        target = Path(folder) if folder is not None else (self.save_dir or Path.cwd())
        try:
            target.mkdir(parents=True, exist_ok=True)
            path = unique_path(target, tile.file_name(image))
            image.save(path)
        except OSError as exc:
            log.warning("could not save an image to %s: %s", target, exc)
            self._report(
                f"Could not save the image to {html.escape(str(target))}: {html.escape(str(exc))}", "error"
            )
            return None
        self._send_file(image.data, image.mime_type, path.name)
        self._report(saved_notice(path), "ok")
        return path

    def download_zip(self, tiles: list[ResultTile]) -> str | None:
        """``tiles``' results as one zip, downloaded in the browser: their files with a manifest (from
        the gallery, with the inputs of edits, when it keeps them all)."""
        if not tiles:
            self._report("There are no results to download yet.", "warning")
            return None
        name = f"ipyimagegen-results-{datetime.now():%Y%m%d-%H%M%S}.zip"
        try:
            data = self._zip_of(tiles)
        except (OSError, KeyError) as exc:
            log.warning("could not make the zip: %s", exc)
            self._report(f"Could not make the zip: {html.escape(describe_error(exc))}", "error")
            return None
        if data is None:
            return None
        self._send_file(data, "application/zip", name)
        count = len(tiles)
        self._report(
            f"Downloaded {count} result{'s' if count != 1 else ''} as <code>{html.escape(name)}</code>.", "ok"
        )
        return name

    def _zip_of(self, tiles: list[ResultTile]) -> bytes | None:
        ids = [
            tile.details.metadata.get("gallery_id") if tile.details is not None else None for tile in tiles
        ]
        with tempfile.TemporaryDirectory(prefix="ipyimagegen-zip-") as folder:
            exported = self._saved.zip_of(ids, Path(folder) / "results.zip")
            if exported is not None:
                return exported.read_bytes()
        buffer = io.BytesIO()
        manifest = []
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
            for tile in tiles:
                image = read_image(tile, self._report)
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


def unique_path(folder: Path, name: str) -> Path:
    """``folder/name``, or ``folder/stem-2.ext`` (-3...) when that file is there already."""
    path = folder / name
    k = 1
    while path.exists():
        k += 1
        path = folder / f"{Path(name).stem}-{k}{Path(name).suffix}"
    return path
