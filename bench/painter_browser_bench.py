"""The mask painter in a real browser, as a user sees it: strokes, a slow link, a busy kernel, zoom steps.

Voila + headless Chromium: a stroke's drawing in the page, its commit to ipycanvas, the same over a 100 ms round
trip and while the kernel is busy, and a zoom step's preview and crisp redraw.

Each mouse move is a real PointerEvent dispatched on the painter's input layer, one per animation frame (a
mouse's pace), and everything is read back from the page's own elements. *Shows*: from the dispatch until the
input layer's canvas has the stroke's pixel at the point (a one-pixel read, which makes the canvas finish its
drawing). *Committed*: from the dispatch until the ipycanvas element (the MultiCanvas view: the composite of the
layers the kernel draws) shows the mask at the point, read once per frame; the picture is a uniform grey and the
mask is drawn at half opacity, so a painted pixel is magenta-grey, and the path's points are further apart than
the brush is wide, so a point is covered only by the segment that ends at it. The notebook writes the kernel's mask
to a file on every change, so a lost point is one the kernel's mask or the ipycanvas element lacks. The round trip
is a byte proxy between Chromium and Voila that holds every chunk 50 ms each way, in order; the busy kernel is a
button whose handler sleeps 2 s. A zoom step is a Ctrl+wheel event: it *shows* when the ipycanvas element has a CSS
transform, and it is *crisp* when the element's own pixels (drawn by ipycanvas at full resolution, not scaled by
CSS) have, at probe points, the colours the old view had where the zoom maps them from; the picture's colour
encodes its position.
"""

from __future__ import annotations

import asyncio
import math
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from .report import Figure, Goal, Options, p95, say

ROOT = Path(__file__).resolve().parent.parent
FRAME_GOAL_MS = 17.0  # one frame at 60 Hz
COMMIT_GOAL_MS = 100.0
CRISP_GOAL_MS = 100.0
DISPLAY, BRUSH = 512, 6  # the fitted view's longest side and the brush, in view pixels
STEP, ROW_GAP, MARGIN = 9.0, 24.0, 12.0  # the path: steps wider than the brush, rows far apart
DELAY_S = 0.05  # each way: a 100 ms round trip
BUSY_S = 2.0
BUSY_MOVES = 60
WHEEL_DELTA = 120.0  # pixels: the page zooms by exp(0.24) per step
WAIT_MS = 15_000  # the longest a page waits for what a step should bring
SIZES = [(1024, 1024), (3840, 2160)]
BIG = SIZES[-1]

NOTEBOOK = textwrap.dedent(
    """
    import os
    import time

    import ipywidgets as widgets
    import numpy as np
    from PIL import Image
    from ipyimagegen.widgets.mask_painter import MaskPainter

    MASK = %r

    def picture(kind, width, height):
        if kind == "grey":
            return Image.new("RGB", (width, height), (128, 128, 128))
        y, x = np.mgrid[0:height, 0:width]  # the colour says where: R from x, G from y
        pixels = np.stack([x * 255 // width, y * 255 // height, np.zeros_like(x)], axis=-1)
        return Image.fromarray(pixels.astype(np.uint8), "RGB")

    painter = MaskPainter(max_display_size=%d)
    painter.brush_size = %d
    painter.opacity = 0.5

    def keep(widget):
        if widget.mask is not None:
            np.save(MASK + ".tmp.npy", widget.mask)
            os.replace(MASK + ".tmp.npy", MASK)

    painter.on_change(keep)
    scenario = widgets.Dropdown(options=["none", "grey 1024x1024", "grey 3840x2160", "ramp 3840x2160"])
    scenario.add_class("bench-scenario")
    ready = widgets.Label("ready: none")
    ready.add_class("bench-ready")

    def show(change):
        kind, size = change["new"].split(" ")
        painter.set_image(picture(kind, *map(int, size.split("x"))))
        ready.value = "ready: " + change["new"]

    scenario.observe(show, "value")
    busy = widgets.Button(description="Busy %g s")
    busy.add_class("bench-busy")
    busy.on_click(lambda _button: time.sleep(%g))
    widgets.VBox([widgets.HBox([scenario, busy, ready]), painter])
    """
)

# The painted-pixel test on the ipycanvas element: magenta at half opacity over grey is about (191, 64, 191).
PAINTED_JS = "(d, i) => d[i] > 150 && d[i + 1] < 100 && d[i + 2] > 150"

STROKE_JS = """
async ({points, busy, waitMs}) => {
  const surface = document.querySelector('.ipyimagegen-mask-canvas');
  const element = document.querySelector('canvas.ipyimagegen-painter-canvas');
  const input = surface.getContext('2d');
  const shown = element.getContext('2d');
  const painted = __PAINTED__;
  const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));
  const rect = surface.getBoundingClientRect();
  const inputScale = surface.width / rect.width;
  const elementScale = element.width / rect.width;
  const at = (type, [x, y]) => new PointerEvent(type, {
    clientX: rect.left + x, clientY: rect.top + y, button: 0, buttons: type === 'pointerup' ? 0 : 1,
    pointerId: 1, pointerType: 'mouse', isPrimary: true, bubbles: true, cancelable: true});
  const sent = [], showMs = [], unpainted = [];
  const commitMs = points.map(() => null);
  let waiting = [];
  const check = () => {  // the whole ipycanvas element, once a frame: which points does it show painted?
    if (!waiting.length) return;
    const data = shown.getImageData(0, 0, element.width, element.height).data;
    const now = performance.now();
    waiting = waiting.filter((i) => {
      const [x, y] = points[i];
      const index = 4 * (Math.floor(y * elementScale) * element.width + Math.floor(x * elementScale));
      if (!painted(data, index)) return true;
      commitMs[i] = now - sent[i];
      return false;
    });
  };
  let clickAt = null;
  if (busy) {
    clickAt = performance.now();
    document.querySelector('.bench-busy').click();
  }
  sent.push(performance.now());
  surface.dispatchEvent(at('pointerdown', points[0]));
  waiting.push(0);
  for (let i = 1; i < points.length; i++) {
    await frame();
    check();
    const started = performance.now();
    surface.dispatchEvent(at('pointermove', points[i]));
    const [x, y] = points[i];
    const pixel = input.getImageData(Math.floor(x * inputScale), Math.floor(y * inputScale), 1, 1).data;
    showMs.push(performance.now() - started);
    if (pixel[3] === 0) unpainted.push(i);
    sent.push(started);
    waiting.push(i);
  }
  await frame();
  check();
  surface.dispatchEvent(at('pointerup', points[points.length - 1]));
  const deadline = performance.now() + waitMs;
  while (waiting.length && performance.now() < deadline) {
    await frame();
    check();
  }
  return {showMs, commitMs, sent, unpainted, clickAt, viewWidth: rect.width};
}
""".replace("__PAINTED__", PAINTED_JS)

SETTLED_JS = """
() => {
  // Nothing painted on the ipycanvas element, nothing left on the input layer.
  const painted = __PAINTED__;
  const element = document.querySelector('canvas.ipyimagegen-painter-canvas');
  const shown = element.getContext('2d').getImageData(0, 0, element.width, element.height).data;
  for (let i = 0; i < shown.length; i += 4) if (painted(shown, i)) return false;
  const surface = document.querySelector('.ipyimagegen-mask-canvas');
  const drawn = surface.getContext('2d').getImageData(0, 0, surface.width, surface.height).data;
  for (let i = 3; i < drawn.length; i += 4) if (drawn[i]) return false;
  return getComputedStyle(element).transform === 'none';
}
""".replace("__PAINTED__", PAINTED_JS)

PICTURE_JS = """
([kind, picture]) => {
  // The ipycanvas element shows the picture asked for (the grey, or the ramp at its fitted view).
  const element = document.querySelector('canvas.ipyimagegen-painter-canvas');
  const [width, height] = picture;
  if (Math.abs(element.width / element.height - width / height) > 0.01) return false;
  const x = Math.floor(element.width * 0.3), y = Math.floor(element.height * 0.7);
  const p = element.getContext('2d').getImageData(x, y, 1, 1).data;
  if (kind === 'grey') return [0, 1, 2].every((c) => Math.abs(p[c] - 128) <= 2);
  return Math.abs(p[0] - 255 * (x + 0.5) / element.width) <= 3
    && Math.abs(p[1] - 255 * (y + 0.5) / element.height) <= 3 && p[2] <= 2;
}
"""

ZOOM_JS = """
async ({centre, probes, steps, delta, tolerance, waitMs}) => {
  const box = document.querySelector('.ipyimagegen-painter-box');
  const surface = document.querySelector('.ipyimagegen-mask-canvas');
  const element = document.querySelector('canvas.ipyimagegen-painter-canvas');
  const context = element.getContext('2d');
  const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));
  const rect = surface.getBoundingClientRect();  // the view's box: the ipycanvas element without its transform
  const k = element.width / rect.width;
  const pixel = ([x, y]) => Array.from(context.getImageData(Math.floor(x * k), Math.floor(y * k), 1, 1).data);
  const transformed = () => getComputedStyle(element).transform !== 'none';
  const [px, py] = centre;
  const showMs = [], crispMs = [];
  surface.dispatchEvent(new PointerEvent('pointerleave', {pointerId: 1, pointerType: 'mouse'}));  // no ring
  for (let step = 0; step < steps; step++) {
    const deltaY = step % 2 ? delta : -delta;  // in, then out again
    const factor = Math.exp(-deltaY * 0.002);
    const expected = probes.map(([qx, qy]) => pixel([px + (qx - px) / factor, py + (qy - py) / factor]));
    const started = performance.now();
    box.dispatchEvent(new WheelEvent('wheel', {clientX: rect.left + px, clientY: rect.top + py, deltaY,
      deltaMode: 0, ctrlKey: true, bubbles: true, cancelable: true}));
    while (!transformed() && performance.now() - started < waitMs) await frame();
    showMs.push(transformed() ? performance.now() - started : null);
    const crisp = () => probes.every((q, i) => {
      const now = pixel(q);
      return [0, 1, 2].every((c) => Math.abs(now[c] - expected[i][c]) <= tolerance);
    });
    while (!crisp() && performance.now() - started < waitMs) await frame();
    crispMs.push(crisp() ? performance.now() - started : null);
    while (transformed() && performance.now() - started < waitMs) await frame();
    for (let i = 0; i < 3; i++) await frame();
  }
  return {showMs, crispMs, transform: getComputedStyle(element).transform};
}
"""


def fitted_view(picture: tuple[int, int]) -> tuple[float, float]:
    """The view's size in CSS pixels when the picture fits it."""
    width, height = picture
    scale = DISPLAY / max(width, height)
    return (width * scale, height * scale)


def raster_path(view: tuple[float, float], moves: int) -> list[tuple[float, float]]:
    """``moves + 1`` points in view pixels: rows left to right and back, ``ROW_GAP`` apart, ``STEP`` between
    points; a row's end goes down to the next in steps shorter than ``STEP``. A segment's brush (``BRUSH`` view
    pixels wide) never reaches a later point, so each point shows painted only once its own segment is drawn."""
    width, height = view
    row = [MARGIN + STEP * i for i in range(int((width - 2 * MARGIN) // STEP) + 1)]
    rows = int((height - 2 * MARGIN) // ROW_GAP) + 1
    down = math.ceil(ROW_GAP / STEP)
    points: list[tuple[float, float]] = []
    for number in range(rows):
        y = MARGIN + ROW_GAP * number
        points += [(x, y) for x in (row if number % 2 == 0 else row[::-1])]
        if number + 1 < rows:
            points += [(points[-1][0], y + ROW_GAP * k / down) for k in range(1, down)]
    if len(points) <= moves:
        raise ValueError(f"{moves} moves do not fit a {width:.0f}x{height:.0f} view")
    return points[: moves + 1]


@dataclass
class Stroke:
    """One timed stroke, on the page's clock (ms): each move's show time, each point's dispatch and commit time
    (None: the ipycanvas element never showed it), the busy button's click, and the points the kernel's mask lacks."""

    show_ms: list[float]
    commit_ms: list[float | None]
    sent_ms: list[float]
    click_ms: float | None
    not_in_kernel: list[int]

    @property
    def not_shown(self) -> list[int]:
        return [index for index, value in enumerate(self.commit_ms) if value is None]

    @property
    def lost(self) -> int:
        """Points the kernel's mask or the ipycanvas element lacks."""
        return len(set(self.not_shown) | set(self.not_in_kernel))

    def commit_p95(self) -> float:
        """p95 of the commit times; a point never shown counts as never (infinite)."""
        return p95([math.inf if value is None else value for value in self.commit_ms])

    def last_commit_ms(self) -> float:
        """When the ipycanvas element showed the last of the points (infinite if one never showed)."""
        return max(
            math.inf if value is None else sent + value
            for sent, value in zip(self.sent_ms, self.commit_ms, strict=True)
        )

    def text(self) -> str:
        shown = [value for value in self.commit_ms if value is not None]
        commit = (
            f"committed min {min(shown):.1f}, median {np.median(shown):.1f}, p95 {self.commit_p95():.1f}, "
            f"max {max(shown):.1f} ms"
            if shown
            else "never committed"
        )
        pace = np.median(np.diff(self.sent_ms[1:])) if len(self.sent_ms) > 2 else math.nan
        return (
            f"{len(self.show_ms)} moves, one each {pace:.1f} ms: shows median {np.median(self.show_ms):.2f}, "
            f"p95 {p95(self.show_ms):.2f}, max {max(self.show_ms):.2f} ms; {commit}; lost {self.lost} of "
            f"{len(self.commit_ms)} points (never shown {len(self.not_shown)}, not in the kernel's mask "
            f"{len(self.not_in_kernel)})"
        )


class DelayProxy:
    """A TCP proxy on 127.0.0.1 that holds every chunk ``delay_s`` in each direction, in order: HTTP and
    WebSocket traffic alike see the round trip grow by twice the delay."""

    def __init__(self, target_port: int, delay_s: float) -> None:
        self.target_port = target_port
        self.delay_s = delay_s
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="delay-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    def __enter__(self) -> DelayProxy:
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0), self._loop
        )
        self._server = started.result(timeout=10)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        writers = [client_writer]
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            writers.append(upstream_writer)
            await _together(
                self._pump(client_reader, upstream_writer), self._pump(upstream_reader, client_writer)
            )
        except (OSError, asyncio.CancelledError):
            pass  # one side hung up, or the proxy stops
        finally:
            for writer in writers:
                writer.close()
            self._connections.discard(task)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy ``reader`` to ``writer``, each chunk ``delay_s`` after it came, in order."""
        loop = asyncio.get_running_loop()
        held: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def hold() -> None:
            while True:
                data = await reader.read(65536)
                held.put_nowait((loop.time() + self.delay_s, data))
                if not data:
                    return

        async def release() -> None:
            while True:
                due, data = await held.get()
                await asyncio.sleep(max(0.0, due - loop.time()))
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()

        await _together(hold(), release())


async def _together(*work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` at once until all of it ends; the first error cancels the rest and is raised."""
    tasks = [asyncio.ensure_future(each) for each in work]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class PainterPage:
    """The bench notebook's page: pick a picture, paint, clear, zoom; read the kernel's mask from its file."""

    def __init__(self, page: Any, mask_path: Path) -> None:
        self.page = page
        self.mask_path = mask_path
        self.picture = (0, 0)

    def open(self, url: str) -> None:
        self.page.goto(url, wait_until="domcontentloaded", timeout=120_000)
        self.page.locator(".bench-scenario select").wait_for(state="visible", timeout=120_000)
        self.page.locator(".ipyimagegen-mask-canvas").wait_for(state="visible", timeout=60_000)

    def load(self, kind: str, size: tuple[int, int]) -> None:
        """Show a grey or a position-coloured picture, and wait until the page has drawn it."""
        name = f"{kind} {size[0]}x{size[1]}"
        self.page.locator(".bench-scenario select").select_option(name)
        self.page.locator(".bench-ready").get_by_text(f"ready: {name}").wait_for(timeout=60_000)
        self.page.locator(".ipyimagegen-zoom-bar").wait_for(state="visible", timeout=60_000)
        self.page.wait_for_function(PICTURE_JS, arg=[kind, list(size)], timeout=60_000, polling="raf")
        self.picture = size
        self._wait_for_mask(lambda mask: mask.shape == (size[1], size[0]) and not mask.any())
        self.settle()

    def settle(self) -> None:
        """Wait until nothing is painted or pending in the page, then a little more."""
        self.page.wait_for_function(SETTLED_JS, timeout=30_000, polling="raf")
        self.page.wait_for_timeout(200)

    def clear(self) -> None:
        self.page.get_by_role("button", name="Clear mask").click()
        self._wait_for_mask(lambda mask: not mask.any())
        self.settle()

    def stroke(self, moves: int, busy: bool = False) -> Stroke:
        """Draw a raster stroke of ``moves`` moves at a mouse's pace (right after a click on the busy button
        with ``busy``), and find which of its points the kernel's mask has."""
        width, height = self.picture
        points = raster_path(fitted_view(self.picture), moves)
        found = self.page.evaluate(STROKE_JS, {"points": points, "busy": busy, "waitMs": WAIT_MS})
        if found["unpainted"]:
            raise RuntimeError(
                f"the input layer did not draw {len(found['unpainted'])} of {moves} moves at once "
                f"(the first: move {found['unpainted'][0]})"
            )
        scale = width / found["viewWidth"]  # a fitted view: image pixels per view pixel
        spots = [(min(int(y * scale), height - 1), min(int(x * scale), width - 1)) for x, y in points]

        def missing(mask: np.ndarray) -> list[int]:
            return [index for index, spot in enumerate(spots) if not mask[spot]]

        mask = self._wait_for_mask(lambda mask: not missing(mask), timeout_s=WAIT_MS / 1000, fail=False)
        return Stroke(found["showMs"], found["commitMs"], found["sent"], found["clickAt"], missing(mask))

    def zoom(self, steps: int) -> dict[str, Any]:
        """Ctrl+wheel steps at the view's centre, in and out again in turn: their show and crisp times (ms,
        None: never) and the element's CSS transform after them."""
        width, height = fitted_view(self.picture)
        centre = (width / 2, height / 2)
        probes = [
            (centre[0] + sx * 0.3 * width, centre[1] + sy * 0.3 * height) for sx in (-1, 1) for sy in (-1, 1)
        ]
        arguments = {"centre": centre, "probes": probes, "steps": steps, "delta": WHEEL_DELTA, "tolerance": 4,
                     "waitMs": WAIT_MS}  # fmt: skip
        found: dict[str, Any] = self.page.evaluate(ZOOM_JS, arguments)
        return found

    def _wait_for_mask(
        self, test: Callable[[np.ndarray], bool], timeout_s: float = 30.0, fail: bool = True
    ) -> np.ndarray:
        """The kernel's mask as the notebook last wrote it, once ``test(mask)`` holds (or, without ``fail``,
        the last one read when ``timeout_s`` is over)."""
        deadline = time.monotonic() + timeout_s
        mask = np.zeros((0, 0), dtype=bool)
        while True:
            try:
                mask = np.load(self.mask_path)
            except (OSError, ValueError):
                pass  # not written yet
            else:
                if test(mask):
                    return mask
            if time.monotonic() > deadline:
                if fail:
                    raise TimeoutError(
                        f"the kernel's mask ({self.mask_path}) did not reach the state awaited"
                    )
                return mask
            time.sleep(0.05)


@dataclass
class Measured:
    """What one run found."""

    local: dict[tuple[int, int], Stroke]
    busy: Stroke
    zoom: dict[str, Any]
    slow: Stroke

    def busy_to_committed_ms(self) -> float:
        """From the end of the busy period (its length after the click) to the last point shown."""
        assert self.busy.click_ms is not None
        return self.busy.last_commit_ms() - (self.busy.click_ms + BUSY_S * 1000)


def _browser_tools() -> Any:
    """The browser tests' helpers (Voila and headless Chromium), which the test extra installs."""
    sys.path.insert(0, str(ROOT / "tests"))
    import browser

    browser.require_chromium()
    return browser


def _measure(home: Path, moves: int, slow_moves: int, zoom_steps: int) -> Measured:
    browser = _browser_tools()
    mask_path = home / "mask.npy"
    notebook = browser.write_notebook(
        home / "painter.ipynb", NOTEBOOK % (str(mask_path), DISPLAY, BRUSH, BUSY_S, BUSY_S)
    )
    with browser.voila(notebook, home) as url, browser.browser_page(viewport=(1280, 900)) as (page, console):
        painter = PainterPage(page, mask_path)
        painter.open(url)
        local = {}
        for size in SIZES:
            painter.load("grey", size)
            painter.stroke(12)  # warm-up
            painter.clear()
            local[size] = painter.stroke(moves)
            painter.clear()
            say(f"{size[0]}x{size[1]}: {local[size].text()}")
        busy = painter.stroke(BUSY_MOVES, busy=True)  # on the 3840x2160 grey
        painter.clear()
        painter.load("ramp", BIG)
        zoom = painter.zoom(zoom_steps)
        mask_path.unlink(missing_ok=True)  # the next page has a kernel of its own
        with DelayProxy(int(urlsplit(url).port or 80), DELAY_S) as proxy:
            started = time.perf_counter()
            painter.open(f"http://127.0.0.1:{proxy.port}/")
            painter.load("grey", BIG)
            say(
                f"through the proxy: the page and a 3840x2160 picture in {time.perf_counter() - started:.1f} s"
            )
            painter.stroke(12)  # warm-up
            painter.clear()
            slow = painter.stroke(slow_moves)
        problems = console.relevant()
        if problems:
            say(f"console errors: {problems[:5]}")
    return Measured(local, busy, zoom, slow)


def _p95_or_never(values: list[float | None]) -> float:
    return p95([math.inf if value is None else value for value in values])


def _ms_list(values: list[float | None]) -> str:
    return ", ".join("never" if value is None else f"{value:.0f}" for value in values)


def run(options: Options) -> list[Figure]:
    moves, slow_moves, zoom_steps = options.pick((60, 60, 6), (300, 200, 20))
    say(
        f"method: Voila + headless Chromium (flags of tests/browser.py), device pixel ratio 1; view {DISPLAY} px "
        f"at fit, brush {BRUSH} view px, mask opacity 0.5; one PointerEvent per animation frame on the input layer, "
        f"a raster path ({STEP:g} px steps, rows {ROW_GAP:g} px apart); {moves} moves a size (after 12 untimed), "
        f"{BUSY_MOVES} right after a click that keeps the kernel busy {BUSY_S:g} s, {slow_moves} through a proxy "
        f"holding each chunk {DELAY_S * 1000:.0f} ms each way; {zoom_steps} Ctrl+wheel steps (deltaY "
        f"{WHEEL_DELTA:g}: x{math.exp(WHEEL_DELTA * 0.002):.3f}) at 3840x2160; the ipycanvas element is read once "
        f"a frame (commit and crisp times are to the frame that shows them)"
    )
    with tempfile.TemporaryDirectory(prefix="ipyimagegen-bench-painter-") as folder:
        found = _measure(Path(folder), moves, slow_moves, zoom_steps)
    freed = found.busy_to_committed_ms()
    say(
        f"kernel busy {BUSY_S:g} s, 3840x2160: {found.busy.text()}; all committed {freed:.0f} ms after it freed"
    )
    say(f"{DELAY_S * 2000:.0f} ms round trip, 3840x2160: {found.slow.text()}")
    zoom = found.zoom
    say(
        f"zoom steps at 3840x2160: shows {_ms_list(zoom['showMs'])} ms; crisp {_ms_list(zoom['crispMs'])} ms; "
        f"the ipycanvas element's CSS transform after them: {zoom['transform']}"
        + ("" if zoom["transform"] == "none" else " (it should be none: the page kept a preview)")
    )
    frame, commit = Goal(FRAME_GOAL_MS), Goal(COMMIT_GOAL_MS)
    figures = [
        Figure(
            f"painter in a browser: stroke shows at {w}x{h}, p95",
            p95(found.local[(w, h)].show_ms),
            "ms",
            frame,
        )
        for w, h in SIZES
    ]
    figures += [
        Figure(f"painter in a browser: committed to ipycanvas at {w}x{h}, p95", found.local[(w, h)].commit_p95(),
               "ms", commit)
        for w, h in SIZES
    ]  # fmt: skip
    none = Goal(0, compare="<=")
    figures += [
        Figure("painter, 100 ms round trip: stroke shows at 3840x2160, p95", p95(found.slow.show_ms), "ms", frame),
        Figure("painter, 100 ms round trip: committed to ipycanvas, p95", found.slow.commit_p95(), "ms"),
        Figure("painter, 100 ms round trip: points lost", found.slow.lost, "points", none),
        Figure("painter, kernel busy 2 s: stroke shows, p95", p95(found.busy.show_ms), "ms", frame),
        Figure("painter, kernel busy 2 s: from its end to all points committed", freed, "ms"),
        Figure("painter, kernel busy 2 s: points lost", found.busy.lost, "points", none),
        Figure("painter: zoom step shows at 3840x2160, p95", _p95_or_never(zoom["showMs"]), "ms", frame),
        Figure("painter: zoom step crisp at 3840x2160, p95", _p95_or_never(zoom["crispMs"]), "ms",
               Goal(CRISP_GOAL_MS)),
    ]  # fmt: skip
    return figures
