"""The README's first command, ``ipyimagegen studio``, in a real browser: the studio opens on the
preview engine, shows no image until Generate is clicked, then shows what it made."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from browser import _server, browser_page, free_port, jupyter_env, require_chromium, wait_for_port

pytestmark = pytest.mark.browser


def test_ipyimagegen_studio_opens_the_studio_and_makes_nothing_until_a_click(tmp_path: Path) -> None:
    require_chromium()
    from playwright.sync_api import expect

    port = free_port()
    command = [str(Path(sys.executable).with_name("ipyimagegen")), "studio", "--no-browser", f"--port={port}"]
    env = jupyter_env(tmp_path)
    with _server(command, tmp_path, env, tmp_path / "studio.log") as process:
        wait_for_port(port, process)
        with browser_page(viewport=(1400, 900)) as (page, console):
            page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded", timeout=60_000)
            expect(page.locator(".ipyimagegen-backend")).to_contain_text("preview engine", timeout=60_000)
            page.wait_for_timeout(1000)
            assert page.locator(".ipyimagegen-tile").count() == 0  # nothing made by opening the page
            assert page.locator("text=TYPE_A_KEY").count() == 0  # no notebook instructions in the app
            page.locator(".ipyimagegen-generate-tab .ipyimagegen-prompt textarea").fill(
                "a lighthouse at dusk"
            )
            page.locator(".ipyimagegen-generate").first.click()
            expect(page.locator(".ipyimagegen-tile img").first).to_be_visible(timeout=30_000)
            assert console.relevant() == []
    gallery = Path(env["IPYIMAGEGEN_GALLERY"])  # what `ipyimagegen studio` keeps unless one is set
    assert gallery.is_dir() and any(gallery.rglob("*.png")), os.listdir(tmp_path)
