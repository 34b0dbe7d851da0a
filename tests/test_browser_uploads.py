"""Big uploads in a real browser: phone-sized photos reach the Edit tab through Jupyter's websocket.

Voila is a real Jupyter server with its default websocket limit (a message over 10 MiB closes
the connection), so a file sent in one message never arrives. The files are made here: an
18 MB PNG of noise (6 megapixels) and a 42 MB JPEG (quality 100), both well over that limit, and a
60 MB file over the Edit tab's own 50 MB limit.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from browser import browser_page, require_chromium, voila, write_notebook

pytestmark = pytest.mark.browser

MiB = 1024 * 1024
JUPYTER_MESSAGE_LIMIT = 10 * MiB
"""Tornado's default ``websocket_max_message_size``, which Jupyter servers (and Voila) keep."""

CELL = textwrap.dedent(
    """
    import numpy as np
    from ipyimagegen.engines.preview import PreviewEngine
    from ipyimagegen.widgets import Studio

    s = Studio(PreviewEngine())
    y, x = np.mgrid[0:240, 0:320]
    s.edit_tab.use_image(np.stack([x * 255 // 320, y * 255 // 240, np.full_like(x, 90)], -1).astype(np.uint8))
    s.select("Edit")
    s
    """
)

# Every text the button's note shows, in order, so that a brief progress text is not missed.
WATCH_NOTES = """() => {
  window.__notes = [];
  const note = document.querySelector(".ipyimagegen-edit-upload .ipyimagegen-file-note");
  new MutationObserver(() => window.__notes.push(note.textContent)).observe(
    note, { childList: true, characterData: true, subtree: true });
}"""


def _noise_png(path: Path, width: int, height: int) -> None:
    from PIL import Image

    pixels = np.random.default_rng(1).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="PNG", compress_level=1)


def _noise_jpeg(path: Path, width: int, height: int) -> None:
    from PIL import Image

    pixels = np.random.default_rng(2).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG", quality=100)


def test_phone_sized_photos_upload_in_pieces_and_one_over_the_limit_is_refused(tmp_path: Path) -> None:
    require_chromium()
    from playwright.sync_api import expect

    photos = tmp_path / "photos"
    photos.mkdir()
    png, jpeg, huge = photos / "scan.png", photos / "phone.jpg", photos / "panorama.jpg"
    _noise_png(png, 3000, 2000)
    _noise_jpeg(jpeg, 5600, 3800)
    with huge.open("wb") as file:  # never read: refused from its size
        file.truncate(60 * MiB)
    assert png.stat().st_size > 17 * MiB and jpeg.stat().st_size > 40 * MiB
    assert min(png.stat().st_size, jpeg.stat().st_size) > JUPYTER_MESSAGE_LIMIT

    sent: list[int] = []  # the size of every websocket frame the page sends
    closed: list[str] = []
    console_text: list[str] = []

    def watch(socket: Any) -> None:
        socket.on("framesent", lambda payload: sent.append(len(payload)))
        socket.on("close", lambda _socket: closed.append(socket.url))

    notebook = write_notebook(tmp_path / "uploads.ipynb", CELL)
    with voila(notebook, tmp_path) as url, browser_page() as (page, console):
        page.on("websocket", watch)
        page.on("console", lambda message: console_text.append(message.text))
        page.goto(url, wait_until="domcontentloaded", timeout=60_000)
        canvas = page.locator(".ipyimagegen-edit-tab .ipyimagegen-mask-canvas").first
        canvas.wait_for(state="visible", timeout=60_000)
        summary = page.locator(".ipyimagegen-edit-summary")
        status = page.locator(".ipyimagegen-edit-tab .ipyimagegen-status")
        note = page.locator(".ipyimagegen-edit-upload .ipyimagegen-file-note")
        zoom = page.locator(".ipyimagegen-edit-tab .ipyimagegen-zoom-label")
        upload_button = page.locator(".ipyimagegen-edit-upload button").first
        expect(summary).to_contain_text("320×240", timeout=30_000)
        expect(summary).to_contain_text("limit 50.0 MB")

        # Paint first: a refused upload must leave the painting as it is.
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + box["height"] / 2, steps=6)
        page.mouse.up()
        expect(summary).not_to_contain_text("mask: 0.0%", timeout=30_000)
        painted = summary.inner_text()

        def upload(path: Path) -> None:
            with page.expect_file_chooser() as chooser:
                upload_button.click()
            chooser.value.set_files(str(path))

        def fitted(width: int) -> str:
            """The zoom the page shows once it has decoded a picture ``width`` pixels wide."""
            view = canvas.bounding_box()
            assert view is not None
            return f"{round(view['width'] / width * 100)}%"

        upload(huge)
        problem = page.locator(
            ".ipyimagegen-edit-tab .ipyimagegen-edit-upload ~ .ipyimagegen-field-error"
        ).first
        expect(problem).to_contain_text(  # beside the button that chose it
            "panorama.jpg is 60.0 MB; the largest file accepted is 50.0 MB", timeout=30_000
        )
        expect(note).to_have_text("not used: panorama.jpg")
        assert summary.inner_text() == painted  # the picture and the painting are as they were

        page.evaluate(WATCH_NOTES)
        upload(png)
        expect(summary).to_contain_text("Sends a 3000×2000 PNG image", timeout=120_000)
        expect(status).to_contain_text("Loaded scan.png", timeout=30_000)
        expect(note).to_have_text("scan.png")
        expect(zoom).to_have_text(fitted(3000), timeout=60_000)  # the page shows the new picture
        notes = page.evaluate("() => window.__notes")
        assert any(text.startswith("reading ") and text.endswith(" of 17.2 MB") for text in notes), notes

        upload(jpeg)
        expect(summary).to_contain_text("Sends a 5600×3800 JPEG image", timeout=120_000)
        expect(status).to_contain_text("Loaded phone.jpg", timeout=30_000)
        expect(zoom).to_have_text(fitted(5600), timeout=60_000)
        page.screenshot(path=str(tmp_path / "uploads.png"))

        assert max(sent) <= MiB, f"a websocket message of {max(sent):,} bytes"
        assert sum(sent) > png.stat().st_size + jpeg.stat().st_size  # both went through, in pieces
        assert closed == [], closed
        assert not [text for text in console_text if "connection lost" in text.lower()]
        assert console.relevant() == [], console.relevant()
