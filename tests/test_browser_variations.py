"""The Variations tab in a real browser (Voila + headless Chromium): what it says before a picture,
the model the user chooses with a note on what it does, and the prompt where variations are edits.

The studio runs on the offline preview engine, where dall-e-2 serves ``/images/variations`` and the
GPT image models make variations as edits with the prompt. A failing test leaves a screenshot of
its page in its tmp folder as ``failure.png``.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from browser import browser_page, loaded_images, page_problems, require_chromium, voila, write_notebook
from ipyimagegen.api.backend import VARIATION_PROMPT

pytestmark = pytest.mark.browser

STUDIO = ".ipyimagegen-studio"
GENERATE_TAB = f"{STUDIO} .ipyimagegen-generate-tab"
VARIATIONS_TAB = f"{STUDIO} .ipyimagegen-variations-tab"
RESULT_TILES = f"{STUDIO} .ipyimagegen-results .ipyimagegen-grid .ipyimagegen-tile"
RESULT_IMAGES = f"{RESULT_TILES} img.ipyimagegen-tile-image"
STEP_MS = 30_000
GPT_MODEL = "gpt-image-2.6-flare"  # the preview engine's default model

STUDIO_CELL = textwrap.dedent(
    """
    import ipyimagegen as ig

    ig.studio(ig.PreviewEngine(), gallery=False)
    """
)


def _wait_for_results(page: Any, count: int) -> None:
    page.wait_for_function(
        "([s, n]) => { const all = Array.from(document.querySelectorAll(s));"
        " return all.length === n && all.every(i => i.complete && i.naturalWidth > 0); }",
        arg=[RESULT_IMAGES, count],
        timeout=STEP_MS,
    )
    assert loaded_images(page, RESULT_IMAGES) == (count, count)


def test_variations_say_what_they_do_and_ask_for_a_prompt_where_they_are_edits(tmp_path: Path) -> None:
    from playwright.sync_api import expect

    require_chromium()
    notebook = write_notebook(tmp_path / "variations.ipynb", STUDIO_CELL)
    with voila(notebook, tmp_path) as url, browser_page() as (page, console):
        page.goto(url, wait_until="domcontentloaded", timeout=60_000)
        prompt = page.locator(f"{GENERATE_TAB} .ipyimagegen-prompt textarea")
        prompt.wait_for(state="visible", timeout=60_000)

        # Before a picture: the tab speaks to a user of the page, and says what dall-e-2 does.
        page.locator(STUDIO).get_by_role("tab", name="Variations", exact=True).click()
        tab = page.locator(VARIATIONS_TAB)
        empty = tab.locator(".ipyimagegen-variations-empty")
        expect(empty).to_have_text(
            "Choose a picture: Upload, drop one here, or click Variations on a result.", timeout=STEP_MS
        )
        model = tab.locator(".ipyimagegen-params select").first
        note = tab.locator(".ipyimagegen-variations-model-note")
        variations_prompt = tab.locator(".ipyimagegen-prompt textarea")
        expect(model).to_have_value("dall-e-2")
        expect(note).to_have_text("dall-e-2 makes variations here from the picture alone: no prompt is sent")
        expect(variations_prompt).to_be_hidden()
        tab.locator(".ipyimagegen-variations-run").click()
        expect(tab.locator(".ipyimagegen-status")).to_contain_text("No image yet. Choose a picture")
        assert "use_image" not in tab.inner_text()

        # Variations on a result: its model stays, the note says who makes what, the prompt is asked for.
        page.locator(STUDIO).get_by_role("tab", name="Generate", exact=True).click()
        prompt.fill("a red kite over a beach")
        page.locator(f"{GENERATE_TAB} .ipyimagegen-generate").click()
        _wait_for_results(page, 1)
        page.locator(RESULT_TILES).first.locator(".ipyimagegen-variations").click()
        expect(model).to_have_value(GPT_MODEL, timeout=STEP_MS)
        expect(note).to_have_text(
            f"dall-e-2 makes variations here; {GPT_MODEL} makes them as edits with your prompt"
        )
        expect(empty).to_have_count(0)
        expect(variations_prompt).to_be_visible()
        expect(variations_prompt).to_have_value(VARIATION_PROMPT)
        beside = note.bounding_box()
        chosen = model.bounding_box()
        assert beside is not None and chosen is not None
        right = (
            beside["x"] >= chosen["x"] + chosen["width"] - 1 and beside["y"] < chosen["y"] + chosen["height"]
        )
        under = beside["x"] >= chosen["x"] - 1 and 0 <= beside["y"] - (chosen["y"] + chosen["height"]) < 12
        assert right or under, (beside, chosen)  # beside the selector, or right under it in a narrow column

        variations_prompt.fill("")
        tab.locator(".ipyimagegen-variations-run").click()
        problem = tab.locator(".ipyimagegen-variations-prompt .ipyimagegen-field-error")
        expect(problem).to_contain_text(f"Write a prompt: {GPT_MODEL} makes the variations as edits")
        page.wait_for_timeout(500)
        expect(page.locator(RESULT_TILES)).to_have_count(1)  # nothing was asked of the model
        page.screenshot(path=str(tmp_path / "variations-prompt-needed.png"), full_page=True)

        variations_prompt.fill("The same kite at night")
        expect(problem).to_have_text("", timeout=STEP_MS)
        variations_prompt.press("Control+Enter")
        _wait_for_results(page, 2)
        expect(tab.locator(".ipyimagegen-status")).to_contain_text(re.compile(r"1 image in [\d.]+ s"))

        # The user's choice: dall-e-2 makes real variations, and the prompt box goes (nothing is sent).
        model.select_option("dall-e-2")
        expect(note).to_have_text("dall-e-2 makes variations here from the picture alone: no prompt is sent")
        expect(variations_prompt).to_be_hidden()
        tab.locator(".ipyimagegen-variations-run").click()
        _wait_for_results(page, 3)
        page.screenshot(path=str(tmp_path / "variations-real.png"), full_page=True)
        assert page_problems(page) == [], page_problems(page)
        assert console.relevant() == [], console.relevant()
