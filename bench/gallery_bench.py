"""Gallery speed: saving a 1024x1024 result, opening a gallery at its first page, and opening at scale.

A save writes the PNG with its metadata (temporary file, fsync, rename) and adds its index
row. Opening is what a new session does: ``Gallery(folder)`` and a ``HistoryBrowser`` showing
its first page; the first page's thumbnails are made on first view, so they are removed before
each timed open ("cold"); a second open finds them made ("warm"). At scale: galleries of 1,000
and 50,000 small images (files and index rows written directly, so that building them is quick),
timed from ``Gallery(folder)`` to its count and first page of items; the background pass that
checks the folder after opening is timed apart.
"""

from __future__ import annotations

import json
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
from .report import RATIO, Figure, Goal, Options, median_ms, p95, say, timed

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


def _build(folder: Path, items: int) -> None:
    """A gallery of ``items`` small PNGs with their index rows, written in one go."""
    with Gallery(folder) as gallery:
        gallery.save(
            GeneratedImage(
                data=photo_like_png(64), request=GenerateRequest(prompt=PROMPT, model="gpt-image-2")
            )
        )
        template = gallery.items(limit=1)[0]
        data = template.path.read_bytes()
        rows = []
        for index in range(items - 1):
            item_id = f"20260101-000000-{index:08x}"
            (gallery.images_dir / f"{item_id}.png").write_bytes(data)
            document = {**template.to_dict(), "id": item_id, "prompt": f"{PROMPT} {index}"}
            rows.append((item_id, f"images/{item_id}.png", document["created"], document["prompt"], "",
                         "gpt-image-2", "generations", None, json.dumps(document)))  # fmt: skip
        with gallery.index.transaction() as db:
            db.executemany(
                "INSERT INTO images (id, file, created, prompt, revised_prompt, model, endpoint, parent_id,"
                " document) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )


def _open_at_scale(folder: Path) -> tuple[float, float, int]:
    """Seconds from ``Gallery(folder)`` to its count and first page; seconds of the background pass; count."""
    started = time.perf_counter()
    gallery = Gallery(folder)
    count = len(gallery)
    gallery.items(limit=12)
    opened = time.perf_counter() - started
    gallery.wait_tidy()
    tidied = time.perf_counter() - started
    gallery.close()
    return opened, tidied, count


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
    small, large = 1000, options.pick(10_000, 50_000)
    at_scale = {}
    for count in (small, large):
        scale_folder = Path(tempfile.mkdtemp(prefix="ipyimagegen-bench-gallery-scale-"))
        try:
            _build(scale_folder, count)
            runs = [_open_at_scale(scale_folder) for _ in range(3)]
        finally:
            shutil.rmtree(scale_folder, ignore_errors=True)
        if runs[0][2] != count:
            raise RuntimeError(f"The gallery of {count} images opened with {runs[0][2]}.")
        at_scale[count] = (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
        say(
            f"{count} images: open to count and first page {at_scale[count][0] * 1000:.1f} ms; "
            f"background pass done after {at_scale[count][1] * 1000:.0f} ms"
        )
    return [
        Figure(
            "gallery: save and index a 1024x1024 result, median", median_ms(saves), "ms", Goal(SAVE_GOAL_MS)
        ),
        Figure(
            f"gallery: open at {large} items vs at {small}",
            at_scale[large][0] * 1000,
            "ms",
            Goal(2.0, on=RATIO, compare="<="),
            peer=at_scale[small][0] * 1000,
        ),
        Figure(
            f"gallery: open {items} items, first history page (cold)",
            statistics.median(cold),
            "s",
            Goal(OPEN_GOAL_S),
        ),
    ]
