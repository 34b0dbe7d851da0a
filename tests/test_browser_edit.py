"""The Edit tab in a real browser (Voila + headless Chromium): paint with the mouse, edit, see the result.

The notebook's engine writes the mask it receives to a file the test names, so the test can
check that the dragged path arrived as the transparent area of the mask.
"""

from __future__ import annotations

import re
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

    from ipyimagegen.imaging import read_mask

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

        # Before and after, in the viewer: the picture the edit started from, then the result again.
        page.locator(".ipyimagegen-tile").first.get_by_role("button", name="Enlarge").click()
        viewer_image = page.locator(".ipyimagegen-lightbox img.ipyimagegen-preview-image")
        expect(viewer_image).to_have_attribute("src", re.compile("^blob:"), timeout=10_000)
        after = viewer_image.get_attribute("src")
        page.keyboard.press("b")
        toggle = page.locator(".ipyimagegen-lightbox-before")
        expect(toggle).to_contain_text("After", timeout=10_000)
        assert viewer_image.get_attribute("src") != after
        toggle.click()
        expect(toggle).to_contain_text("Before")
        assert viewer_image.get_attribute("src") == after
        page.keyboard.press("Escape")
        assert console.relevant() == [], console.relevant()

    mask = read_mask(mask_path.read_bytes(), "alpha")
    assert mask.shape == (SIDE, SIDE)
    row = SIDE // 2
    scale = SIDE / box["width"]
    path_columns = np.arange(round(0.25 * box["width"] * scale), round(0.75 * box["width"] * scale))
    assert mask[row, path_columns].all()  # the dragged path is transparent
    assert not mask[:20].any() and not mask[-20:].any()  # far from it, nothing is
    assert 0.01 < mask.mean() < 0.5


UPLOAD_CELL = textwrap.dedent(
    """
    from ipyimagegen.engines.preview import PreviewEngine
    from ipyimagegen.widgets import Studio

    s = Studio(PreviewEngine())
    s.select("Edit")
    s
    """
)


def test_upload_a_photo_then_a_file_that_is_not_an_image(tmp_path: Path) -> None:
    """Upload through the browser's file chooser: the tab shows what will be sent; a bad file says so
    and the photo stays; the button says which file it took, and which it did not."""
    require_chromium()
    from PIL import Image
    from playwright.sync_api import expect

    photo = tmp_path / "holiday.jpg"
    Image.new("RGB", (640, 480), (30, 120, 200)).save(photo, quality=90)
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("these are my notes, not a picture")
    notebook = write_notebook(tmp_path / "upload.ipynb", UPLOAD_CELL)
    with voila(notebook, tmp_path) as url, browser_page() as (page, console):
        page.goto(url, wait_until="domcontentloaded", timeout=60_000)
        upload_button = page.locator(".ipyimagegen-edit-upload button").first
        upload_button.wait_for(state="visible", timeout=60_000)
        summary = page.locator(".ipyimagegen-edit-summary")
        status = page.locator(".ipyimagegen-edit-tab .ipyimagegen-status")

        def upload(path: Path) -> None:  # the button opens the browser's file chooser
            with page.expect_file_chooser() as chooser:
                upload_button.click()
            chooser.value.set_files(str(path))

        upload(photo)
        expect(summary).to_contain_text("640×480", timeout=30_000)
        upload_row = page.locator(".ipyimagegen-edit-tab .ipyimagegen-edit-upload").first
        expect(upload_row).to_contain_text("holiday.jpg", timeout=30_000)  # what it took, no "(0)"
        assert "(0)" not in upload_row.inner_text()
        canvas = page.locator(".ipyimagegen-edit-tab .ipyimagegen-mask-canvas").first
        assert canvas.bounding_box()["width"] > 100

        upload(not_an_image)
        problem = page.locator(".ipyimagegen-edit-tab .ipyimagegen-field-error").first
        expect(problem).to_contain_text("notes.png", timeout=30_000)  # beside the button that chose it
        expect(problem).to_contain_text("text", timeout=30_000)  # says what the file is
        upload_box, problem_box = upload_button.bounding_box(), problem.bounding_box()
        assert upload_box is not None and problem_box is not None
        assert abs(problem_box["y"] - upload_box["y"]) < 60  # on the upload's row, not far below
        assert "notes.png" not in status.inner_text()
        expect(summary).to_contain_text("640×480")  # the photo is still the one to edit
        expect(upload_row).to_contain_text("not used: notes.png", timeout=30_000)
        page.screenshot(path=str(tmp_path / "upload.png"), full_page=True)
        assert console.relevant() == [], console.relevant()


def test_the_canvas_fits_a_narrow_page_and_takes_keys_under_the_pointer(tmp_path: Path) -> None:
    require_chromium()
    from playwright.sync_api import expect

    notebook = write_notebook(tmp_path / "edit.ipynb", _cell(tmp_path / "mask.png").replace("256", "512"))
    with voila(notebook, tmp_path) as url, browser_page(viewport=(460, 900)) as (page, console):
        page.goto(url, wait_until="domcontentloaded", timeout=60_000)
        canvas = page.locator(".ipyimagegen-edit-tab .ipyimagegen-mask-canvas").first
        canvas.wait_for(state="visible", timeout=60_000)
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 460, box
        assert abs(box["width"] - box["height"]) < 2  # the picture's shape, scaled down
        overflow = page.evaluate(
            "() => { const p = document.querySelector('.ipyimagegen-mask-painter');"
            " return p.scrollWidth - p.clientWidth; }"
        )
        assert overflow <= 1, overflow  # no nested scrollbar hides part of the picture
        brush = page.locator(".ipyimagegen-mask-painter .widget-readout").first
        before = int(brush.inner_text())
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # over it, no click
        page.keyboard.press("]")
        expect(brush).not_to_have_text(str(before), timeout=10_000)
        assert int(brush.inner_text()) > before
        page.keyboard.press("e")
        eraser = page.locator(".ipyimagegen-mask-painter .widget-toggle-button").nth(1)
        expect(eraser).to_have_class(re.compile("mod-active"), timeout=10_000)
        expect(page.locator(".ipyimagegen-edit-summary")).to_contain_text("mask: 0.0%")  # nothing painted
        assert console.relevant() == [], console.relevant()


DROP_SCRIPT = """([where, kind, b64, name]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], name, { type: "image/png" }));
  if (kind === "paste") {
    document.dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, bubbles: true }));
    return;
  }
  const target = document.querySelector(where);
  for (const type of ["dragenter", "dragover", "drop"]) {
    target.dispatchEvent(new DragEvent(type, { dataTransfer: data, bubbles: true, cancelable: true }));
  }
}"""


def test_a_picture_dropped_on_the_canvas_or_pasted_loads_as_an_upload(tmp_path: Path) -> None:
    require_chromium()
    import base64
    import io

    from PIL import Image
    from playwright.sync_api import expect

    def png(width: int, height: int) -> str:
        buffer = io.BytesIO()
        Image.new("RGB", (width, height), (200, 90, 30)).save(buffer, format="PNG")
        return base64.b64encode(buffer.getvalue()).decode()

    notebook = write_notebook(tmp_path / "drop.ipynb", UPLOAD_CELL)
    with voila(notebook, tmp_path) as url, browser_page() as (page, console):
        page.goto(url, wait_until="domcontentloaded", timeout=60_000)
        canvas = ".ipyimagegen-edit-tab .ipyimagegen-mask-canvas"
        page.locator(canvas).first.wait_for(state="visible", timeout=60_000)
        summary = page.locator(".ipyimagegen-edit-summary")
        upload_row = page.locator(".ipyimagegen-edit-tab .ipyimagegen-edit-upload").first

        page.evaluate(DROP_SCRIPT, [canvas, "drop", png(300, 200), "dropped.png"])
        expect(summary).to_contain_text("300×200", timeout=30_000)
        expect(upload_row).to_contain_text("dropped.png")

        page.evaluate(DROP_SCRIPT, [canvas, "paste", png(240, 160), "image.png"])
        expect(summary).to_contain_text("240×160", timeout=30_000)
        expect(upload_row).to_contain_text("pasted-1.png")
        assert console.relevant() == [], console.relevant()
