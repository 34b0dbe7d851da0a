"""The notebooks in notebooks/ in a real browser: Voila and JupyterLab, headless Chromium.

Each notebook is copied into a folder of its own and served with no OpenAI, Azure or
ipyimagegen settings, so the studio runs on the offline preview engine. One JupyterLab server
is shared by the Lab tests of this module; each test opens its notebook in a fresh workspace.
A failing test leaves a screenshot of its page in its tmp folder.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser import (
    Console,
    LabCell,
    LabServer,
    chromium,
    jupyter_lab,
    lab_cells,
    lab_open_notebook,
    lab_run_all,
    lab_run_code,
    loaded_images,
    new_page,
    page_problems,
    require_chromium,
    voila,
)

pytestmark = pytest.mark.browser

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
QUICKSTART = "01-quickstart.ipynb"
EDITS = "02-edits-with-masks.ipynb"
STUDIO = ".ipyimagegen-studio"
GENERATE_TAB = f"{STUDIO} .ipyimagegen-generate-tab"
EDIT_TAB = f"{STUDIO} .ipyimagegen-edit-tab"
RESULT_IMAGES = ".ipyimagegen-results .ipyimagegen-grid .ipyimagegen-tile img.ipyimagegen-tile-image"
MASK_CANVAS = "canvas.ipyimagegen-mask-canvas, .ipyimagegen-mask-canvas canvas"
#: The notebook's own painter (the studio's Edit tab has another).
NOTEBOOK_PAINTER = f".ipyimagegen-mask-painter:not({STUDIO} .ipyimagegen-mask-painter)"
MADE = re.compile(r"(\d+) images? in [\d.]+ s")
#: Console errors that point at this package or at a widget that could not be shown: they fail a
#: test even when they also look like known noise (a version warning, a blocked request).
WIDGET_CONSOLE_ERROR = re.compile(
    r"ipyimagegen|ipycanvas|Could not (create|render|display)|Error (displaying|rendering|creating)"
    r"|Failed to (create|render|display)|not found in (module|registry)|pageerror:.*widget",
    re.IGNORECASE,
)


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module (each test gets a page of its own)."""
    require_chromium()
    with chromium() as running:
        yield running


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, Console]]:
    """A fresh page and its console; when the test fails, a screenshot of the page is kept in
    the test's tmp folder as ``failure.png``.

    A failed call phase is counted in ``session.testsfailed`` before this fixture is torn down.
    """
    failed_before = request.session.testsfailed
    page, console = new_page(browser)
    yield page, console
    if request.session.testsfailed > failed_before:
        with_failure = tmp_path / "failure.png"
        page.screenshot(path=str(with_failure), full_page=True)
        print(f"screenshot of the failed page: {with_failure}")  # shown with the failure report
    page.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """One JupyterLab for the module, serving a copy of the notebooks."""
    require_chromium()
    root = tmp_path_factory.mktemp("lab-root")
    for name in (QUICKSTART, EDITS):
        shutil.copy(NOTEBOOKS_DIR / name, root / name)
    with jupyter_lab(root, tmp_path_factory.mktemp("lab-home")) as server:
        yield server


# -- checks shared by the tests ------------------------------------------------------------------


def generate_in_studio(page: Any, prompt: str) -> int:
    """Type ``prompt`` in the studio, click Generate and wait for the result tiles' images;
    returns how many images were made."""
    from playwright.sync_api import expect

    tab = page.locator(GENERATE_TAB)
    tab.locator(".ipyimagegen-prompt textarea").fill(prompt)
    tab.locator(".ipyimagegen-generate").click()
    status = tab.locator(".ipyimagegen-status")
    expect(status).to_have_text(MADE, timeout=30_000)
    made = int(MADE.search(status.inner_text()).group(1))  # type: ignore[union-attr]
    assert made >= 1
    page.wait_for_function(
        "([s, n]) => { const all = Array.from(document.querySelectorAll(s));"
        " return all.length === n && all.every(i => i.complete && i.naturalWidth > 0); }",
        arg=[RESULT_IMAGES, made],
        timeout=30_000,
    )
    assert loaded_images(page, RESULT_IMAGES) == (made, made)
    return made


def assert_backend_is_the_preview_engine(page: Any) -> None:
    line = page.locator(f"{STUDIO} .ipyimagegen-backend").inner_text()
    assert "preview engine" in line.lower(), line


def assert_console_clean(console: Console) -> None:
    """No console error that points at this package or at widget rendering, nor any other that
    is not known noise (see ``browser.IGNORED_CONSOLE``)."""
    widget_errors = [text for text in console.errors if WIDGET_CONSOLE_ERROR.search(text)]
    assert widget_errors == [], widget_errors
    assert console.relevant() == [], console.relevant()


def assert_all_ran_cleanly(cells: list[LabCell], notebook: str) -> None:
    """Every code cell ran (a count, shown as ``[N]`` in its prompt) with no error or stderr."""
    code = [cell for cell in cells if cell.type == "code"]
    assert code, f"{notebook} has no code cell"
    for cell in code:
        where = f"{notebook}: {cell.source[:50]!r}"
        assert cell.execution_count is not None, f"{where} did not run"
        assert re.fullmatch(rf"\[{cell.execution_count}\]:?", cell.prompt), f"{where} shows {cell.prompt!r}"
        assert cell.errors() == [], f"{where} failed:\n" + "\n".join(cell.errors())
    counts = [cell.execution_count for cell in code]
    assert counts == sorted(counts) and len(set(counts)) == len(counts), counts


def studio_is_shown(page: Any) -> None:
    page.locator(f"{GENERATE_TAB} .ipyimagegen-prompt textarea").wait_for(state="visible", timeout=30_000)
    assert page_problems(page) == [], page_problems(page)


# -- Voila ---------------------------------------------------------------------------------------


def test_voila_quickstart_generates_images(page: tuple[Any, Console], tmp_path: Path) -> None:
    browser_page, console = page
    folder = tmp_path / "notebooks"
    folder.mkdir()
    notebook = Path(shutil.copy(NOTEBOOKS_DIR / QUICKSTART, folder / QUICKSTART))
    with voila(notebook, tmp_path) as url:
        browser_page.goto(url, wait_until="domcontentloaded", timeout=60_000)
        studio_is_shown(browser_page)
        assert_backend_is_the_preview_engine(browser_page)

        generate_in_studio(browser_page, "a lighthouse on a cliff at dusk")

        assert page_problems(browser_page) == [], page_problems(browser_page)
        assert browser_page.locator('[data-mime-type="application/vnd.jupyter.stderr"]').count() == 0
        assert_console_clean(console)


# -- JupyterLab ----------------------------------------------------------------------------------


def test_lab_quickstart_runs_and_generates_images(page: tuple[Any, Console], lab: LabServer) -> None:
    browser_page, console = page
    lab_open_notebook(browser_page, lab, QUICKSTART, workspace="quickstart")

    cells = lab_run_all(browser_page)

    assert_all_ran_cleanly(cells, QUICKSTART)
    studio_is_shown(browser_page)
    assert_backend_is_the_preview_engine(browser_page)
    generate_in_studio(browser_page, "a red fox in a snowy forest")
    assert_console_clean(console)


def test_lab_mask_painter_paints_where_the_mouse_drags(page: tuple[Any, Console], lab: LabServer) -> None:
    browser_page, console = page
    lab_open_notebook(browser_page, lab, EDITS, workspace="edits")

    assert_all_ran_cleanly(lab_run_all(browser_page), EDITS)
    assert page_problems(browser_page) == [], page_problems(browser_page)
    before = painted_fraction(browser_page)
    assert before > 0, "the notebook paints the sky when nothing was painted"

    painter = browser_page.locator(NOTEBOOK_PAINTER)
    canvas = painter.locator(MASK_CANVAS).first
    canvas.scroll_into_view_if_needed()
    area = canvas.bounding_box()
    assert area and area["width"] > 100 and area["height"] > 100, area
    status = painter.locator("> .widget-label")
    status_before = status.inner_text()
    # Across the lower part of the picture: below the sky that the notebook painted.
    y = area["y"] + area["height"] * 0.85
    browser_page.mouse.move(area["x"] + area["width"] * 0.1, y)
    browser_page.mouse.down()
    browser_page.mouse.move(area["x"] + area["width"] * 0.5, y, steps=4)
    browser_page.mouse.move(area["x"] + area["width"] * 0.9, y, steps=4)
    browser_page.mouse.up()
    browser_page.wait_for_function(
        "([el, old]) => el.innerText !== old", arg=[status.element_handle(), status_before], timeout=15_000
    )

    after = painted_fraction(browser_page)
    assert after > before, (before, after)
    assert f"{after:.1%}" in status.inner_text()
    assert_all_ran_cleanly(lab_cells(browser_page), EDITS)
    assert_console_clean(console)


def painted_fraction(page: Any) -> float:
    """``painter.painted_fraction`` read from the notebook's kernel, through a new cell."""
    cell = lab_run_code(page, "print(repr(painter.painted_fraction))")
    assert cell.errors() == [], cell.errors()
    return float(cell.stdout())


EDIT_PROMPT = "a hot air balloon over the water"
#: Run in the kernel: what the Edit tab's mask covers, and how much of the edited picture changed
#: inside it and outside it (the preview engine keeps every pixel outside the mask).
EDIT_REPORT = """
import numpy as np
_tab = Out[{count}].edit_tab
_edited = [image for image in Out[{count}].grid.images if image.prompt == {prompt!r}]
_picture = _tab.prepared.picture
_before = np.asarray(_picture.convert("RGB"), dtype=np.int16)
_after = np.asarray(_edited[0].to_pil().convert("RGB").resize(_picture.size), dtype=np.int16)
_changed = np.abs(_after - _before).max(axis=-1) > 0
_mask = _tab.painter.mask
print(len(_edited), _mask.mean(), _changed[_mask].mean(), _changed[~_mask].mean())
"""


def test_lab_studio_edits_the_area_painted_with_the_mouse(page: tuple[Any, Console], lab: LabServer) -> None:
    browser_page, console = page
    lab_open_notebook(browser_page, lab, QUICKSTART, workspace="studio-edit")
    cells = lab_run_all(browser_page)
    assert_all_ran_cleanly(cells, QUICKSTART)
    studio_cell = next(cell for cell in cells if "ig.studio()" in cell.source)
    studio_is_shown(browser_page)
    made = generate_in_studio(browser_page, "a calm lake below mountains")

    browser_page.locator(f"{STUDIO} .ipyimagegen-results .ipyimagegen-tile .ipyimagegen-edit").first.click()
    tab = browser_page.locator(EDIT_TAB)
    summary = tab.locator(".ipyimagegen-edit-summary")
    from playwright.sync_api import expect

    expect(summary).to_contain_text("mask: 0.0% to change", timeout=15_000)
    canvas = tab.locator(MASK_CANVAS).first
    canvas.scroll_into_view_if_needed()
    area = canvas.bounding_box()
    assert area and area["width"] > 100 and area["height"] > 100, area
    y = area["y"] + area["height"] * 0.3
    browser_page.mouse.move(area["x"] + area["width"] * 0.2, y)
    browser_page.mouse.down()
    browser_page.mouse.move(area["x"] + area["width"] * 0.5, y, steps=4)
    browser_page.mouse.move(area["x"] + area["width"] * 0.8, y, steps=4)
    browser_page.mouse.up()
    expect(summary).not_to_contain_text("mask: 0.0% to change", timeout=15_000)

    tab.locator(".ipyimagegen-prompt textarea").fill(EDIT_PROMPT)
    tab.locator(".ipyimagegen-edit-run").click()
    expect(tab.locator(".ipyimagegen-status")).to_have_text(MADE, timeout=30_000)
    edited = int(MADE.search(tab.locator(".ipyimagegen-status").inner_text()).group(1))  # type: ignore[union-attr]
    total = made + edited
    browser_page.wait_for_function(
        "([s, n]) => { const all = Array.from(document.querySelectorAll(s));"
        " return all.length === n && all.every(i => i.complete && i.naturalWidth > 0); }",
        arg=[RESULT_IMAGES, total],
        timeout=30_000,
    )
    expect(
        browser_page.locator(f"{STUDIO} .ipyimagegen-results .ipyimagegen-tile-prompt").first
    ).to_contain_text(EDIT_PROMPT)

    report = lab_run_code(
        browser_page, EDIT_REPORT.format(count=studio_cell.execution_count, prompt=EDIT_PROMPT)
    )
    assert report.errors() == [], report.errors()
    count, painted, inside, outside = (float(word) for word in report.stdout().split())
    assert count == edited
    assert 0 < painted < 0.5, painted
    assert inside > 0.5 and outside == 0, (inside, outside)
    assert_console_clean(console)


def test_lab_dark_at_900px_with_the_file_browser_open_the_viewer_and_canvas_fit(
    page: tuple[Any, Console], lab: LabServer, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    browser_page, console = page
    browser_page.set_viewport_size({"width": 900, "height": 800})
    lab_open_notebook(browser_page, lab, QUICKSTART, workspace="dark-narrow")
    browser_page.evaluate(
        "async () => { await window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'});"
        " await window.jupyterapp.commands.execute('filebrowser:activate'); }"
    )
    browser_page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=30_000)
    assert_all_ran_cleanly(lab_run_all(browser_page), QUICKSTART)
    studio_is_shown(browser_page)
    generate_in_studio(browser_page, "a lantern in the fog")

    tiles = browser_page.locator(f"{STUDIO} .ipyimagegen-results .ipyimagegen-tile")
    last = tiles.last
    last.scroll_into_view_if_needed()
    last.get_by_role("button", name="Enlarge").click()
    panel = browser_page.locator(".ipyimagegen-lightbox-panel")
    expect(panel).to_be_visible(timeout=15_000)
    box = panel.bounding_box()
    assert (
        box is not None
        and box["y"] >= 0
        and box["y"] + box["height"] <= 800
        and box["x"] + box["width"] <= 900
    )
    shade = browser_page.evaluate(
        "() => getComputedStyle(document.querySelector('.ipyimagegen-lightbox-panel')).backgroundColor"
    )
    red, green, blue = (int(part) for part in re.findall(r"\d+", shade)[:3])
    assert red + green + blue < 3 * 100, shade  # the dark theme's colours, not a white box
    browser_page.screenshot(path=str(tmp_path / "lab-dark-viewer.png"))
    browser_page.keyboard.press("Escape")
    expect(browser_page.locator(".ipyimagegen-lightbox")).to_have_count(0, timeout=10_000)

    last.get_by_role("button", name="Edit").click()
    canvas = browser_page.locator(f"{EDIT_TAB} {MASK_CANVAS}").first
    canvas.wait_for(state="visible", timeout=15_000)
    overflow = browser_page.evaluate(
        "() => { const p = document.querySelector('.ipyimagegen-studio .ipyimagegen-mask-painter');"
        " return p.scrollWidth - p.clientWidth; }"
    )
    assert overflow <= 1, overflow  # the whole picture in view, no nested scrollbar
    browser_page.screenshot(path=str(tmp_path / "lab-dark-edit.png"))
    assert_console_clean(console)


# -- a missing browser ---------------------------------------------------------------------------


def test_missing_chromium_skips_here_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import browser as helpers

    monkeypatch.setattr(helpers, "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium"):
        helpers.require_chromium()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y chromium"):
        helpers.require_chromium()
