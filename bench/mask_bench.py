"""MaskPainter speed at 1024x1024 (shown at 512x512): one mouse-move event, and the mask export.

Per mouse-move event the painter paints the segment into the full-resolution mask and builds
and sends its canvas message (one batch: segment plus brush cursor) through a recording comm,
which serializes it as a kernel would. The path is a wavy hand-drawn stroke with 3-9 display
pixels between events, like a mouse at 60 Hz. The export is ``mask_png()`` (the API's RGBA PNG).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
from PIL import Image

from ipyimagegen.widgets.mask_painter import MaskPainter

from .comms import measured, recording_comms
from .report import Figure, Goal, Options, median_ms, p95, say

EVENT_GOAL_MS = 5.0
EXPORT_GOAL_MS = 50.0
SIDE, DISPLAY, BRUSH = 1024, 512, 24


def _stroke_path(events: int, seed: int) -> list[tuple[float, float]]:
    """A wavy hand-drawn path with 3-9 display pixels between events."""
    rng = np.random.default_rng(seed)
    x, y, heading = 80.0, 256.0, 0.0
    points = []
    for _ in range(events):
        heading += rng.normal(0, 0.25)
        if not 40 < x < 472 or not 40 < y < 472:
            heading = math.atan2(256 - y, 256 - x)
        step = rng.uniform(3, 9)
        x, y = x + step * math.cos(heading), y + step * math.sin(heading)
        points.append((x, y))
    return points


def _seconds(action: Callable[..., object], *args: float) -> float:
    started = time.perf_counter()
    action(*args)
    return time.perf_counter() - started


def run(options: Options) -> list[Figure]:
    strokes, events, exports = options.pick((2, 150, 5), (4, 300, 20))
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8))
    paint: list[float] = []
    hover: list[float] = []
    ends: list[float] = []
    with recording_comms() as recorder:
        painter = MaskPainter(image, max_display_size=DISPLAY)
        painter.brush_size = BRUSH
        painter.mask_png()  # warm-up: encoder set-up
        with measured(recorder) as traffic:
            for index in range(strokes):
                painter.tool = "eraser" if index == strokes - 1 else "brush"
                path = _stroke_path(events, seed=index)
                for point in path[:20]:
                    hover.append(_seconds(painter._on_mouse_move, *point))
                painter._on_mouse_down(*path[0])
                for point in path[1:]:
                    paint.append(_seconds(painter._on_mouse_move, *point))
                ends.append(_seconds(painter._on_mouse_up, *path[-1]))
        (sent,) = traffic
        export = [_seconds(painter.mask_png) for _ in range(exports)]
        painted = painter.painted_fraction
        painter.close()
    width, height = painter.display_size
    say(
        f"method: {SIDE}x{SIDE} image shown at {width}x{height}, brush {BRUSH}, {strokes} strokes of {events} events "
        f"({painted:.1%} painted), recording comms; {len(export)} exports"
    )
    say(
        f"mouse move while painting: median {median_ms(paint):.3f} ms, p95 {p95(paint) * 1000:.3f} ms; "
        f"hover only: median {median_ms(hover):.3f} ms; stroke end (overlay redraw) median {median_ms(ends):.1f} ms; "
        f"{sent.total_bytes / max(1, sent.messages):.0f} bytes per canvas message"
    )
    return [
        Figure("mask painter: mouse move at 1024x1024, p95", p95(paint) * 1000, "ms", Goal(EVENT_GOAL_MS)),
        Figure("mask painter: mask_png export, median", median_ms(export), "ms", Goal(EXPORT_GOAL_MS)),
    ]
