"""MaskPainter's kernel side at 1024x1024, 2048x2048 and 3840x2160: a mouse batch, and the mask export.

The page's input layer sends a stroke's points in batches (one each 25 ms: 2-3 moves of a mouse at
60-120 Hz); each batch is painted into the full-resolution mask and drawn into ipycanvas's mask
source and mask layer, with the stamp that tells the page what was drawn. Every message (the
ipycanvas commands included) goes through a recording comm that serializes it as a kernel would,
so a batch's time is the kernel's whole share. The path is a wavy hand-drawn stroke with 3-9 view
pixels between moves; the view is 512 pixels wide at fit and the brush 24 view pixels (so 180
image pixels across at 4K). What the page does with it is measured by ``painter_browser_bench``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from ipycanvas.canvas import _CANVAS_MANAGER
from PIL import Image

from ipyimagegen.widgets.mask_painter import MaskPainter
from ipyimagegen.widgets.painter_input import MAX_BRUSH_SIZE

from .comms import measured, recording_comms
from .report import Figure, Goal, Options, median_ms, p95, say

EVENT_GOAL_MS = 5.0
EXPORT_GOAL_MS = 50.0
SIZES = [(1024, 1024), (2048, 2048), (3840, 2160)]
DISPLAY, BRUSH, BATCH = 512, 24, 3


def _stroke_path(events: int, seed: int, view: tuple[int, int]) -> list[tuple[float, float]]:
    """A wavy hand-drawn path in view pixels, 3-9 pixels between moves."""
    rng = np.random.default_rng(seed)
    width, height = view
    x, y, heading = 40.0, height / 2, 0.0
    points = []
    for _ in range(events):
        heading += rng.normal(0, 0.25)
        if not 30 < x < width - 30 or not 30 < y < height - 30:
            heading = math.atan2(height / 2 - y, width / 2 - x)
        step = rng.uniform(3, 9)
        x, y = x + step * math.cos(heading), y + step * math.sin(heading)
        points.append((x, y))
    return points


def _picture(size: tuple[int, int]) -> Image.Image:
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // width, y * 255 // height, (x + y) * 127 // (width + height)], axis=-1)
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


@contextmanager
def _canvas_manager_recorded() -> Iterator[None]:
    """ipycanvas's shared canvas manager (opened at import) sends through a recording comm too."""
    previous = _CANVAS_MANAGER.comm
    _CANVAS_MANAGER.comm = None
    _CANVAS_MANAGER.open()
    try:
        yield
    finally:
        _CANVAS_MANAGER.comm = previous


def _kernel(
    size: tuple[int, int], strokes: int, events: int, exports: int, brush: int = BRUSH
) -> tuple[list[float], list[float], int]:
    """Times (s) of each mouse batch in the kernel, mask export times, most bytes sent for a stroke."""
    per_batch: list[float] = []
    with recording_comms() as recorder, _canvas_manager_recorded():
        painter = MaskPainter(_picture(size), max_display_size=DISPLAY)
        painter.brush_size = brush
        view = painter.view
        painter.mask_png()  # warm-up: encoder set-up
        sent_bytes = 0
        for index in range(strokes):
            tool = "eraser" if index == strokes - 1 else "brush"
            path = [painter.canvas_to_image(*p) for p in _stroke_path(events, index, painter.display_size)]
            flat = [v for point in path for v in point]
            batches = [flat[i : i + 2 * BATCH] for i in range(0, len(flat), 2 * BATCH)]
            with measured(recorder) as traffic:
                for number, batch in enumerate(batches):
                    message = {"kind": "stroke", "id": index + 1, "tool": tool, "points": batch,
                               "first": number == 0, "end": number == len(batches) - 1}  # fmt: skip
                    started = time.perf_counter()
                    view._handle_message(view, message, [])
                    per_batch.append(time.perf_counter() - started)
            (sent,) = traffic
            sent_bytes = max(sent_bytes, sent.total_bytes)
        export = []
        for _ in range(exports):
            started = time.perf_counter()
            painter.mask_png()
            export.append(time.perf_counter() - started)
        painter.close()
    return per_batch, export, sent_bytes


def run(options: Options) -> list[Figure]:
    strokes, events, exports = options.pick((2, 150, 5), (4, 300, 20))
    say(
        f"method: {strokes} strokes of {events} moves, batches of {BATCH} points (the page sends one each "
        f"25 ms), recording comms for the widgets and ipycanvas's canvas manager; view {DISPLAY} px wide "
        f"at fit, brush {BRUSH} view px"
    )
    figures: list[Figure] = []
    for width, height in SIZES:
        per_batch, export, sent = _kernel((width, height), strokes, events, exports)
        say(
            f"{width}x{height} kernel: a mouse batch median {median_ms(per_batch):.3f} ms, "
            f"p95 {p95(per_batch) * 1000:.3f} ms; a stroke sends {sent / 1024:.0f} KB; "
            f"mask_png median {median_ms(export):.1f} ms"
        )
        figures.append(
            Figure(
                f"mask painter: kernel, mouse batch at {width}x{height}, p95",
                p95(per_batch) * 1000,
                "ms",
                Goal(EVENT_GOAL_MS),
            )  # fmt: skip
        )
        if (width, height) == SIZES[-1]:  # the largest brush on the largest picture (1,500 pixels across)
            per_batch, _export, _sent = _kernel((width, height), 1, events, 0, brush=MAX_BRUSH_SIZE)
            say(
                f"{width}x{height} kernel, brush {MAX_BRUSH_SIZE}: a mouse batch p95 {p95(per_batch) * 1000:.3f} ms"
            )
            figures.append(
                Figure(
                    f"mask painter: kernel, mouse batch at {width}x{height}, brush {MAX_BRUSH_SIZE}, p95",
                    p95(per_batch) * 1000,
                    "ms",
                )
            )
        if (width, height) in (SIZES[0], SIZES[-1]):
            goal = Goal(EXPORT_GOAL_MS) if (width, height) == SIZES[0] else None
            figures.append(
                Figure(
                    f"mask painter: mask_png export at {width}x{height}, median",
                    median_ms(export),
                    "ms",
                    goal,
                )
            )
    return figures
