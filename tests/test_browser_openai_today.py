"""The studio in a real browser against OpenAI as it answers today (tests/fake_openai.py, in the kernel)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from browser import browser_page, require_chromium, voila, write_notebook

pytestmark = pytest.mark.browser

TESTS_DIR = Path(__file__).resolve().parent
GENERATE_TAB = ".ipyimagegen-studio .ipyimagegen-generate-tab"
TILE_IMAGES = ".ipyimagegen-results .ipyimagegen-tile img.ipyimagegen-tile-image"


def _cell(gallery: Path) -> str:
    return textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(TESTS_DIR)!r})
        from datetime import timedelta
        from fake_openai import OpenAIToday
        from ipyimagegen.api.client import OpenAIClient
        from ipyimagegen.models import today
        from ipyimagegen.widgets import Studio

        api = OpenAIToday().__enter__()
        api.shutdown_dates = {{"gpt-image-2": (today() + timedelta(days=40)).isoformat()}}
        client = OpenAIClient(base_url=api.base_url, api_key="sk-test", follow_shutdowns=True)
        s = Studio(client, gallery={str(gallery)!r})
        s
        """
    )


def test_todays_models_cost_and_variations_as_edits(tmp_path: Path) -> None:
    require_chromium()
    from playwright.sync_api import expect

    notebook = write_notebook(tmp_path / "today.ipynb", _cell(tmp_path / "gallery"))
    with voila(notebook, tmp_path) as url, browser_page() as (page, _console):
        page.goto(url, wait_until="domcontentloaded", timeout=60_000)
        prompt = page.locator(f"{GENERATE_TAB} .ipyimagegen-prompt textarea")
        prompt.wait_for(state="visible", timeout=60_000)
        model = page.locator(f"{GENERATE_TAB} .ipyimagegen-params select").first
        offered = [name.replace("\xa0", " ") for name in model.locator("option").all_inner_texts()]
        assert offered[0] == "gpt-image-2.6-flare" and not any("gpt-image-1" in name for name in offered)
        assert any(name.startswith("gpt-image-2 (shuts down 20") for name in offered), offered

        prompt.fill("a white siamese cat")
        page.locator(f"{GENERATE_TAB} .ipyimagegen-generate").click()
        status = page.locator(f"{GENERATE_TAB} .ipyimagegen-status")
        expect(status).to_contain_text("≈ $0.032 (estimate, prices of", timeout=30_000)
        page.wait_for_function(
            f"Array.from(document.querySelectorAll({TILE_IMAGES!r})).filter(i => i.naturalWidth > 0).length === 1",
            timeout=30_000,
        )

        page.locator(".ipyimagegen-tile").first.get_by_role("button", name="Variations").click()
        tab = page.locator(".ipyimagegen-variations-tab")
        expect(tab.locator(".ipyimagegen-variations-model-note")).to_contain_text(
            "no model here makes variations; gpt-image-2.6-flare makes them as edits with your prompt",
            timeout=30_000,
        )
        tab.locator(".ipyimagegen-prompt textarea").fill("The same cat, in autumn colours")
        tab.locator(".ipyimagegen-variations-run").click()
        expect(tab.locator(".ipyimagegen-status")).to_contain_text("this session $0.064", timeout=30_000)
        page.screenshot(path=str(tmp_path / "variations-as-edits.png"), full_page=True)
