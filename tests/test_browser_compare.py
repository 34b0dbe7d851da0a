"""Compare and downloads in a real browser at 1400x900: the studio in Voila, and in JupyterLab (dark,
with the file browser open), in headless Chromium.

Two generations and a variation of the first are in the results grid (made in the notebook's cell
and kept in the gallery, as the studio keeps its own). Ticked and compared, they fill the panel's
width, each at least 320 px wide under its caption; Save PDF and Save PNG download the sheet; the
viewer's Download and the tile's Save name a picture by its gallery id and prompt. The notices say
"Downloaded": in Voila never a path on the server, in JupyterLab also where the file was written.
A failing test leaves ``failure.png`` in its tmp folder.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from browser import (
    Console,
    browser_page,
    jupyter_lab,
    lab_open_notebook,
    lab_run_all,
    page_problems,
    require_chromium,
    voila,
    wait_for_loaded_images,
    write_notebook,
)

pytestmark = pytest.mark.browser

STUDIO = ".ipyimagegen-studio"
RESULTS = f"{STUDIO} .ipyimagegen-results"
RESULT_TILES = f"{RESULTS} .ipyimagegen-grid .ipyimagegen-tile"
RESULT_IMAGES = f"{RESULT_TILES} img.ipyimagegen-tile-image"
COMPARE = f"{STUDIO} .ipyimagegen-compare"
COMPARE_IMAGES = f"{COMPARE} img.ipyimagegen-compare-image"
STEP_MS = 30_000
VIEWPORT = (1400, 900)
MIN_WIDTH_PX = 320

PROMPT = "a red lighthouse on a cliff at dusk"
SLUG = "a-red-lighthouse-on-a-cliff-at-dusk"
GALLERY_ID = r"\d{8}-\d{6}-[0-9a-f]{8}"

CELL = textwrap.dedent(
    f"""
    import ipyimagegen as ig
    from ipyimagegen.api.types import GenerateRequest, VariationRequest
    from ipyimagegen.media import InputImage
    from ipyimagegen.session import save_to_gallery

    engine = ig.PreviewEngine()
    s = ig.studio(engine)  # the gallery is $IPYIMAGEGEN_GALLERY, under the test's folder
    generated = engine.run(GenerateRequest(prompt={PROMPT!r}, model="gpt-image-1.5", n=2, size="1024x1024"))
    save_to_gallery(s.gallery, generated, None)
    s.grid.add_response(generated)
    source = generated.data[0].metadata["gallery_id"]
    request = VariationRequest(image=InputImage.from_bytes(generated.data[0].data, source), size="512x512")
    variation = engine.run(request)
    save_to_gallery(s.gallery, variation, source)
    s.grid.add_response(variation)
    s
    """
)


def _compare_three(page: Any, tmp_path: Path, screenshot: str) -> None:
    """Tick the three results, compare them, and check the sheet: every picture at least 320 px wide
    under its caption, a row across the panel's width."""
    from playwright.sync_api import expect

    wait_for_loaded_images(page, RESULT_IMAGES, 3)
    boxes = page.locator(f"{RESULT_TILES} .ipyimagegen-select input[type=checkbox]")
    for index in range(3):
        boxes.nth(index).check()
    compare_button = page.locator(f"{STUDIO} .ipyimagegen-compare-button")
    expect(compare_button).to_contain_text("Compare (3)", timeout=STEP_MS)
    compare_button.click()
    wait_for_loaded_images(page, COMPARE_IMAGES, 3)
    page.locator(COMPARE).scroll_into_view_if_needed()

    sheet = page.locator(f"{COMPARE} .ipyimagegen-compare-sheet").bounding_box()
    assert sheet is not None
    shown = [page.locator(COMPARE_IMAGES).nth(i).bounding_box() for i in range(3)]
    widths = [box["width"] for box in shown if box is not None]
    assert len(widths) == 3 and min(widths) >= MIN_WIDTH_PX, widths  # each at least 320 px wide
    first_row = [box for box in shown if box is not None and abs(box["y"] - shown[0]["y"]) < 1]
    span = first_row[-1]["x"] + first_row[-1]["width"] - first_row[0]["x"]
    assert span >= 0.95 * sheet["width"], (shown, sheet)  # a row spans the panel's width
    captions = page.locator(f"{COMPARE} .ipyimagegen-compare-caption")
    texts = [text.strip() for text in captions.all_inner_texts()]
    assert len(texts) == 3, texts  # one under every picture
    assert texts[0].startswith(f"variation of “{PROMPT}”") and "dall-e-2 · 512×512" in texts[0]
    assert all(PROMPT in text and "gpt-image-1.5 · 1024×1024" in text for text in texts[1:]), texts
    for index in range(3):
        picture, caption = shown[index], captions.nth(index).bounding_box()
        assert picture is not None and caption is not None
        assert abs(caption["y"] - (picture["y"] + picture["height"])) < 16  # right under its picture
    page.screenshot(path=str(tmp_path / screenshot))


def _save_sheets(page: Any, saved_in: Path, shows_path: bool) -> None:
    """Save PDF and Save PNG: each downloaded in the page, written to ``saved_in``, and said."""
    from playwright.sync_api import expect

    notice = page.locator(f"{COMPARE} .ipyimagegen-notice")
    for label, extension, magic in (("Save PDF", "pdf", b"%PDF"), ("Save PNG", "png", b"\x89PNG")):
        with page.expect_download(timeout=STEP_MS) as download_info:
            page.locator(COMPARE).get_by_role("button", name=label).click()
        download = download_info.value
        name = download.suggested_filename
        assert re.fullmatch(rf"{GALLERY_ID}-compare-3-images\.{extension}", name), name
        assert Path(download.path()).read_bytes().startswith(magic)
        where = f" (also saved to {saved_in / name})" if shows_path else ""
        expect(notice).to_have_text(f"Downloaded {name}{where}.", timeout=STEP_MS)
        assert (saved_in / name).read_bytes() == Path(download.path()).read_bytes()


def _download_names(page: Any, gallery: Path, shows_path: bool) -> None:
    """The viewer's Download and the tile's Save name a picture by its gallery id and prompt."""
    from playwright.sync_api import expect

    newest_generated = page.locator(RESULT_TILES).nth(1)
    newest_generated.scroll_into_view_if_needed()
    newest_generated.get_by_role("button", name="Enlarge").click()
    viewer = page.get_by_role("dialog")
    expect(viewer).to_contain_text(PROMPT, timeout=STEP_MS)
    with page.expect_download(timeout=STEP_MS) as download_info:
        viewer.get_by_role("button", name="Download").click()
    name = download_info.value.suggested_filename
    assert re.fullmatch(rf"{GALLERY_ID}-{SLUG}\.png", name), name
    kept = gallery / "images" / f"{name[:24]}.png"  # the gallery's file of that id
    assert Path(download_info.value.path()).read_bytes() == kept.read_bytes()
    page.keyboard.press("Escape")
    expect(page.locator(".ipyimagegen-lightbox")).to_have_count(0, timeout=STEP_MS)

    with page.expect_download(timeout=STEP_MS) as download_info:
        newest_generated.get_by_role("button", name="Save", exact=True).click()
    assert download_info.value.suggested_filename == name  # one name for one picture
    status = page.get_by_role("status").filter(has_text="Downloaded")
    where = f" (also saved to {gallery / name})" if shows_path else ""  # the studio saves by its gallery
    expect(status).to_contain_text(f"Downloaded {name}{where}.", timeout=STEP_MS)


def _check_page(page: Any, console: Console, tmp_path: Path) -> None:
    try:
        assert page_problems(page) == [], page_problems(page)
    finally:
        page.screenshot(path=str(tmp_path / "last.png"))
    assert console.relevant() == [], console.relevant()


def test_voila_compare_fills_the_panel_captions_every_picture_and_downloads_without_a_server_path(
    tmp_path: Path,
) -> None:
    require_chromium()
    gallery = tmp_path / "gallery"  # where browser.jupyter_env points IPYIMAGEGEN_GALLERY
    notebook = write_notebook(tmp_path / "compare.ipynb", CELL)
    with voila(notebook, tmp_path) as url, browser_page(VIEWPORT) as (page, console):
        try:
            page.goto(url, wait_until="domcontentloaded", timeout=60_000)
            _compare_three(page, tmp_path, "voila-compare-1400.png")
            _save_sheets(page, gallery, shows_path=False)  # Voila: the server's folders are not the user's
            _download_names(page, gallery, shows_path=False)
            _check_page(page, console, tmp_path)
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            print(f"screenshot of the failed page: {tmp_path / 'failure.png'}")
            raise


def test_lab_dark_with_the_file_browser_open_compare_fills_the_panel_and_saves_say_where(
    tmp_path: Path,
) -> None:
    require_chromium()
    root = tmp_path / "root"
    root.mkdir()
    write_notebook(root / "compare.ipynb", CELL)
    gallery = tmp_path / "gallery"
    with jupyter_lab(root, tmp_path) as lab, browser_page(VIEWPORT) as (page, console):
        try:
            lab_open_notebook(page, lab, "compare.ipynb", workspace="compare")
            page.evaluate(
                "async () => { const run = (id, args) => window.jupyterapp.commands.execute(id, args);"
                " await run('apputils:change-theme', {theme: 'JupyterLab Dark'});"
                " await run('filebrowser:activate'); }"
            )
            page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=STEP_MS)
            cells = lab_run_all(page)
            assert all(cell.errors() == [] for cell in cells), [cell.errors() for cell in cells]
            assert page.locator("#filebrowser").is_visible()
            _compare_three(page, tmp_path, "lab-dark-compare-1400.png")
            shade = page.locator(f"{COMPARE} .ipyimagegen-compare-title").first.evaluate(
                "e => getComputedStyle(e).color"
            )
            assert sum(int(part) for part in re.findall(r"\d+", shade)[:3]) > 3 * 150, shade  # light on dark
            _save_sheets(page, gallery, shows_path=True)  # JupyterLab: the kernel's files are the user's
            _download_names(page, gallery, shows_path=True)
            _check_page(page, console, tmp_path)
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            print(f"screenshot of the failed page: {tmp_path / 'failure.png'}")
            raise
