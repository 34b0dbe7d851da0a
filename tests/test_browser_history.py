"""The studio in a real browser, beyond the first generation: Notebook 7, and History and Compare in Voila.

Notebook 7 (``jupyter notebook``) runs the quickstart notebook and generates from its studio.
In Voila, two generations land in the gallery beside a GIF and an SVG saved before; the History tab
shows them when it is opened (the GIF's thumbnail plays, the SVG is shown in the viewer as a picture),
"Reuse settings" puts the oldest generation's prompt back in the Generate tab, and Compare makes a
sheet of two ticked results that "Save PDF" writes to disk. Servers get no OpenAI, Azure or
ipyimagegen settings (the offline preview engine) and a gallery under the test's tmp folder.
A failing test leaves a screenshot of its page in its tmp folder as ``failure.png``.
"""

from __future__ import annotations

import json
import re
import shutil
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser import (
    Console,
    chromium,
    jupyter_notebook,
    lab_open_notebook,
    lab_run_all,
    new_page,
    page_problems,
    require_chromium,
    voila,
    wait_for_loaded_images,
    write_notebook,
)

pytestmark = pytest.mark.browser

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
QUICKSTART = "01-quickstart.ipynb"
STUDIO = ".ipyimagegen-studio"
GENERATE_TAB = f"{STUDIO} .ipyimagegen-generate-tab"
RESULT_TILES = f"{STUDIO} .ipyimagegen-results .ipyimagegen-grid .ipyimagegen-tile"
RESULT_IMAGES = f"{RESULT_TILES} img.ipyimagegen-tile-image"
HISTORY = f"{STUDIO} .ipyimagegen-history"
HISTORY_TILES = f"{HISTORY} .ipyimagegen-tile"
HISTORY_IMAGES = f"{HISTORY_TILES} img.ipyimagegen-tile-image"
COMPARE = f"{STUDIO} .ipyimagegen-compare"
#: Notebook 7's own shortcuts plugin fails once on load ("reading 'schema'" in notebook_core),
#: with or without this package: noise for these tests.
NOTEBOOK7_NOISE = re.compile(r"Cannot read properties of undefined \(reading 'schema'\)")
STEP_MS = 30_000

OLDER_PROMPT = "a lighthouse on a cliff at dusk"
NEWER_PROMPT = "a red fox in a snowy forest"
GIF_PROMPT = "a kite that flaps"
SVG_PROMPT = "a drawing of a harbour"


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module (each test gets a page of its own)."""
    require_chromium()
    with chromium() as running:
        yield running


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, Console]]:
    """A fresh page and its console; a failed test keeps a screenshot as ``failure.png``."""
    failed_before = request.session.testsfailed
    page, console = new_page(browser)
    yield page, console
    if request.session.testsfailed > failed_before:
        with_failure = tmp_path / "failure.png"
        page.screenshot(path=str(with_failure), full_page=True)
        print(f"screenshot of the failed page: {with_failure}")
    page.close()


# -- steps shared by the tests -------------------------------------------------------------------


def generate(page: Any, prompt: str, n: int) -> None:
    """Set the image count to ``n``, type ``prompt`` in the Generate tab and click Generate; wait
    until the status says ``n`` images were made and ``n`` more result tiles show loaded images."""
    from playwright.sync_api import expect

    tab = page.locator(GENERATE_TAB)
    shown = page.locator(RESULT_IMAGES).count()
    count = image_count(page)
    count.fill(str(n))
    count.press("Enter")  # the count is sent when it is committed
    tab.locator(".ipyimagegen-prompt textarea").fill(prompt)
    tab.locator(".ipyimagegen-generate").click()
    wait_for_loaded_images(page, RESULT_IMAGES, shown + n)
    made = re.compile(rf"\b{n} images? in [\d.]+ s")
    expect(tab.locator(".ipyimagegen-status")).to_have_text(made, timeout=STEP_MS)


def check_gif_and_svg(page: Any, svg_tile: Any, gif_tile: Any) -> None:
    """History shows a GIF and an SVG as the results grid does: their badges, a GIF thumbnail that
    plays, and in the viewer the drawing as a picture (an <img> of a blob: URL, none of its markup in
    the page) that scales, then the GIF's animation."""
    from playwright.sync_api import expect

    expect(svg_tile.locator(".ipyimagegen-tile-badge")).to_have_text("SVG")
    expect(gif_tile.locator(".ipyimagegen-tile-badge")).to_have_text("GIF")
    picture = gif_tile.locator("img.ipyimagegen-tile-image")
    seen = set()
    for _ in range(8):  # four frames of 100 ms: a second on screen shows several of them
        seen.add(picture.screenshot(animations="allow"))
        page.wait_for_timeout(130)
    assert len(seen) >= 2, "the GIF's History thumbnail does not animate"

    svg_tile.get_by_role("button", name="Enlarge").click()
    viewer = page.get_by_role("dialog")
    expect(viewer).to_contain_text("1536×1024 (SVG: it scales)", timeout=STEP_MS)
    page.wait_for_function(
        "(() => { const i = document.querySelector('.ipyimagegen-lightbox img.ipyimagegen-preview-image');"
        " return i && i.complete && i.naturalWidth === 1536; })()",
        timeout=STEP_MS,
    )
    shown = page.locator(".ipyimagegen-lightbox img.ipyimagegen-preview-image")
    assert shown.evaluate(
        "(i) => i.src.startsWith('blob:') && i.classList.contains('ipyimagegen-preview-vector')"
    )
    box = shown.bounding_box()
    assert box is not None and box["width"] > 400  # drawn large, not at an <img>'s default 300 px
    assert (
        page.evaluate("document.querySelectorAll('.ipyimagegen-lightbox svg, .ipyimagegen-grid svg').length")
        == 0
    )
    page.keyboard.press("ArrowRight")  # the next one on the page: the GIF
    expect(viewer).to_contain_text("4 frames × 100 ms, looping", timeout=STEP_MS)
    page.keyboard.press("Escape")
    expect(page.locator(".ipyimagegen-lightbox")).to_have_count(0, timeout=STEP_MS)


def image_count(page: Any) -> Any:
    """The Generate tab's "Images" (n) input."""
    row = page.locator(f"{GENERATE_TAB} .ipyimagegen-params .widget-hbox").filter(
        has=page.get_by_text("Images", exact=True)
    )
    return row.locator("input")


def tab_title(page: Any, title: str) -> Any:
    """The studio's tab title called ``title``."""
    return page.locator(STUDIO).get_by_role("tab", name=title, exact=True)


# -- Notebook 7 ----------------------------------------------------------------------------------


def test_notebook7_quickstart_runs_and_generates_images(page: tuple[Any, Console], tmp_path: Path) -> None:
    browser_page, console = page
    root = tmp_path / "notebooks"  # the server's log and folders go next to it, in tmp_path
    root.mkdir()
    shutil.copy(NOTEBOOKS_DIR / QUICKSTART, root / QUICKSTART)
    with jupyter_notebook(root, tmp_path) as server:
        lab_open_notebook(browser_page, server, QUICKSTART, workspace="")
        cells = lab_run_all(browser_page)

        code = [cell for cell in cells if cell.type == "code"]
        assert code and all(cell.execution_count is not None for cell in code), [c.prompt for c in code]
        for cell in code:
            assert re.fullmatch(rf"\[{cell.execution_count}\]:?", cell.prompt), cell.prompt
            assert cell.errors() == [], cell.errors()
        prompt = browser_page.locator(f"{GENERATE_TAB} .ipyimagegen-prompt textarea")
        prompt.wait_for(state="visible", timeout=STEP_MS)
        assert page_problems(browser_page) == [], page_problems(browser_page)
        assert "preview engine" in browser_page.locator(f"{STUDIO} .ipyimagegen-backend").inner_text().lower()

        generate(browser_page, "a calm lake below mountains", n=2)

        prompts = browser_page.locator(f"{RESULT_TILES} .ipyimagegen-tile-prompt").all_inner_texts()
        assert [text.strip() for text in prompts] == ["a calm lake below mountains"] * 2, prompts
        assert page_problems(browser_page) == [], page_problems(browser_page)
        noise = [text for text in console.relevant() if not NOTEBOOK7_NOISE.search(text)]
        assert noise == [], noise


# -- History and Compare in Voila ----------------------------------------------------------------

STUDIO_CELL = textwrap.dedent(
    f"""
    import ipyimagegen as ig
    from ipyimagegen.api.types import GenerateRequest

    engine = ig.PreviewEngine()
    s = ig.studio(engine)  # the gallery is $IPYIMAGEGEN_GALLERY, under the test's folder
    for prompt, options in (
        ({GIF_PROMPT!r}, dict(output_format="gif", frame_count=4, frame_duration_ms=100)),
        ({SVG_PROMPT!r}, dict(output_format="svg", size="1536x1024")),
    ):  # saved before the generations: the oldest in History
        request = GenerateRequest(prompt=prompt, model="gpt-image-2.6-flare", seed=1, **options)
        s.gallery.save_response(engine.run(request))
    s
    """
)


def test_voila_history_reuse_and_compare_saves_a_pdf(page: tuple[Any, Console], tmp_path: Path) -> None:
    from playwright.sync_api import expect

    browser_page, console = page
    gallery = tmp_path / "gallery"  # where browser.jupyter_env points IPYIMAGEGEN_GALLERY
    notebook = write_notebook(tmp_path / "history.ipynb", STUDIO_CELL)
    with voila(notebook, tmp_path) as url:
        browser_page.goto(url, wait_until="domcontentloaded", timeout=60_000)
        browser_page.locator(f"{GENERATE_TAB} .ipyimagegen-prompt textarea").wait_for(
            state="visible", timeout=60_000
        )
        box = browser_page.locator(f"{GENERATE_TAB} .ipyimagegen-prompt").bounding_box()
        around = browser_page.locator(f"{GENERATE_TAB} .ipyimagegen-prompt-box").bounding_box()
        assert box is not None and around is not None
        assert (
            around["x"] <= box["x"] and box["x"] + box["width"] <= around["x"] + around["width"]
        )  # borders in view

        generate(browser_page, OLDER_PROMPT, n=2)
        generate(browser_page, NEWER_PROMPT, n=1)

        # History: refreshed when opened, newest first, thumbnails and prompts of all five.
        tab_title(browser_page, "History").click()
        wait_for_loaded_images(browser_page, HISTORY_IMAGES, 5)
        tiles = browser_page.locator(HISTORY_TILES)
        prompts = [text.strip() for text in tiles.locator(".ipyimagegen-tile-prompt").all_inner_texts()]
        assert prompts == [NEWER_PROMPT, OLDER_PROMPT, OLDER_PROMPT, SVG_PROMPT, GIF_PROMPT], prompts
        expect(browser_page.locator(f"{HISTORY} .ipyimagegen-history-page")).to_contain_text("5 images")
        check_gif_and_svg(browser_page, tiles.nth(3), tiles.nth(4))

        # Reuse settings of the oldest generation: back in the Generate tab, with that prompt and count.
        tiles.nth(2).locator(".ipyimagegen-reuse").click()
        expect(tab_title(browser_page, "Generate")).to_have_attribute(
            "aria-selected", "true", timeout=STEP_MS
        )
        prompt_box = browser_page.locator(f"{GENERATE_TAB} .ipyimagegen-prompt textarea")
        expect(prompt_box).to_be_visible()
        expect(prompt_box).to_have_value(OLDER_PROMPT, timeout=STEP_MS)
        expect(image_count(browser_page)).to_have_value("2")
        expect(browser_page.locator(f"{GENERATE_TAB} .ipyimagegen-status")).to_contain_text("are in the form")

        # Compare two ticked results, then save the sheet as PDF.
        compare_button = browser_page.locator(f"{STUDIO} .ipyimagegen-compare-button")
        expect(compare_button).to_be_disabled()
        boxes = browser_page.locator(f"{RESULT_TILES} .ipyimagegen-select input[type=checkbox]")
        expect(boxes).to_have_count(3)
        boxes.nth(0).check()
        boxes.nth(2).check()
        expect(compare_button).to_be_enabled(timeout=STEP_MS)
        expect(compare_button).to_contain_text("Compare (2)")
        compare_button.click()
        wait_for_loaded_images(browser_page, f"{COMPARE} img.ipyimagegen-compare-image", 2)
        expect(browser_page.locator(COMPARE)).to_contain_text("2 images")

        save = browser_page.locator(f"{COMPARE} .ipyimagegen-compare-save")
        expect(save).to_contain_text("Save PDF")
        with browser_page.expect_download(timeout=STEP_MS) as download_info:
            save.click()  # the PDF is written next to the gallery and downloaded in the page
        notice = browser_page.locator(f"{COMPARE} .ipyimagegen-notice")
        expect(notice).to_contain_text("Downloaded", timeout=STEP_MS)
        assert "saved to" not in notice.inner_text()  # Voila: the server's folders are not the user's
        saved = gallery / notice.locator("code").inner_text().strip()  # written next to the gallery
        assert saved.suffix == ".pdf" and saved.read_bytes().startswith(b"%PDF"), saved
        download = download_info.value
        assert download.suggested_filename == saved.name
        assert Path(download.path()).read_bytes() == saved.read_bytes()

        # History as a gallery: enlarge and download, tick and export, delete (the result tile goes too).
        tab_title(browser_page, "History").click()
        wait_for_loaded_images(browser_page, HISTORY_IMAGES, 5)
        tiles = browser_page.locator(HISTORY_TILES)
        tiles.first.get_by_role("button", name="Enlarge").click()
        viewer = browser_page.get_by_role("dialog")
        expect(viewer).to_contain_text(NEWER_PROMPT, timeout=STEP_MS)
        with browser_page.expect_download(timeout=STEP_MS) as download_info:
            viewer.get_by_role("button", name="Download").click()
        name = download_info.value.suggested_filename  # <the gallery id>-<the prompt>.png
        assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{8}-a-red-fox-in-a-snowy-forest\.png", name), name
        newest = gallery / "images" / f"{name[:24]}.png"
        assert Path(download_info.value.path()).read_bytes() == newest.read_bytes()
        browser_page.keyboard.press("Escape")
        expect(browser_page.locator(".ipyimagegen-lightbox")).to_have_count(0, timeout=STEP_MS)

        tiles.nth(0).locator(".ipyimagegen-select input[type=checkbox]").check()
        tiles.nth(1).locator(".ipyimagegen-select input[type=checkbox]").check()
        export = browser_page.locator(f"{HISTORY} .ipyimagegen-history-export")
        expect(export).to_contain_text("Export (2)", timeout=STEP_MS)
        with browser_page.expect_download(timeout=STEP_MS) as download_info:
            export.click()
        with zipfile.ZipFile(download_info.value.path()) as archive:
            manifest = json.loads(archive.read("manifest.json"))
        assert [item["prompt"] for item in manifest["items"]] == [NEWER_PROMPT, OLDER_PROMPT]

        tiles.first.get_by_role("button", name="Delete this image from the gallery (click twice)").click()
        tiles.first.get_by_role("button", name="Delete?").click()
        expect(tiles).to_have_count(4, timeout=STEP_MS)
        tab_title(browser_page, "Generate").click()
        expect(browser_page.locator(RESULT_TILES)).to_have_count(2, timeout=STEP_MS)  # its result tile too
        assert all(NEWER_PROMPT not in text for text in browser_page.locator(RESULT_TILES).all_inner_texts())
        assert page_problems(browser_page) == [], page_problems(browser_page)
        assert console.relevant() == [], console.relevant()


# -- History search as you type ------------------------------------------------------------------

SEARCH_PROMPTS = ("a red fox at dawn", "an owl on a branch", "a fox in the snow", "a lighthouse at dusk")
SEARCH_CELL = textwrap.dedent(
    f"""
    import ipywidgets as widgets
    import ipyimagegen as ig
    from ipyimagegen.api.types import GenerateRequest

    engine = ig.PreviewEngine()
    s = ig.studio(engine)
    for prompt in {SEARCH_PROMPTS!r}:
        s.gallery.save_response(engine.run(GenerateRequest(prompt=prompt, model="dall-e-2", size="256x256")))
    s.select("History")
    searched = widgets.HTML(layout=widgets.Layout(display="none"))  # each search the kernel ran
    searched.add_class("searched")
    def record(change):
        searched.value += "|" + change["new"]

    s.history.search.observe(record, "value")
    widgets.VBox([s, searched])
    """
)


def test_voila_history_searches_as_you_type_once_typing_pauses_and_at_once_on_enter(
    page: tuple[Any, Console], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    browser_page, console = page
    notebook = write_notebook(tmp_path / "search.ipynb", SEARCH_CELL)
    with voila(notebook, tmp_path) as url:
        browser_page.goto(url, wait_until="domcontentloaded", timeout=60_000)
        wait_for_loaded_images(browser_page, HISTORY_IMAGES, 4)
        box = browser_page.locator(f"{HISTORY} .ipyimagegen-history-search input")
        expect(box).to_have_attribute("placeholder", "Search prompts (as you type)")
        searched = browser_page.locator(".searched")
        tiles = browser_page.locator(HISTORY_TILES)
        label = browser_page.locator(f"{HISTORY} .ipyimagegen-history-page")

        box.press_sequentially("fox", delay=60)  # no Enter: the list follows once the typing pauses
        expect(tiles).to_have_count(2, timeout=STEP_MS)
        expect(label).to_contain_text("2 images")
        prompts = [text.strip() for text in tiles.locator(".ipyimagegen-tile-prompt").all_inner_texts()]
        assert prompts == ["a fox in the snow", "a red fox at dawn"], prompts
        browser_page.wait_for_timeout(600)
        assert searched.evaluate("e => e.textContent") == "|fox"  # one search for the word, not one per key

        box.press_sequentially(" in", delay=60)
        box.press("Enter")  # at once, and the pause that follows sends nothing more
        expect(tiles).to_have_count(1, timeout=STEP_MS)
        browser_page.wait_for_timeout(600)
        assert searched.evaluate("e => e.textContent") == "|fox|fox in"
        box.blur()  # leaving the box sends nothing new either
        browser_page.wait_for_timeout(300)
        assert searched.evaluate("e => e.textContent") == "|fox|fox in"

        box.fill("")  # cleared, as with the keyboard: every image again
        expect(tiles).to_have_count(4, timeout=STEP_MS)
        expect(label).to_contain_text("4 images")
        browser_page.screenshot(path=str(tmp_path / "history-search.png"), full_page=True)
        assert page_problems(browser_page) == [], page_problems(browser_page)
        assert console.relevant() == [], console.relevant()
