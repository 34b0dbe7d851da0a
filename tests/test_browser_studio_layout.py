"""The studio fits one screen, in a real browser, at 1400x900 and 900x800: in Voila, and in
JupyterLab with the file browser open, light and dark.

After Edit on a result, the painter's top is at the top of the window, and its tools, the canvas,
the prompt and the Edit image button are all in view at once; on a wide page the results sit beside
the Generate tab's controls, on a narrow one under them.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from browser import (
    browser_page,
    jupyter_lab,
    lab_open_notebook,
    lab_run_all,
    require_chromium,
    voila,
    write_notebook,
)

pytestmark = pytest.mark.browser

STUDIO = ".ipyimagegen-studio"
EDIT = f"{STUDIO} .ipyimagegen-edit-tab"
TILES = f"{STUDIO} .ipyimagegen-results .ipyimagegen-tile"
SIZES = [(1400, 900), (900, 800)]

CELL = textwrap.dedent(
    """
    import ipyimagegen as ig
    from ipyimagegen.api.types import GenerateRequest

    engine = ig.PreviewEngine()
    s = ig.studio(engine, draft_name="layout test")
    s.grid.add_response(engine.run(GenerateRequest(prompt="a red lighthouse", model="gpt-image-2", size="1536x1024")))
    s
    """
)

SHOWN_JS = """(node) => {
    // The part of the page that scrolls and shows: the window (Voila), the notebook's panel (JupyterLab).
    for (let n = node.parentElement; n; n = n.parentElement) {
        const overflow = getComputedStyle(n).overflowY;
        if ((overflow === 'auto' || overflow === 'scroll') && n.scrollHeight > n.clientHeight + 1) {
            const r = n.getBoundingClientRect();
            return [r.top, r.top + n.clientHeight];
        }
    }
    return [0, window.innerHeight];
}"""

IN_VIEW_JS = f"""(selectors) => selectors.map((selector) => {{
    const node = document.querySelector(selector);
    if (!node) return [selector, 'missing'];
    const [top, bottom] = ({SHOWN_JS})(node);
    const r = node.getBoundingClientRect();
    return [selector, r.top >= top - 1 && r.bottom <= bottom + 1 && r.height > 0 ? 'in view' : `${{r.top}}..${{r.bottom}} of ${{top}}..${{bottom}}`];
}})"""


def _edit_from_a_tile_fits_one_screen(page: Any, shots: Path, name: str) -> None:
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Generate").click()
    tile = page.locator(TILES).first
    tile.scroll_into_view_if_needed()
    tile.get_by_role("button", name="Edit").click()
    expect(page.locator(f"{EDIT} .ipyimagegen-prompt textarea")).to_have_value(
        "a red lighthouse", timeout=20_000
    )
    page.wait_for_function(  # the painter's top at the top of what shows
        f"() => {{ const p = document.querySelector('{EDIT} .ipyimagegen-mask-painter');"
        f" return Math.abs(p.getBoundingClientRect().top - ({SHOWN_JS})(p)[0]) <= 2; }}",
        timeout=10_000,
    )
    page.wait_for_timeout(500)  # the painter sized to the window
    page.screenshot(path=str(shots / f"{name}.png"))
    where = page.evaluate(
        IN_VIEW_JS,
        [
            f"{EDIT} .ipyimagegen-mask-painter .widget-toggle-buttons",  # the tools
            f"{EDIT} canvas.ipyimagegen-painter-canvas",
            f"{EDIT} .ipyimagegen-prompt textarea",
            f"{EDIT} .ipyimagegen-edit-run",
        ],
    )
    assert all(state == "in view" for _selector, state in where), (name, where)
    canvas = page.locator(f"{EDIT} canvas.ipyimagegen-painter-canvas").bounding_box()
    assert canvas is not None and canvas["width"] >= 400, canvas  # as large as the page allows


def _results_beside_or_under(page: Any, wide: bool) -> None:
    page.get_by_role("tab", name="Generate").click()
    prompt = page.locator(f"{STUDIO} .ipyimagegen-generate-tab .ipyimagegen-prompt textarea").bounding_box()
    tile = page.locator(TILES).first.bounding_box()
    assert prompt is not None and tile is not None
    if wide:
        assert tile["x"] >= prompt["x"] + prompt["width"], (prompt, tile)  # beside the controls
    else:
        assert tile["y"] >= prompt["y"] + prompt["height"], (prompt, tile)  # under them


def test_voila_the_studio_fits_one_screen_at_1400_and_900(tmp_path: Path) -> None:
    require_chromium()
    notebook = write_notebook(tmp_path / "studio.ipynb", CELL)
    with voila(notebook, tmp_path) as url:
        for width, height in SIZES:
            with browser_page((width, height)) as (page, console):
                page.goto(url, wait_until="domcontentloaded", timeout=60_000)
                page.locator(TILES).first.wait_for(state="visible", timeout=60_000)
                _results_beside_or_under(page, wide=width >= 1100 + 40)
                _edit_from_a_tile_fits_one_screen(page, tmp_path, f"voila-{width}")
                assert console.relevant() == []


def test_lab_with_the_file_browser_open_light_and_dark_the_studio_fits_one_screen(tmp_path: Path) -> None:
    require_chromium()
    root = tmp_path / "root"
    root.mkdir()
    write_notebook(root / "studio.ipynb", CELL)
    with jupyter_lab(root, tmp_path) as lab, browser_page(SIZES[0]) as (page, console):
        try:
            lab_open_notebook(page, lab, "studio.ipynb", workspace="layout")
            page.evaluate("() => window.jupyterapp.commands.execute('filebrowser:activate')")
            cells = lab_run_all(page)
            assert all(cell.errors() == [] for cell in cells), [cell.errors() for cell in cells]
            page.locator(TILES).first.wait_for(state="visible", timeout=60_000)
            assert page.locator("#filebrowser").is_visible()
            _edit_from_a_tile_fits_one_screen(page, tmp_path, "lab-light-1400")
            page.evaluate(
                "() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})"
            )
            page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=30_000)
            page.set_viewport_size({"width": SIZES[1][0], "height": SIZES[1][1]})
            _edit_from_a_tile_fits_one_screen(page, tmp_path, "lab-dark-900")
            shade = page.locator(f"{EDIT} .ipyimagegen-mask-painter .widget-label").last.evaluate(
                "e => getComputedStyle(e).color"
            )
            assert sum(int(part) for part in re.findall(r"\d+", shade)[:3]) > 3 * 150, shade  # light on dark
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            raise


def test_voila_the_editing_loop_cycles_the_results_on_the_painter_and_accepts_one(tmp_path: Path) -> None:
    require_chromium()
    from playwright.sync_api import expect

    notebook = write_notebook(tmp_path / "studio.ipynb", CELL)
    with voila(notebook, tmp_path) as url, browser_page(SIZES[1]) as (page, console):
        page.goto(url, wait_until="domcontentloaded", timeout=60_000)
        page.locator(TILES).first.wait_for(state="visible", timeout=60_000)
        _edit_from_a_tile_fits_one_screen(page, tmp_path, "loop-start")
        canvas = page.locator(f"{EDIT} .ipyimagegen-mask-canvas")
        box = canvas.bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] / 2 + 60, box["y"] + box["height"] / 2 + 20, steps=4)
        page.mouse.up()
        images = (
            page.locator(f"{EDIT} .ipyimagegen-params .widget-hbox")
            .filter(has_text="Images")
            .locator("input")
        )
        images.fill("2")
        images.press("Enter")
        page.locator(f"{EDIT} .ipyimagegen-edit-run").click()
        box = canvas.bounding_box()  # where the click left the page
        assert box is not None
        candidates = page.locator(f"{EDIT} .ipyimagegen-candidates")
        expect(candidates).to_contain_text("Result 1 of 2", timeout=30_000)  # on the painter, at once
        expect(page.locator(f"{EDIT} .ipyimagegen-compare-toggle input")).to_be_checked()
        box = canvas.bounding_box()  # the painter is still in view: the results are on it, not below
        assert box is not None and box["y"] >= -40 and box["y"] + box["height"] <= SIZES[1][1], box
        page.mouse.move(
            box["x"] + 40, box["y"] + box["height"] / 2
        )  # keys go to the painter under the pointer
        page.keyboard.press("ArrowRight")
        expect(candidates).to_contain_text("Result 2 of 2", timeout=10_000)
        page.screenshot(path=str(tmp_path / "loop-candidates.png"))
        candidates.get_by_role("button", name="Accept").click()
        expect(candidates).to_be_hidden(timeout=10_000)
        status = page.locator(f"{EDIT} .ipyimagegen-status")
        expect(status).to_contain_text("Accepted result 2 of 2", timeout=10_000)
        expect(page.locator(f"{EDIT} .ipyimagegen-mask-painter")).to_contain_text(
            "0.0% marked"
        )  # a clean mask
        assert page.locator(TILES).count() == 3  # the results stay in the grid
        assert console.relevant() == []
