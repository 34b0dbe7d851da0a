"""The result grid in a real browser: click to new tiles, and the page's memory, at 4 and at 1,000 results.

The studio runs in Voila (headless Chromium, as the browser tests drive it) on the preview engine
(dall-e-2, 256x256, n=4, no gallery). A button in the notebook adds results straight into the
grid, as earlier generations would have, so the session reaches 1,000 results in seconds. Each
timed run clicks Generate and waits until the page shows four new thumbnails, loaded; the same
runs are timed at 4 results and at 1,000. The page's JavaScript heap (after a forced garbage
collection) and its DOM element count are read over the Chrome DevTools protocol at each point.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from .report import RATIO, Figure, Goal, Options, say

ROOT = Path(__file__).resolve().parent.parent
MANY = 1000
GOAL_RATIO = 1.5

NOTEBOOK = textwrap.dedent(
    """
    import ipywidgets as widgets
    from ipyimagegen.api.types import GenerateRequest
    from ipyimagegen.engines.preview import PreviewEngine
    from ipyimagegen.widgets import studio

    engine = PreviewEngine()
    s = studio(engine, gallery=False)
    tab = s.generate_tab
    tab.params.model, tab.params.size, tab.params.n = "dall-e-2", "256x256", 4
    earlier = engine.generate(prompt="an earlier result", model="dall-e-2", size="256x256", n=4)
    fill = widgets.Button(description="Add earlier results")
    fill.add_class("bench-fill")

    def add(_button, target=%d):
        with s.grid.changes():
            while len(s.grid.tiles) < target:
                s.grid.add_response(earlier)
        fill.description = f"{len(s.grid.tiles)} results"

    fill.on_click(add)
    widgets.VBox([fill, s])
    """
)

TILE_IMAGES = ".ipyimagegen-results .ipyimagegen-tile img.ipyimagegen-tile-image"


def _browser_tools() -> Any:
    """The browser tests' helpers (Voila and headless Chromium), which the test extra installs."""
    sys.path.insert(0, str(ROOT / "tests"))
    import browser

    browser.require_chromium()
    return browser


def _click_to_tiles(page: Any, prompt: str) -> float:
    """Seconds from the Generate click until four new thumbnails of ``prompt`` show, loaded."""
    page.locator(".ipyimagegen-generate-tab .ipyimagegen-prompt textarea").fill(prompt)
    button = page.locator(".ipyimagegen-generate-tab .ipyimagegen-generate")
    script = (
        "(prompt) => Array.from(document.querySelectorAll('.ipyimagegen-results .ipyimagegen-tile'))"
        ".filter(t => t.querySelector('.ipyimagegen-tile-prompt').textContent === prompt)"
        ".filter(t => { const i = t.querySelector('img.ipyimagegen-tile-image');"
        " return i && i.complete && i.naturalWidth > 0; }).length === 4"
    )
    started = time.perf_counter()
    button.click()
    page.wait_for_function(script, arg=prompt, timeout=60_000, polling="raf")
    elapsed = time.perf_counter() - started
    page.wait_for_function(  # the job is over (its status line) before the next click
        "() => document.querySelector('.ipyimagegen-generate-tab .ipyimagegen-status').textContent.includes('images in')",
        timeout=60_000,
    )
    return elapsed


def _memory(page: Any, cdp: Any) -> tuple[float, int]:
    """The page's JS heap in MB after a garbage collection, and its DOM element count."""
    cdp.send("HeapProfiler.collectGarbage")
    used = cdp.send("Runtime.getHeapUsage")["usedSize"] / 1e6
    return used, int(page.evaluate("document.getElementsByTagName('*').length"))


def run(options: Options) -> list[Figure]:
    repeats = options.pick(3, 7)
    browser = _browser_tools()
    say(
        f"method: Voila + headless Chromium; preview engine, dall-e-2 256x256 n=4, no gallery; click Generate -> "
        f"4 new thumbnails loaded in the page; median of {repeats} at 4 results and at {MANY} "
        f"(earlier results added by a button in the notebook); heap after a forced GC (DevTools protocol)"
    )
    with tempfile.TemporaryDirectory(prefix="ipyimagegen-bench-grid-") as folder:
        home = Path(folder)
        notebook = browser.write_notebook(home / "grid.ipynb", NOTEBOOK % MANY)
        with browser.voila(notebook, home) as url, browser.browser_page(viewport=(1280, 900)) as (page, _):
            cdp = page.context.new_cdp_session(page)
            page.goto(url, wait_until="domcontentloaded", timeout=60_000)
            page.locator(".ipyimagegen-generate-tab .ipyimagegen-prompt textarea").wait_for(
                state="visible", timeout=60_000
            )
            _click_to_tiles(page, "warm-up")
            few = []
            for k in range(repeats):  # each from an empty grid: the cost at 4 results
                page.get_by_role("button", name="Clear results").click()
                page.locator(".ipyimagegen-tile").first.wait_for(state="detached", timeout=30_000)
                few.append(_click_to_tiles(page, f"few {k}"))
            few_heap, few_nodes = _memory(page, cdp)
            few_count = page.locator(".ipyimagegen-tile").count()
            page.locator(".bench-fill").click()
            page.wait_for_function(
                f"() => document.querySelector('.bench-fill').textContent.includes('{MANY} results')",
                timeout=120_000,
            )
            many = [_click_to_tiles(page, f"many {k}") for k in range(repeats)]
            many_heap, many_nodes = _memory(page, cdp)
            total = page.locator(".ipyimagegen-pager").inner_text()
    few_ms, many_ms = statistics.median(few) * 1000, statistics.median(many) * 1000
    say(
        f"at {few_count} tiles: {few_ms:.0f} ms, heap {few_heap:.1f} MB, {few_nodes} elements; "
        f"at {MANY}+ results (pager: {' '.join(total.split())}): {many_ms:.0f} ms, heap {many_heap:.1f} MB, "
        f"{many_nodes} elements"
    )
    bounded = Goal(GOAL_RATIO, on=RATIO, compare="<=")  # the same cost at 1,000 results as at 4
    return [
        Figure(
            f"grid in a browser: click to 4 new tiles at {MANY} results vs at 4",
            many_ms,
            "ms",
            bounded,
            few_ms,
        ),
        Figure(f"grid in a browser: JS heap at {MANY} results vs at 4", many_heap, "MB", bounded, few_heap),
    ]
