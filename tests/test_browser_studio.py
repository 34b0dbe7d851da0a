"""The studio in a real browser (Voila + headless Chromium): type, generate, see the images."""

from __future__ import annotations

import contextlib
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser import browser_page, loaded_images, require_chromium, voila, write_notebook

pytestmark = pytest.mark.browser

N_IMAGES = 3
GENERATE_TAB = ".ipyimagegen-studio .ipyimagegen-generate-tab"
TILE_IMAGES = ".ipyimagegen-results .ipyimagegen-tile img.ipyimagegen-tile-image"

STUDIO_CELL = textwrap.dedent(
    f"""
    from ipyimagegen.widgets import studio

    s = studio()  # no key in the environment: the offline preview engine
    s.generate_tab.params.n = {N_IMAGES}
    s
    """
)


@contextlib.contextmanager
def _studio_page(tmp_path: Path) -> Iterator[tuple[Any, Any, Any]]:
    """The studio of STUDIO_CELL open in Voila: the page, its console and the Generate tab's prompt."""
    require_chromium()
    notebook = write_notebook(tmp_path / "studio.ipynb", STUDIO_CELL)
    with voila(notebook, tmp_path) as url, browser_page() as (page, console):
        page.goto(url, wait_until="domcontentloaded", timeout=60_000)
        prompt = page.locator(f"{GENERATE_TAB} .ipyimagegen-prompt textarea")
        prompt.wait_for(state="visible", timeout=60_000)
        yield page, console, prompt


def test_generate_shows_real_images_and_ctrl_enter_generates(tmp_path: Path) -> None:
    from playwright.sync_api import expect

    with _studio_page(tmp_path) as (page, console, prompt):
        assert "preview engine" in page.locator(".ipyimagegen-backend").inner_text().lower()

        prompt.fill("a lighthouse on a cliff at dusk")
        page.locator(f"{GENERATE_TAB} .ipyimagegen-generate").click()
        page.wait_for_function(
            f"document.querySelectorAll({TILE_IMAGES!r}).length === {N_IMAGES}", timeout=30_000
        )
        page.wait_for_function(
            f"Array.from(document.querySelectorAll({TILE_IMAGES!r})).every(i => i.complete && i.naturalWidth > 0)",
            timeout=30_000,
        )
        assert loaded_images(page, TILE_IMAGES) == (N_IMAGES, N_IMAGES)
        expect(page.locator(f"{GENERATE_TAB} .ipyimagegen-status")).to_contain_text(
            "images in", timeout=30_000
        )
        page.screenshot(path=str(tmp_path / "studio-generated.png"), full_page=True)

        prompt.fill("a fox in the snow")
        prompt.press("Control+Enter")
        page.wait_for_function(
            f"Array.from(document.querySelectorAll({TILE_IMAGES!r})).filter(i => i.naturalWidth > 0).length"
            f" === {2 * N_IMAGES}",
            timeout=30_000,
        )
        expect(page.locator(".ipyimagegen-results .ipyimagegen-tile-prompt").first).to_contain_text(
            "fox"
        )  # newest first
        page.locator(".ipyimagegen-enlarge").first.click()
        page.wait_for_function(
            "(() => { const i = document.querySelector('.ipyimagegen-preview-image');"
            " return i && i.naturalWidth === 1024; })()",
            timeout=30_000,
        )
        page.screenshot(path=str(tmp_path / "studio-enlarged.png"), full_page=True)
        assert console.relevant() == [], console.relevant()


SAVE_CELL = textwrap.dedent(
    """
    from ipyimagegen.widgets import studio

    s = studio(save_dir="saved")
    s
    """
)


def test_save_writes_the_file_and_downloads_it_in_the_page(tmp_path: Path) -> None:
    require_chromium()
    from playwright.sync_api import expect

    notebook = write_notebook(tmp_path / "save.ipynb", SAVE_CELL)
    with voila(notebook, tmp_path) as url, browser_page() as (page, console):
        page.goto(url, wait_until="domcontentloaded", timeout=60_000)
        prompt = page.locator(f"{GENERATE_TAB} .ipyimagegen-prompt textarea")
        prompt.wait_for(state="visible", timeout=60_000)
        prompt.fill("a white siamese cat")
        page.locator(f"{GENERATE_TAB} .ipyimagegen-generate").click()
        page.wait_for_function(
            f"Array.from(document.querySelectorAll({TILE_IMAGES!r})).filter(i => i.naturalWidth > 0).length === 1",
            timeout=30_000,
        )
        with page.expect_download(timeout=30_000) as download_info:
            page.get_by_role("button", name="Save").first.click()
        download = download_info.value
        notice = page.get_by_role("status").filter(has_text="Downloaded")
        expect(notice).to_be_visible(timeout=10_000)
        expect(notice).to_contain_text(download.suggested_filename)
        assert "saved to" not in notice.inner_text()  # Voila: the server's folders are not the user's
        assert "data:" not in notice.inner_html()
        expect(notice).to_be_hidden(timeout=15_000)  # a notice goes away by itself
        (saved,) = (tmp_path / "saved").iterdir()
        assert download.suggested_filename == saved.name
        assert Path(download.path()).read_bytes() == saved.read_bytes()
        assert console.relevant() == [], console.relevant()


def test_same_seed_from_the_viewer_and_download_all_as_a_zip(tmp_path: Path) -> None:
    import io
    import zipfile

    from playwright.sync_api import expect

    with _studio_page(tmp_path) as (page, console, prompt):
        seed_field = page.locator(f"{GENERATE_TAB} .ipyimagegen-seed input")
        more = page.locator(f"{GENERATE_TAB} .ipyimagegen-more-settings")
        expect(more).to_contain_text("seed")  # the title names the settings under it
        more.get_by_text("More settings").click()
        expect(seed_field).to_be_visible()  # the preview engine honours seeds
        prompt.fill("a red kite over the dunes")
        page.locator(f"{GENERATE_TAB} .ipyimagegen-generate").click()
        expect(page.locator(f"{GENERATE_TAB} .ipyimagegen-status")).to_contain_text(
            "images in", timeout=30_000
        )

        # The viewer's "Same seed": prompt, settings and seed back in the form.
        page.locator(".ipyimagegen-enlarge").nth(1).click()
        facts = page.locator(".ipyimagegen-lightbox-facts")
        expect(facts).to_contain_text("Seed")
        seed = facts.locator("dt:text-is('Seed') + dd").inner_text()
        page.get_by_role("button", name="Same seed").click()
        expect(seed_field).to_have_value(seed)
        prompt.fill("a red kite over the dunes, at night")
        page.locator(f"{GENERATE_TAB} .ipyimagegen-generate").click()
        expect(page.locator(".ipyimagegen-results .ipyimagegen-tile-prompt").first).to_contain_text(
            "at night"
        )
        page.wait_for_function(
            f"Array.from(document.querySelectorAll({TILE_IMAGES!r})).filter(i => i.naturalWidth > 0).length"
            f" === {N_IMAGES + 1}",  # the same seed is one picture: the form asks for one
            timeout=30_000,
        )
        page.locator(".ipyimagegen-enlarge").first.click()
        expect(page.locator(".ipyimagegen-lightbox-facts dt:text-is('Seed') + dd")).to_have_text(seed)
        page.keyboard.press("Escape")

        # Download all: one zip in the browser's own downloads, every result in it.
        with page.expect_download(timeout=30_000) as download:
            page.get_by_role("button", name="Download all").click()
        data = Path(download.value.path()).read_bytes()
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            pictures = [name for name in archive.namelist() if name.endswith(".png")]
        assert len(pictures) == N_IMAGES + 1
        assert console.relevant() == [], console.relevant()
