"""Toolkit overhead per generation in the studio: from the Generate click to the first tile, every tile, every result saved.

The studio runs as it does by default (every result saved to its gallery, here in a temporary
folder; the Generate tab open, so the History tab refreshes when it is opened) on an in-process backend that answers at once with fresh
copies of a stored 1024x1024 model-like PNG; the time spent inside the backend is measured and
subtracted. Widgets
send through recording comms, so serializing their messages costs what it costs in a kernel.
Each run starts from an empty grid (cleared between runs, untimed); the first runs are warm-up.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ipyimagegen import imaging
from ipyimagegen.widgets.result_grid import ResultTile
from ipyimagegen.widgets.studio import Studio

from .comms import recording_comms
from .fixtures import PROMPT, InstantBackend, photo_like_png
from .report import Figure, Goal, Options, median_ms, say

MODEL, SIZE, N = "gpt-image-2", "1024x1024", 4
WAIT_S = 30.0
GOAL_MS = 100.0


SHOWN_AT: dict[int, float] = {}
"""When each tile first got its picture (``perf_counter``, by tile), while :func:`watching_tiles` is on."""


@contextmanager
def watching_tiles() -> Iterator[None]:
    """Note the moment each tile gets its picture (the first pixels a user sees)."""
    original = ResultTile._set_picture

    def noted(tile: ResultTile, picture: tuple[bytes, str]) -> None:
        original(tile, picture)
        SHOWN_AT.setdefault(id(tile), time.perf_counter())

    ResultTile._set_picture = noted  # type: ignore[method-assign]
    try:
        yield
    finally:
        ResultTile._set_picture = original  # type: ignore[method-assign]


def generate_once(studio: Studio, backend: InstantBackend) -> tuple[float, float, float]:
    """Click Generate and wait for the grid: (wall, backend, click-to-return) seconds."""
    backend.busy_s = 0.0
    shown = studio.grid.filled_count()
    SHOWN_AT.clear()
    started = time.perf_counter()
    studio.generate_tab.controls.run_button.click()
    returned = time.perf_counter()
    if not studio.runner.wait(WAIT_S):
        raise RuntimeError(f"The studio did not finish a generation within {WAIT_S:g} s.")
    wall = time.perf_counter() - started
    made = studio.grid.filled_count() - shown
    if made != studio.generate_tab.params.n:
        raise RuntimeError(f"The grid shows {made} new images, not {studio.generate_tab.params.n}.")
    return wall, backend.busy_s, returned - started


def new_studio(backend: InstantBackend, gallery: str | Path | bool, n: int = N) -> Studio:
    """A studio set for ``n`` images at 1024x1024; ``gallery``: a folder, or False for none."""
    studio = Studio(backend, gallery=gallery)
    tab = studio.generate_tab
    tab.prompt_box.value = PROMPT
    tab.params.model = MODEL
    tab.params.size = SIZE
    tab.params.n = n
    return studio


def _overheads(
    gallery: str | Path | bool, repeats: int, warmup: int
) -> tuple[list[float], list[float], list[float], list[float], list[float]]:
    """Per timed run, minus the backend: toolkit seconds until every result is saved and actionable,
    until the first tile shows its picture, until the last does; click-to-return; backend seconds."""
    backend = InstantBackend()
    studio = new_studio(backend, gallery)
    overheads, firsts, lasts, clicks, inside_backend = [], [], [], [], []
    try:
        with watching_tiles():
            for index in range(warmup + repeats):
                studio.grid.clear()
                started = time.perf_counter()
                wall, inside, click = generate_once(studio, backend)
                if index >= warmup:
                    overheads.append(wall - inside)
                    firsts.append(min(SHOWN_AT.values()) - started - inside)
                    lasts.append(max(SHOWN_AT.values()) - started - inside)
                    clicks.append(click)
                    inside_backend.append(inside)
    finally:
        studio.grid.clear()
        studio.close()
    return overheads, firsts, lasts, clicks, inside_backend


def run(options: Options) -> list[Figure]:
    repeats, warmup = options.pick(5, 20), options.pick(2, 3)
    png = photo_like_png(1024)
    say(
        f"method: Studio on an in-process instant backend ({MODEL}, n={N}, {SIZE}, {len(png) / 1e6:.1f} MB PNGs), "
        f"its gallery in a temporary folder, recording comms; click -> runner idle with {N} filled tiles, "
        f"minus time inside the backend; grid cleared between runs (untimed); median of {repeats} after {warmup} warm-up"
    )
    fast = imaging._png_decoder() is not None
    with recording_comms(), tempfile.TemporaryDirectory(prefix="ipyimagegen-bench-studio-") as folder:
        overheads, firsts, lasts, clicks, backend_times = _overheads(folder, repeats, warmup)
        without_gallery = _overheads(False, repeats, warmup)[0]
        with pillow_only():
            _, pillow_firsts, pillow_lasts, _, _ = _overheads(folder, repeats, warmup)
    thumbnail_s = statistics.median(_thumbnail_seconds(png) for _ in range(5))
    with pillow_only():
        pillow_thumbnail_s = statistics.median(_thumbnail_seconds(png) for _ in range(5))
    decoder = "imagecodecs (the `fast` extra)" if fast else "Pillow (the `fast` extra is not installed)"
    say(
        f"click returns after {median_ms(clicks):.1f} ms (placeholder tiles); backend {median_ms(backend_times):.2f} ms; "
        f"PNG decoder {decoder}: {N} thumbnails at about {thumbnail_s * 1000:.0f} ms each (decode, scale, JPEG), "
        f"{pillow_thumbnail_s * 1000:.0f} ms with Pillow alone; "
        f"with gallery=False (no save, no history refresh) {median_ms(without_gallery):.0f} ms"
    )
    return [
        Figure(
            f"studio: click to first tile, n={N} {SIZE}, minus backend",
            median_ms(firsts),
            "ms",
            Goal(GOAL_MS),
        ),
        Figure(
            f"studio: click to all tiles, n={N} {SIZE}, minus backend",
            median_ms(lasts),
            "ms",
            Goal(GOAL_MS),
        ),
        Figure(
            f"studio: click to all saved and actionable, n={N}, minus backend",
            median_ms(overheads),
            "ms",
        ),
        Figure(f"studio: click to first tile, n={N}, Pillow decoding only", median_ms(pillow_firsts), "ms"),
        Figure(f"studio: click to all tiles, n={N}, Pillow decoding only", median_ms(pillow_lasts), "ms"),
    ]


@contextmanager
def pillow_only() -> Iterator[None]:
    """Thumbnails decoded by Pillow alone (as without the ``fast`` extra)."""
    saved = imaging.FAST_PNG_DECODE
    imaging.FAST_PNG_DECODE = False
    try:
        yield
    finally:
        imaging.FAST_PNG_DECODE = saved


def _thumbnail_seconds(png: bytes) -> float:
    started = time.perf_counter()
    imaging.thumbnail(png)
    return time.perf_counter() - started
