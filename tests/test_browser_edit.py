"""The Edit tab in a real browser (Voila + headless Chromium): paint with the mouse, edit, see the result.

The notebook's engine writes the mask it receives to a file the test names, so the test can
check that the dragged path arrived as the transparent area of the mask.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from browser import browser_page, require_chromium, voila, write_notebook

pytestmark = pytest.mark.browser

SIDE = 256
TESTS_DIR = Path(__file__).resolve().parent
TILE_IMAGES = ".ipyimagegen-tile img.ipyimagegen-tile-image"


def _cell(mask_path: Path) -> str:
    return textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(TESTS_DIR)!r})
        import numpy as np
        from edit_helpers import RecordingPreviewEngine, picture
        from ipyimagegen.widgets import Studio

        s = Studio(RecordingPreviewEngine(mask_path={str(mask_path)!r}))
        s.edit_tab.params.model = "dall-e-2"
        s.edit_tab.params.size = "{SIDE}x{SIDE}"
        s.edit_tab.use_image(picture({SIDE}, {SIDE}))
        s.select("Edit")
        s
        """
    )


def test_paint_with_the_mouse_then_edit(tmp_path: Path) -> None:
    require_chromium()
    from playwright.sync_api import expect

    from ipyimagegen.imaging import mask_from_png

    mask_path = tmp_path / "received-mask.png"
    notebook = write_notebook(tmp_path / "edit.ipynb", _cell(mask_path))
    with voila(notebook, tmp_path) as url, browser_page() as (page, console):
        page.goto(url, wait_until="domcontentloaded", timeout=60_000)
        canvas = page.locator(".ipyimagegen-edit-tab .ipyimagegen-mask-canvas").first
        canvas.wait_for(state="visible", timeout=60_000)
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        assert box is not None and box["width"] > 100
        y = box["y"] + box["height"] / 2
        x0, x1 = box["x"] + box["width"] * 0.2, box["x"] + box["width"] * 0.8
        page.mouse.move(x0, y)
        page.mouse.down()
        page.mouse.move((x0 + x1) / 2, y, steps=4)
        page.mouse.move(x1, y, steps=4)
        page.mouse.up()
        expect(page.locator(".ipyimagegen-edit-summary")).not_to_contain_text("mask: 0.0%", timeout=30_000)

        prompt = page.locator(".ipyimagegen-edit-tab .ipyimagegen-prompt textarea")
        prompt.fill("a yellow sun")
        page.locator(".ipyimagegen-edit-run").click()
        page.wait_for_function(
            f"Array.from(document.querySelectorAll({TILE_IMAGES!r}))"
            ".filter(i => i.complete && i.naturalWidth > 0).length === 1",
            timeout=30_000,
        )
        expect(page.locator(".ipyimagegen-edit-tab .ipyimagegen-status")).to_contain_text(
            "1 image in", timeout=30_000
        )
        results = page.locator(".ipyimagegen-results").inner_text()
        assert "Loading widget" not in results and "Error" not in results
        page.screenshot(path=str(tmp_path / "edit-done.png"), full_page=True)
        assert console.relevant() == [], console.relevant()

    mask = mask_from_png(mask_path.read_bytes(), threshold=1)
    assert mask.shape == (SIDE, SIDE)
    row = SIDE // 2
    scale = SIDE / box["width"]
    path_columns = np.arange(round(0.25 * box["width"] * scale), round(0.75 * box["width"] * scale))
    assert mask[row, path_columns].all()  # the dragged path is transparent
    assert not mask[:20].any() and not mask[-20:].any()  # far from it, nothing is
    assert 0.01 < mask.mean() < 0.5
