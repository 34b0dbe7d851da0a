"""MaskPainter speed at 1024x1024 (shown at 512x512), with no kernel attached.

Per mouse-move event the painter paints the segment into the full-resolution mask and builds
and "sends" its canvas message (one batch: segment plus brush cursor). Run:
``python bench/mask_bench.py [--quick]``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable

import numpy as np
from PIL import Image

from ipyimagegen.widgets.mask_painter import MaskPainter

EVENT_GOAL_MS = 5.0
EXPORT_GOAL_MS = 50.0


def _stroke_path(events: int, seed: int) -> list[tuple[float, float]]:
    """A wavy hand-drawn path with 3-9 display pixels between events, like a mouse at 60 Hz."""
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


def _time_ms(action: Callable[..., object], *args: float) -> float:
    start = time.perf_counter()
    action(*args)
    return (time.perf_counter() - start) * 1000


def _summary(label: str, samples: list[float], goal: tuple[str, float] | None = None) -> str:
    """One line of figures; ``goal`` is (``"median"`` or ``"p95"``, milliseconds)."""
    figures = {"median": statistics.median(samples), "p95": float(np.percentile(samples, 95))}
    line = (
        f"{label:<30} median {figures['median']:7.3f} ms   p95 {figures['p95']:7.3f} ms   n={len(samples):<5}"
    )
    if goal is not None:
        statistic, limit = goal
        verdict = "ok" if figures[statistic] < limit else "OVER"
        line += f" goal: {statistic} < {limit:g} ms ({verdict})"
    return line.rstrip()


def main(quick: bool = False) -> None:
    """Print per-event and export timings with their goals."""
    strokes, events, exports = (2, 150, 5) if quick else (4, 300, 20)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (1024, 1024, 3), dtype=np.uint8))
    painter = MaskPainter(image, max_display_size=512)
    painter.brush_size = 24

    paint_ms: list[float] = []
    hover_ms: list[float] = []
    end_ms: list[float] = []
    for index in range(strokes):
        painter.tool = "eraser" if index == strokes - 1 else "brush"
        path = _stroke_path(events, seed=index)
        for point in path[:20]:
            hover_ms.append(_time_ms(painter._on_mouse_move, *point))
        painter._on_mouse_down(*path[0])
        for point in path[1:]:
            paint_ms.append(_time_ms(painter._on_mouse_move, *point))
        end_ms.append(_time_ms(painter._on_mouse_up, *path[-1]))

    painted = painter.painted_fraction
    export_ms = [_time_ms(painter.mask_png) for _ in range(exports)]
    undo_ms = [_time_ms(painter.undo) for _ in range(strokes)]

    width, height = painter.display_size
    print(f"MaskPainter: 1024x1024 image shown at {width}x{height}, brush 24, {painted:.1%} painted")
    print(_summary("mouse move while painting", paint_ms, ("p95", EVENT_GOAL_MS)))
    print(_summary("mouse move, hover only", hover_ms, ("p95", EVENT_GOAL_MS)))
    print(_summary("stroke end (overlay redraw)", end_ms))
    print(_summary("undo (overlay redraw)", undo_ms))
    print(_summary("mask_png export", export_ms, ("median", EXPORT_GOAL_MS)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer events, for a smoke run")
    main(quick=parser.parse_args().quick)
