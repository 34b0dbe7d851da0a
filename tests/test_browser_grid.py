"""The result grid in a real browser (Voila + headless Chromium), driven as a user does: by the
labels on the buttons and what is in the viewport."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from browser import browser_page, require_chromium, voila, write_notebook

pytestmark = pytest.mark.browser

GENERATE_TAB = ".ipyimagegen-studio .ipyimagegen-generate-tab"
TILES = ".ipyimagegen-results .ipyimagegen-tile"
TILE_IMAGES = f"{TILES} img.ipyimagegen-tile-image"
VIEWPORT = (1280, 720)

GRID_CELL = textwrap.dedent(
    """
    from ipyimagegen.widgets import studio

    s = studio(gallery=False)  # the offline preview engine
    s.generate_tab.params.model = "dall-e-2"
    s.generate_tab.params.size = "256x256"
    s.generate_tab.params.n = 4
    s.grid.page_size = 8
    s
    """
)


def _in_viewport(page: Any, locator: Any) -> bool:
    box = locator.bounding_box()
    width, height = page.viewport_size["width"], page.viewport_size["height"]
    return (
        box is not None
        and box["y"] >= 0
        and box["x"] >= 0
        and box["y"] + box["height"] <= height + 1
        and (box["x"] + box["width"] <= width + 1)
    )


def _generate(page: Any, prompt: str, shown: int) -> None:
    page.locator(f"{GENERATE_TAB} .ipyimagegen-prompt textarea").fill(prompt)
    page.locator(f"{GENERATE_TAB} .ipyimagegen-generate").click()
    page.wait_for_function(
        f"Array.from(document.querySelectorAll({TILE_IMAGES!r})).filter(i => i.naturalWidth > 0).length === {shown}",
        timeout=30_000,
    )


def test_the_viewer_pages_and_tile_actions_work_from_any_row(tmp_path: Path) -> None:
    require_chromium()
    from playwright.sync_api import expect

    notebook = write_notebook(tmp_path / "grid.ipynb", GRID_CELL)
    with voila(notebook, tmp_path) as url, browser_page(viewport=VIEWPORT) as (page, console):
        page.goto(url, wait_until="domcontentloaded", timeout=60_000)
        page.locator(f"{GENERATE_TAB} .ipyimagegen-prompt textarea").wait_for(state="visible", timeout=60_000)
        _generate(page, "a red lighthouse", 4)
        _generate(page, "a green forest", 8)
        tiles = page.locator(TILES)
        rows = {round(tiles.nth(i).bounding_box()["y"]) for i in range(8)}
        assert len(rows) >= 2, rows  # two rows at least, so the last tile is below the first

        # Enlarge on the last tile, scrolled into view: the viewer opens in the viewport, over the page.
        last = tiles.nth(7)
        last.scroll_into_view_if_needed()
        last.get_by_role("button", name="Enlarge").click()
        viewer = page.get_by_role("dialog")
        expect(viewer).to_be_visible(timeout=10_000)
        page.wait_for_function(
            "(() => { const i = document.querySelector('.ipyimagegen-lightbox img.ipyimagegen-preview-image');"
            " return i && i.naturalWidth === 256; })()",
            timeout=10_000,
        )
        panel = page.locator(".ipyimagegen-lightbox-panel")
        assert _in_viewport(page, panel)
        expect(viewer).to_contain_text("a red lighthouse")
        expect(viewer).to_contain_text("#1")
        expect(viewer).to_contain_text("4/4")
        page.screenshot(path=str(tmp_path / "grid-viewer.png"))
        page.keyboard.press("ArrowLeft")  # the result before it
        expect(viewer).to_contain_text("3/4", timeout=10_000)
        page.keyboard.press("Escape")
        expect(page.locator(".ipyimagegen-lightbox")).to_have_count(0, timeout=10_000)

        # Edit on a tile of the second row: the painter's top at the top of the window, the keys its,
        # and the tile's prompt in the Edit tab.
        last.scroll_into_view_if_needed()
        page.mouse.wheel(0, 400)
        last.get_by_role("button", name="Edit").click()
        edit_prompt = page.locator(".ipyimagegen-edit-tab .ipyimagegen-prompt textarea")
        expect(edit_prompt).to_have_value("a red lighthouse", timeout=20_000)
        page.wait_for_function(
            "(() => { const p = document.querySelector('.ipyimagegen-edit-tab .ipyimagegen-mask-painter');"
            " const r = p.getBoundingClientRect(); return Math.abs(r.top) <= 2"
            " && document.activeElement === p.querySelector('.ipyimagegen-painter-box'); })()",
            timeout=10_000,
        )
        page.screenshot(path=str(tmp_path / "grid-edit.png"))
        page.get_by_role("tab", name="Generate").click()

        # A third request: the page holds 8 tiles; the oldest are one click away.
        _generate(page, "a blue lake", 8)
        pager = page.locator(".ipyimagegen-pager")
        expect(pager).to_contain_text("1–8 of 12")
        expect(tiles).to_have_count(8)
        pager.get_by_role("button", name="Older").click()
        expect(pager).to_contain_text("9–12 of 12", timeout=10_000)
        expect(tiles).to_have_count(4)
        expect(tiles.first.locator(".ipyimagegen-tile-prompt")).to_have_text("a red lighthouse")
        page.wait_for_function(
            f"Array.from(document.querySelectorAll({TILE_IMAGES!r})).filter(i => i.naturalWidth > 0).length === 4",
            timeout=10_000,
        )
        pager.get_by_role("button", name="Newer").click()
        expect(tiles.first.locator(".ipyimagegen-tile-prompt")).to_have_text("a blue lake", timeout=10_000)

        # Clear results: nothing left in view, and a notice in the viewport says so, then goes away.
        page.get_by_role("button", name="Clear results").click()
        expect(tiles).to_have_count(0, timeout=10_000)
        notice = page.get_by_role("status").filter(has_text="Cleared 12 results")
        expect(notice).to_be_visible(timeout=10_000)
        assert _in_viewport(page, notice)
        assert console.relevant() == [], console.relevant()


FORMATS_CELL = textwrap.dedent(
    """
    from ipyimagegen.widgets import studio

    s = studio(gallery=False)  # the offline preview engine
    s.generate_tab.params.model = "gpt-image-2.6-flare"
    s.generate_tab.params.output_format = "gif"
    s.generate_tab.params.frame_count = 4
    s.generate_tab.params.frame_duration_ms = 100
    s
    """
)

# The viewer's picture drawn into a canvas (a canvas gets a GIF's first frame only: see the test).
_PIXELS = """(img) => {
    const canvas = document.createElement('canvas');
    canvas.width = 64; canvas.height = 64;
    const context = canvas.getContext('2d');
    context.drawImage(img, 0, 0, 64, 64);
    return Array.from(context.getImageData(0, 0, 64, 64).data).join(',');
}"""


def test_a_gif_tile_plays_and_an_svg_shows_in_the_viewer_as_a_picture(tmp_path: Path) -> None:
    require_chromium()
    from playwright.sync_api import expect

    notebook = write_notebook(tmp_path / "formats.ipynb", FORMATS_CELL)
    with voila(notebook, tmp_path) as url, browser_page(viewport=VIEWPORT) as (page, console):
        page.goto(url, wait_until="domcontentloaded", timeout=60_000)
        page.locator(f"{GENERATE_TAB} .ipyimagegen-prompt textarea").wait_for(state="visible", timeout=60_000)
        _generate(page, "a red kite over the sea", 1)
        gif_tile = page.locator(TILES).first
        expect(gif_tile.locator(".ipyimagegen-tile-badge")).to_have_text("GIF")
        picture = gif_tile.locator("img.ipyimagegen-tile-image")
        seen = set()
        for _ in range(8):  # four frames of 100 ms: a second shows several of them (as drawn on screen:
            seen.add(picture.screenshot(animations="allow"))  # a canvas would only get the first frame)
            page.wait_for_timeout(130)
        assert len(seen) >= 2, "the GIF's tile does not animate"

        # SVG: picked in the Format list, as a user does; its tile shows a raster picture.
        page.locator(f"{GENERATE_TAB} .ipyimagegen-more-settings").get_by_text("More settings").click()
        format_row = page.locator(f"{GENERATE_TAB} .ipyimagegen-params .widget-hbox").filter(
            has_text="Format"
        )
        format_row.locator("select").select_option("svg")
        _generate(page, "a lighthouse <script>window.hacked = 1</script> at dusk", 2)
        svg_tile = page.locator(TILES).first
        expect(svg_tile.locator(".ipyimagegen-tile-badge")).to_have_text("SVG")
        assert svg_tile.locator("img.ipyimagegen-tile-image").evaluate("(i) => i.src.startsWith('blob:')")
        svg_tile.get_by_role("button", name="Enlarge").click()
        viewer = page.get_by_role("dialog")
        expect(viewer).to_be_visible(timeout=10_000)
        page.wait_for_function(
            "(() => { const i = document.querySelector('.ipyimagegen-lightbox img.ipyimagegen-preview-image');"
            " return i && i.complete && i.naturalWidth === 1024; })()",
            timeout=10_000,
        )
        shown = page.locator(".ipyimagegen-lightbox img.ipyimagegen-preview-image")
        assert shown.evaluate(
            "(i) => i.src.startsWith('blob:') && i.classList.contains('ipyimagegen-preview-vector')"
        )
        box = shown.bounding_box()
        assert box is not None and box["width"] > 400  # drawn large, not at an <img>'s default 300 px
        colours = set(shown.evaluate(_PIXELS).split(","))
        assert len(colours) > 20  # a picture, not an empty box
        # the drawing is shown as an image: none of its markup is in the page, and its prompt's script never ran
        assert (
            page.evaluate(
                "document.querySelectorAll('.ipyimagegen-lightbox svg, .ipyimagegen-grid svg').length"
            )
            == 0
        )
        assert page.evaluate("window.hacked === undefined")
        expect(viewer).to_contain_text("1024×1024 (SVG: it scales)")
        page.screenshot(path=str(tmp_path / "formats-viewer.png"))

        # The next result in the viewer is the GIF: it plays there too.
        page.keyboard.press("ArrowRight")
        expect(viewer).to_contain_text("4 frames × 100 ms, looping", timeout=10_000)
        page.wait_for_function(
            "(() => { const i = document.querySelector('.ipyimagegen-lightbox img.ipyimagegen-preview-image');"
            " return i && i.complete && i.naturalWidth === 1024; })()",
            timeout=10_000,
        )
        seen = set()
        for _ in range(8):
            seen.add(shown.screenshot(animations="allow"))
            page.wait_for_timeout(130)
        assert len(seen) >= 2, "the GIF does not play in the viewer"
        page.keyboard.press("Escape")
        expect(page.locator(".ipyimagegen-lightbox")).to_have_count(0, timeout=10_000)
        page.screenshot(path=str(tmp_path / "formats-grid.png"))
        assert console.relevant() == [], console.relevant()
