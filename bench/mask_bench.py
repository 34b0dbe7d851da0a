"""MaskPainter speed at 1024x1024, 2048x2048 and 3840x2160: a mouse move in the kernel and in the
browser, and the mask export.

Kernel: the page sends a stroke's points in batches (a batch each 40 ms: about 3 moves of a mouse
at 60 Hz); each batch is painted into the full-resolution mask, and the stroke's end sends the
touched region back, through a recording comm that serializes it as a kernel would. A move's cost
is a batch's time over its points, the stroke end's time shared out over the stroke's moves. The
path is a wavy hand-drawn stroke with 3-9 view pixels between moves; the view is 512 pixels wide
at fit and the brush 24 view pixels (so 180 image pixels across at 4K).

Browser: Voila + headless Chromium; pointer events dispatched on the painter's canvas, each timed
from dispatch to the end of its drawing (a one-pixel read of each layer makes the canvas finish
its drawing inside the timed span), at fit and at 100% zoom.
"""

from __future__ import annotations

import math
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ipyimagegen.widgets.mask_painter import MaskPainter

from .comms import measured, recording_comms
from .report import Figure, Goal, Options, median_ms, p95, say

ROOT = Path(__file__).resolve().parent.parent
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


def _kernel(
    size: tuple[int, int], strokes: int, events: int, exports: int
) -> tuple[list[float], list[float], int]:
    """Per-move times (s) of painting in the kernel, mask export times, bytes sent per stroke end."""
    per_move: list[float] = []
    with recording_comms() as recorder:
        painter = MaskPainter(_picture(size), max_display_size=DISPLAY)
        painter.brush_size = BRUSH
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
                    per_move.extend([(time.perf_counter() - started) / (len(batch) // 2)] * (len(batch) // 2))
            (sent,) = traffic
            sent_bytes = max(sent_bytes, sent.total_bytes)
        export = []
        for _ in range(exports):
            started = time.perf_counter()
            painter.mask_png()
            export.append(time.perf_counter() - started)
        painter.close()
    return per_move, export, sent_bytes


NOTEBOOK = textwrap.dedent(
    """
    import numpy as np
    import ipywidgets as widgets
    from PIL import Image
    from ipyimagegen.widgets.mask_painter import MaskPainter

    def picture(width, height):
        y, x = np.mgrid[0:height, 0:width]
        pixels = np.stack([x * 255 // width, y * 255 // height, (x + y) * 127 // (width + height)], axis=-1)
        return Image.fromarray(pixels.astype(np.uint8), "RGB")

    painter = MaskPainter(max_display_size=%d)
    painter.brush_size = %d
    sizes = widgets.Dropdown(options=["none", "1024x1024", "2048x2048", "3840x2160"])
    sizes.add_class("bench-size")
    def show(change):
        if change["new"] != "none":
            painter.set_image(picture(*map(int, change["new"].split("x"))))
    sizes.observe(show, "value")
    widgets.VBox([sizes, painter])
    """
)

MOVES_SCRIPT = """
async ([moves, zoom]) => {
  const canvas = document.querySelector('.ipyimagegen-mask-canvas');
  const layers = Array.from(document.querySelectorAll('.ipyimagegen-painter-layer')).map(c => c.getContext('2d'));
  if (zoom === '100') document.querySelector('.ipyimagegen-zoom-100').click();
  else document.querySelector('.ipyimagegen-zoom-fit').click();
  await new Promise(r => requestAnimationFrame(() => r()));
  const rect = canvas.getBoundingClientRect();
  const at = (type, x, y) => new PointerEvent(type, {clientX: rect.left + x, clientY: rect.top + y,
    button: 0, buttons: 1, pointerId: 1, pointerType: 'mouse', bubbles: true});
  const times = [];
  let x = 40, y = rect.height / 2, heading = 0, seed = 1;
  const random = () => { seed = (seed * 16807) % 2147483647; return seed / 2147483647; };
  canvas.dispatchEvent(at('pointerdown', x, y));
  for (let i = 0; i < moves; i++) {
    heading += (random() - 0.5) * 0.5;
    if (x < 30 || x > rect.width - 30 || y < 30 || y > rect.height - 30)
      heading = Math.atan2(rect.height / 2 - y, rect.width / 2 - x);
    const step = 3 + random() * 6;
    x += step * Math.cos(heading); y += step * Math.sin(heading);
    const started = performance.now();
    canvas.dispatchEvent(at('pointermove', x, y));
    for (const ctx of layers) ctx.getImageData(0, 0, 1, 1);
    times.push(performance.now() - started);
  }
  canvas.dispatchEvent(at('pointerup', x, y));
  return times;
}
"""


def _browser(moves: int) -> dict[tuple[str, str], list[float]]:
    """Per-move times (ms) in the page, by (size, zoom)."""
    sys.path.insert(0, str(ROOT / "tests"))
    import browser

    browser.require_chromium()
    found: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="ipyimagegen-bench-painter-") as folder:
        home = Path(folder)
        notebook = browser.write_notebook(home / "painter.ipynb", NOTEBOOK % (DISPLAY, BRUSH))
        with browser.voila(notebook, home) as url, browser.browser_page(viewport=(1280, 900)) as (page, _):
            page.goto(url, wait_until="domcontentloaded", timeout=60_000)
            choose = page.locator(".bench-size select")
            choose.wait_for(state="visible", timeout=60_000)
            for width, height in SIZES:
                label = f"{width}x{height}"
                choose.select_option(label)
                page.wait_for_function(
                    "(text) => document.querySelector('.ipyimagegen-mask-painter').textContent.includes(text)",
                    arg=f"{width}×{height} image",
                    timeout=60_000,
                )
                page.locator(".ipyimagegen-zoom-bar").wait_for(state="visible", timeout=60_000)
                page.wait_for_timeout(300)  # the picture decoded and drawn
                for zoom in ("fit", "100"):
                    page.evaluate(MOVES_SCRIPT, [20, zoom])  # warm-up
                    found[(label, zoom)] = page.evaluate(MOVES_SCRIPT, [moves, zoom])
                # The strokes reached the kernel's mask.
                page.wait_for_function(
                    "() => !document.querySelector('.ipyimagegen-mask-painter').textContent.includes(' 0.0% marked')",
                    timeout=30_000,
                )
                page.get_by_role("button", name="Clear mask").click()
    return found


def run(options: Options) -> list[Figure]:
    strokes, events, exports, moves = options.pick((2, 150, 5, 150), (4, 300, 20, 400))
    say(
        f"method: kernel: {strokes} strokes of {events} moves, batches of {BATCH} points (the page sends one "
        f"each 40 ms), recording comms; browser: {moves} pointer moves a size and zoom, Voila + headless "
        f"Chromium; view {DISPLAY} px wide at fit, brush {BRUSH} view px"
    )
    figures: list[Figure] = []
    for width, height in SIZES:
        per_move, export, sent = _kernel((width, height), strokes, events, exports)
        say(
            f"{width}x{height} kernel: a move median {median_ms(per_move):.3f} ms, p95 {p95(per_move) * 1000:.3f} ms; "
            f"stroke end sends {sent / 1024:.0f} KB; mask_png median {median_ms(export):.1f} ms"
        )
        figures.append(
            Figure(
                f"mask painter: kernel, mouse move at {width}x{height}, p95",
                p95(per_move) * 1000,
                "ms",
                Goal(EVENT_GOAL_MS),
            )  # fmt: skip
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
    in_page = _browser(moves)
    for (label, zoom), times in in_page.items():
        ordered = sorted(times)
        say(
            f"{label} browser at {zoom if zoom == 'fit' else '100%'}: a move median {statistics.median(times):.3f} ms, "
            f"p95 {ordered[int(len(ordered) * 0.95)]:.3f} ms"
        )
    for width, height in SIZES:
        times = in_page[(f"{width}x{height}", "fit")] + in_page[(f"{width}x{height}", "100")]
        ordered = sorted(times)
        figures.append(
            Figure(
                f"mask painter: browser, mouse move at {width}x{height}, p95",
                ordered[int(len(ordered) * 0.95)],
                "ms",
                Goal(EVENT_GOAL_MS),
            )  # fmt: skip
        )
    return figures
