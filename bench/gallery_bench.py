"""Gallery speed: saving a 1024x1024 result, and opening a large gallery at its first page.

A save writes the PNG with its metadata (temporary file, fsync, rename) and adds its index
row. Opening is what a new session does: ``Gallery(folder)`` (index check against the folder)
and a ``HistoryBrowser`` showing its first page; the first page's thumbnails are made on first
view, so they are removed before each timed open ("cold"); a second open finds them made ("warm").
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

from ipyimagegen.api.types import GeneratedImage, GenerateRequest
from ipyimagegen.gallery import Gallery
from ipyimagegen.widgets.history import HistoryBrowser

from .comms import recording_comms
from .fixtures import PROMPT, fresh_copy, photo_like_png
from .report import Figure, Goal, Options, median_ms, p95, say, timed

SAVE_GOAL_MS = 20.0
OPEN_GOAL_S = 1.0


def _fill(folder: Path, items: int) -> list[float]:
    """Save ``items`` results; the seconds each save took."""
    data = photo_like_png(1024)
    request = GenerateRequest(prompt=PROMPT, model="gpt-image-2", size="1024x1024", n=1)
    times = []
    with Gallery(folder) as gallery:
        for index in range(items):
            image = GeneratedImage(
                data=fresh_copy(data), seed=index, request=request, metadata={"backend": "bench"}
            )
            times.append(timed(lambda image=image: gallery.save(image)))
    return times


def _open_first_page(folder: Path) -> tuple[float, int, int]:
    """Seconds to open the gallery and show its first page; the page's tiles, the gallery's size."""
    started = time.perf_counter()
    gallery = Gallery(folder)
    browser = HistoryBrowser(gallery)
    elapsed = time.perf_counter() - started
    tiles, total = len(browser.tiles), browser.total
    browser.close()
    gallery.close()
    return elapsed, tiles, total


def run(options: Options) -> list[Figure]:
    items, opens = options.pick(200, 1000), options.pick(2, 3)
    folder = Path(tempfile.mkdtemp(prefix="ipyimagegen-bench-gallery-"))
    try:
        saves = _fill(folder, items)[1:]  # the first save creates the folders: warm-up
        cold = []
        with recording_comms():
            for _ in range(opens):
                shutil.rmtree(folder / "thumbnails")
                elapsed, tiles, total = _open_first_page(folder)
                cold.append(elapsed)
            warm = [_open_first_page(folder)[0] for _ in range(opens)]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if total != items or tiles == 0:
        raise RuntimeError(f"The history shows {tiles} tiles of {total} images; {items} were saved.")
    say(
        f"method: {items} saves of a {len(photo_like_png(1024)) / 1e6:.1f} MB 1024x1024 PNG in a temporary folder; "
        f"open = Gallery(folder) + HistoryBrowser first page ({tiles} tiles), median of {opens}"
    )
    say(
        f"save median {median_ms(saves):.1f} ms, p95 {p95(saves) * 1000:.1f} ms; open with thumbnails made "
        f"(warm) {statistics.median(warm) * 1000:.0f} ms"
    )
    return [
        Figure(
            "gallery: save and index a 1024x1024 result, median", median_ms(saves), "ms", Goal(SAVE_GOAL_MS)
        ),
        Figure(
            f"gallery: open {items} items, first history page (cold)",
            statistics.median(cold),
            "s",
            Goal(OPEN_GOAL_S),
        ),
    ]
