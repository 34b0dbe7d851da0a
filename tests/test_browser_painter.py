"""The mask painter in a real browser (Voila + headless Chromium), driven as a user drives it: the
mouse, the wheel, the keyboard, the sliders and buttons.

The notebook writes the kernel's mask (and what the Edit tab holds) to files on every change, so
the test checks where paint landed in the picture's own pixels, not only what the page drew.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from browser import browser_page, require_chromium, voila, write_notebook
from waiting import wait_until

pytestmark = pytest.mark.browser

TESTS_DIR = Path(__file__).resolve().parent
WIDTH, HEIGHT, DISPLAY = 2048, 1024, 512  # the fitted view: a quarter of the picture's pixels
GREEN = (1400, 300, 1600, 500)  # x0, y0, x1, y1 of a green square in the blue half


def _painter_cell(state: Path) -> str:
    return textwrap.dedent(
        f"""
        import numpy as np
        from ipyimagegen.widgets.mask_painter import MaskPainter

        pixels = np.zeros(({HEIGHT}, {WIDTH}, 3), dtype=np.uint8)
        pixels[:, : {WIDTH} // 2] = (200, 40, 40)
        pixels[:, {WIDTH} // 2 :] = (40, 40, 200)
        x0, y0, x1, y1 = {GREEN}
        pixels[y0:y1, x0:x1] = (40, 200, 40)
        painter = MaskPainter(pixels, max_display_size={DISPLAY})
        painter.brush_size = 8

        def keep(widget):
            np.save({str(state)!r} + ".tmp.npy", widget.mask)
            import os
            os.replace({str(state)!r} + ".tmp.npy", {str(state)!r})

        painter.on_change(keep)
        painter
        """
    )


def _mask(path: Path, changed_from: np.ndarray | None = None, timeout: float = 20.0) -> np.ndarray:
    """The kernel's mask as the notebook last wrote it (waiting for one unlike ``changed_from``)."""

    def changed() -> tuple[np.ndarray] | None:  # in a tuple: an array has no truth value
        try:
            mask = np.load(path)
        except (OSError, ValueError):
            return None
        return (mask,) if changed_from is None or not np.array_equal(mask, changed_from) else None

    (mask,) = wait_until(
        changed, timeout=timeout, interval=0.05, message=f"the kernel's mask to change ({path})"
    )
    return mask


def _centre(mask: np.ndarray) -> tuple[float, float]:
    rows, cols = np.nonzero(mask)
    return float(cols.mean()), float(rows.mean())


def _zoom(page: Any, scope: str = "") -> float:
    return float(page.locator(f"{scope} .ipyimagegen-zoom-label").inner_text().rstrip("%")) / 100


PIXEL_JS = """([scope, x, y]) => {
    // One pixel of the painter's ipycanvas element (what ipycanvas shows), at a point of the view.
    const canvas = document.querySelector(scope + ' canvas.ipyimagegen-painter-canvas');
    const rect = canvas.getBoundingClientRect();
    const k = canvas.width / rect.width;
    return Array.from(canvas.getContext('2d').getImageData(Math.round(x * k), Math.round(y * k), 1, 1).data);
}"""


def _pixel(page: Any, x: float, y: float, scope: str = "") -> list[int]:
    """A pixel of the ipycanvas view at a point of it (CSS pixels from its top-left corner)."""
    return page.evaluate(PIXEL_JS, [scope, x, y])


def _wait_for_pixel(page: Any, x: float, y: float, test: str, scope: str = "") -> None:
    """Wait until the ipycanvas view's pixel at (x, y) passes ``test``, a JS expression of ``p``."""
    page.wait_for_function(
        f"([scope, x, y]) => {{ const p = ({PIXEL_JS})([scope, x, y]); return {test}; }}",
        arg=[scope, x, y],
        timeout=10_000,
    )


def _dot(page: Any, x: float, y: float) -> None:
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.up()


def test_zoom_pan_and_paint_land_on_the_same_picture_pixels(tmp_path: Path) -> None:
    require_chromium()
    from playwright.sync_api import expect

    state = tmp_path / "mask.npy"
    notebook = write_notebook(tmp_path / "painter.ipynb", _painter_cell(state))
    with voila(notebook, tmp_path) as url, browser_page() as (page, console):
        page.goto(url, wait_until="domcontentloaded", timeout=60_000)
        view = page.locator(".ipyimagegen-mask-canvas").first
        view.wait_for(state="visible", timeout=60_000)
        page.locator(".ipyimagegen-zoom-bar").wait_for(state="visible", timeout=60_000)
        box = view.bounding_box()
        assert box is not None and round(box["width"]) == DISPLAY
        fit = _zoom(page)
        assert fit == pytest.approx(box["width"] / WIDTH, abs=0.01)

        # A dot at fit: the picture pixel under the pointer.
        px, py = box["x"] + 100, box["y"] + 120
        _dot(page, px, py)
        first = _mask(state)
        cx, cy = _centre(first)
        assert (cx, cy) == pytest.approx((100 / fit, 120 / fit), abs=3)

        # Ctrl+wheel zooms around the pointer: the same screen point is the same picture pixel.
        page.mouse.move(px, py)
        page.keyboard.down("Control")
        page.mouse.wheel(0, -300)
        page.keyboard.up("Control")
        expect(page.locator(".ipyimagegen-zoom-label")).not_to_have_text(f"{round(fit * 100)}%")
        zoom = _zoom(page)
        assert zoom > fit * 1.5
        page.keyboard.press("Control+z")  # the pointer is over the view: keys reach it, no click
        cleared = _mask(state, first)
        assert not cleared.any()
        _dot(page, px, py)
        again = _mask(state, cleared)
        assert _centre(again) == pytest.approx((cx, cy), abs=3)
        # ...and a dot 40 screen pixels to the right is 40 / zoom picture pixels to the right.
        _dot(page, px + 40, py)
        right = _mask(state, again) & ~again
        assert _centre(right) == pytest.approx((cx + 40 / zoom, cy), abs=3)

        # Space-drag pans without painting; the picture moves under the pointer.
        before = _mask(state)
        page.keyboard.down(" ")
        page.mouse.move(px, py)
        page.mouse.down()
        page.mouse.move(px - 60, py - 30, steps=5)
        page.mouse.up()
        page.keyboard.up(" ")
        page.wait_for_timeout(300)
        assert np.array_equal(_mask(state), before)
        _dot(page, px, py)
        panned = _mask(state, before) & ~before
        assert _centre(panned) == pytest.approx((cx + 60 / zoom, cy + 30 / zoom), abs=3)

        # Middle-drag pans too.
        before = _mask(state)
        page.mouse.move(px, py)
        page.mouse.down(button="middle")
        page.mouse.move(px + 60, py + 30, steps=5)
        page.mouse.up(button="middle")
        page.wait_for_timeout(300)
        assert np.array_equal(_mask(state), before)

        # 100% and Fit.
        page.locator(".ipyimagegen-zoom-100").click()
        expect(page.locator(".ipyimagegen-zoom-label")).to_have_text("100%")
        page.locator(".ipyimagegen-zoom-fit").click()
        expect(page.locator(".ipyimagegen-zoom-label")).to_have_text(f"{round(fit * 100)}%")
        expect(page.locator(".ipyimagegen-mask-painter")).to_contain_text(  # the kernel hears the zoom
            f"{WIDTH}×{HEIGHT} image, shown at {round(fit * 100)}%"
        )

        # The wand (W with the pointer over the view): a click on the green square takes it all.
        page.get_by_role("button", name="Clear mask").click()
        empty = _mask(state, before)
        assert not empty.any()
        gx, gy = (GREEN[0] + GREEN[2]) / 2 * fit, (GREEN[1] + GREEN[3]) / 2 * fit
        box = view.bounding_box()  # where the view is now (the page may have scrolled)
        assert box is not None
        page.mouse.move(box["x"] + gx, box["y"] + gy)
        page.keyboard.press("w")
        expect(page.locator(".ipyimagegen-wand-row")).to_be_visible()
        assert view.bounding_box() == box  # the wand's controls do not move the picture
        page.mouse.click(box["x"] + gx, box["y"] + gy)
        wand = _mask(state, empty)
        expected = np.zeros((HEIGHT, WIDTH), dtype=bool)
        expected[GREEN[1] : GREEN[3], GREEN[0] : GREEN[2]] = True
        assert np.array_equal(wand, expected)
        # Alt+click takes the area away again.
        page.keyboard.down("Alt")
        page.mouse.click(box["x"] + gx, box["y"] + gy)
        page.keyboard.up("Alt")
        assert not _mask(state, wand).any()

        # The feather shows a soft edge in the view: paint a rectangle, then widen the feather.
        page.keyboard.press("r")
        page.mouse.move(box["x"] + 50, box["y"] + 50)
        page.mouse.down()
        page.mouse.move(box["x"] + 150, box["y"] + 150, steps=4)
        page.mouse.up()
        _mask(state, np.zeros((HEIGHT, WIDTH), dtype=bool))
        page.wait_for_timeout(300)
        outside = _pixel(page, 46, 100)
        assert outside[:3] == pytest.approx([200, 40, 40], abs=3)  # the picture's red, no paint
        track = page.locator(
            ".ipyimagegen-feather .slider-container, .ipyimagegen-feather .noUi-target"
        ).first
        track_box = track.bounding_box()
        assert track_box is not None
        page.mouse.click(track_box["x"] + track_box["width"] * 0.3, track_box["y"] + track_box["height"] / 2)
        _wait_for_pixel(page, 46, 100, "p[2] > 60")  # the soft edge tints it with the mask's magenta
        assert console.relevant() == []


def _studio_cell(gallery: Path, state: Path) -> str:
    return textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, {str(TESTS_DIR)!r})
        from edit_helpers import picture
        from ipyimagegen.engines.preview import PreviewEngine
        from ipyimagegen.gallery import Gallery
        from ipyimagegen.widgets import Studio

        s = Studio(PreviewEngine(), gallery=Gallery({str(gallery)!r}))
        tab = s.edit_tab
        if tab.prepared is None:  # a first visit; after a reload the draft is back instead
            tab.params.model = "gpt-image-2"
            tab.use_image(picture(600, 400))

        def keep(_painter=None):
            with open({str(state)!r}, "w") as out:
                json.dump({{"placement": list(tab.painter.view.placement),
                           "marked": tab.painter.painted_fraction,
                           "size": list(tab.prepared.picture.size) if tab.prepared else None}}, out)

        tab.painter.on_change(keep)
        tab.painter.view.observe(lambda _change: keep(), "placement")
        s.select("Edit")
        s
        """
    )


def _state(path: Path, test: Any, timeout: float = 20.0) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        try:
            found = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return found if test(found) else None

    return wait_until(
        reached, timeout=timeout, interval=0.05, message=f"the Edit tab to reach the state asked ({path})"
    )


def test_extend_drag_in_frame_before_after_and_the_draft_after_a_reload(tmp_path: Path) -> None:
    require_chromium()
    from playwright.sync_api import expect

    state = tmp_path / "state.json"
    notebook = write_notebook(tmp_path / "studio.ipynb", _studio_cell(tmp_path / "gallery", state))
    scope = ".ipyimagegen-edit-tab"
    with voila(notebook, tmp_path) as url, browser_page() as (page, console):
        page.goto(url, wait_until="domcontentloaded", timeout=60_000)
        view = page.locator(f"{scope} .ipyimagegen-mask-canvas")
        view.wait_for(state="visible", timeout=60_000)

        # Extend to the right: the model's frame of that shape, the picture at its left, the rest to fill.
        page.locator(".ipyimagegen-extend-right").click()
        extended = _state(state, lambda s: s["placement"] and s["marked"] > 0.2)
        assert extended["size"] == [1536, 864]  # 600x400 made 900x400 wide: the 16:9 size
        x0, y0, w, h = extended["placement"]
        assert x0 == 0
        expect(page.locator(f"{scope} .ipyimagegen-edit-summary")).to_contain_text("1536×864")

        # Drag the picture inside the frame with Move (M with the pointer over the view).
        box = view.bounding_box()
        assert box is not None
        scale = box["width"] / 1536
        centre = (box["x"] + (x0 + w / 2) * scale, box["y"] + (y0 + h / 2) * scale)
        page.mouse.move(*centre)
        page.keyboard.press("m")
        page.mouse.down()
        page.mouse.move(centre[0] + 60, centre[1], steps=5)
        page.mouse.up()
        moved = _state(state, lambda s: s["placement"] and s["placement"][0] > 0)
        assert moved["placement"][0] == pytest.approx(60 / scale, abs=4)

        # Edit, then compare with the result: the picture layer shows the result left of the slider.
        page.keyboard.press("b")
        page.locator(f"{scope} .ipyimagegen-prompt textarea").fill("a wide lake at dawn")
        page.locator(".ipyimagegen-edit-run").click()
        expect(page.locator(f"{scope} .ipyimagegen-status")).to_contain_text("1 image in", timeout=30_000)
        toggle = page.locator(f"{scope} .ipyimagegen-compare-toggle input")
        toggle.wait_for(state="visible", timeout=30_000)
        probe = (box["width"] * 0.04, box["height"] * 0.5)  # in the border the model filled (60 px wide)
        expect(page.locator(f"{scope} .ipyimagegen-candidates")).to_contain_text("The result")
        toggle.check()  # on already: the result is on the painter (the mask is hidden while comparing)
        slider = page.locator(f"{scope} .ipyimagegen-compare-slider")
        slider.fill("1000")  # the divider at the right: all "before"
        page.wait_for_timeout(800)
        before = _pixel(page, *probe, scope=scope)
        slider.fill("0")  # the divider at the left: all "after", the result the model made
        far = (
            f"Math.abs(p[0] - {before[0]}) + Math.abs(p[1] - {before[1]}) + Math.abs(p[2] - {before[2]}) > 30"
        )
        _wait_for_pixel(page, *probe, far, scope)
        slider.fill("1000")
        near = (
            f"Math.abs(p[0] - {before[0]}) + Math.abs(p[1] - {before[1]}) + Math.abs(p[2] - {before[2]}) <= 6"
        )
        _wait_for_pixel(page, *probe, near, scope)
        toggle.uncheck()

        # A reload: a new kernel in Voila; the draft brings the picture, mask and prompt back.
        page.reload(wait_until="domcontentloaded")
        page.locator(f"{scope} .ipyimagegen-mask-canvas").wait_for(state="visible", timeout=60_000)
        expect(page.locator(f"{scope} .ipyimagegen-status")).to_contain_text(
            "Your draft is back", timeout=30_000
        )
        expect(page.locator(f"{scope} .ipyimagegen-prompt textarea")).to_have_value("a wide lake at dawn")
        expect(page.locator(f"{scope} .ipyimagegen-edit-summary")).to_contain_text("1536×864")
        assert console.relevant() == []


OVERLAY_CELL_EXTRA = f"""
def guides(overlay):  # picture pixels: a yellow frame round the green square
    overlay.stroke_style = "#ffff00"
    overlay.line_width = 16
    overlay.stroke_rect({GREEN[0]}, {GREEN[1]}, {GREEN[2] - GREEN[0]}, {GREEN[3] - GREEN[1]})

painter.draw_overlay(guides)
painter
"""

INPUT_PIXEL_JS = """([x, y]) => {
    const canvas = document.querySelector('.ipyimagegen-mask-canvas');
    const rect = canvas.getBoundingClientRect();
    const k = canvas.width / rect.width;
    return Array.from(canvas.getContext('2d').getImageData(Math.round(x * k), Math.round(y * k), 1, 1).data);
}"""


def test_what_shows_is_ipycanvas_pixels_and_an_overlay_stays_aligned_under_zoom(tmp_path: Path) -> None:
    require_chromium()
    from playwright.sync_api import expect

    state = tmp_path / "mask.npy"
    cell = _painter_cell(state).rstrip().removesuffix("painter") + OVERLAY_CELL_EXTRA
    notebook = write_notebook(tmp_path / "painter.ipynb", cell)
    with voila(notebook, tmp_path) as url, browser_page() as (page, console):
        page.goto(url, wait_until="domcontentloaded", timeout=60_000)
        page.locator(".ipyimagegen-zoom-bar").wait_for(state="visible", timeout=60_000)
        view = page.locator(".ipyimagegen-mask-canvas")
        box = view.bounding_box()
        assert box is not None
        fit = box["width"] / WIDTH
        red = (100, 100)
        # The picture is in the ipycanvas element; the input layer over it is transparent there.
        _wait_for_pixel(
            page, *red, "Math.abs(p[0] - 200) < 4 && Math.abs(p[1] - 40) < 4 && Math.abs(p[2] - 40) < 4"
        )
        assert page.evaluate(INPUT_PIXEL_JS, list(red))[3] == 0
        # ipycanvas's canvas is no tab stop: it would swallow Tab (keys belong to the input layer).
        assert page.evaluate("document.querySelector('canvas.ipyimagegen-painter-canvas').tabIndex") == -1
        # The overlay, drawn in picture pixels, frames the green square.
        edge = (GREEN[0] * fit, (GREEN[1] + GREEN[3]) / 2 * fit)
        _wait_for_pixel(page, *edge, "p[0] > 200 && p[1] > 200 && p[2] < 90")

        # A dot: the kernel's mask, then ipycanvas's mask layer, and the page's own drawing of it goes.
        dot = (60, 180)
        _dot(page, box["x"] + dot[0], box["y"] + dot[1])
        mask = _mask(state)
        assert mask[round(dot[1] / fit), round(dot[0] / fit)]
        _wait_for_pixel(page, *dot, "p[2] > 100 && p[1] < 35")  # red under half-opaque magenta
        page.wait_for_function(f"() => ({INPUT_PIXEL_JS})({list(dot)})[3] === 0", timeout=10_000)

        # Zoom in around a point: once ipycanvas has drawn the new view (no CSS transform left),
        # the overlay's frame and the picture's square are still together, where the zoom put them.
        pointer = (box["x"] + 300, box["y"] + 120)
        page.mouse.move(*pointer)
        page.keyboard.down("Control")
        page.mouse.wheel(0, -250)
        page.keyboard.up("Control")
        expect(page.locator(".ipyimagegen-zoom-label")).not_to_have_text(f"{round(fit * 100)}%")
        page.wait_for_function(
            "() => ['', 'none'].includes(getComputedStyle(document.querySelector("
            "'canvas.ipyimagegen-painter-canvas')).transform)",
            timeout=10_000,
        )
        page.wait_for_timeout(300)
        zoom = _zoom(page)
        assert zoom > fit * 1.3

        def screen(x: float, y: float) -> tuple[float, float]:  # a picture point on screen now
            px, py = pointer[0] - box["x"], pointer[1] - box["y"]
            return (px + (x * fit - px) * zoom / fit, py + (y * fit - py) * zoom / fit)

        left_edge = screen(GREEN[0], (GREEN[1] + GREEN[3]) / 2)
        inside = screen(GREEN[0] + 40, (GREEN[1] + GREEN[3]) / 2)
        outside = screen(GREEN[0] - 40, (GREEN[1] + GREEN[3]) / 2)
        _wait_for_pixel(page, *left_edge, "p[0] > 200 && p[1] > 200 && p[2] < 90")
        green = _pixel(page, *inside)
        assert green[1] > 150 and green[0] < 80  # the square's green, just inside the frame
        blue = _pixel(page, *outside)
        assert blue[2] > 150 and blue[1] < 80  # the blue half, just outside it
        assert console.relevant() == []


def test_two_views_of_one_painter_show_the_same_and_paint_where_the_pointer_is(tmp_path: Path) -> None:
    require_chromium()
    from playwright.sync_api import expect

    state = tmp_path / "mask.npy"
    notebook = write_notebook(tmp_path / "painter.ipynb", _painter_cell(state), "painter  # a second view")
    with voila(notebook, tmp_path) as url, browser_page(viewport=(1200, 1100)) as (page, console):
        page.goto(url, wait_until="domcontentloaded", timeout=60_000)
        labels = page.locator(".ipyimagegen-zoom-label")
        page.locator(".ipyimagegen-zoom-bar").nth(1).wait_for(state="visible", timeout=60_000)
        views = page.locator(".ipyimagegen-mask-canvas")
        first, second = views.nth(0).bounding_box(), views.nth(1).bounding_box()
        assert first is not None and second is not None
        fit = first["width"] / WIDTH
        page.mouse.move(first["x"] + 100, first["y"] + 100)
        page.keyboard.down("Control")
        page.mouse.wheel(0, -300)  # zoom in the first view...
        page.keyboard.up("Control")
        expect(labels.nth(0)).not_to_have_text(f"{round(fit * 100)}%")
        expect(labels.nth(1)).to_have_text(
            labels.nth(0).inner_text(), timeout=10_000
        )  # ...the second shows it
        zoom = float(labels.nth(1).inner_text().rstrip("%")) / 100
        page.wait_for_timeout(300)
        _dot(page, second["x"] + 200, second["y"] + 120)  # paint in the second view
        mask = _mask(state)
        # The picture point under the pointer: the zoom kept (100, 100) of the view where it was.
        expected = (100 / fit + (200 - 100) / zoom, 100 / fit + (120 - 100) / zoom)
        assert _centre(mask) == pytest.approx(expected, abs=3)
        assert console.relevant() == []
