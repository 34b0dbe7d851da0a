"""The studio on the preview engine: a flagged prompt is refused as the API refuses it, the status says
what happened and what to do, and nothing is lost."""

from __future__ import annotations

import html
import re

import pytest

from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.widgets.studio import Studio
from widget_helpers import WAIT_S


def _status_text(studio: Studio) -> str:
    """The status line as a person reads it (the HTML's text)."""
    return html.unescape(re.sub(r"<[^>]+>", "", studio.generate_tab.status.value))


def _click_generate(studio: Studio, prompt: str, **params: object) -> None:
    tab = studio.generate_tab
    tab.prompt_box.textarea.value = prompt
    for name, value in params.items():
        setattr(tab.params, name, value)
    tab.controls.run_button.click()
    assert studio.runner.wait(WAIT_S)


@pytest.mark.parametrize(
    ("model", "code", "said"),
    [
        ("gpt-image-2.6-flare", "moderation_blocked", "rejected by the safety system"),
        ("dall-e-3", "content_policy_violation", "rejected as a result of our safety system"),
    ],
)
def test_a_flagged_prompt_shows_what_happened_and_what_to_do(model: str, code: str, said: str) -> None:
    studio = Studio(PreviewEngine())
    prompt = "a knight with a machine gun at the castle gate"
    _click_generate(studio, prompt, model=model)
    status = _status_text(studio)
    assert said in status and "prompt" in status
    assert "Rephrase the prompt" in status and status.count("Rephrase the prompt") == 1
    assert f"code={code}" in status
    assert "machine gun" not in status  # the list is never shown
    assert "ipyimagegen-error" in studio.generate_tab.status.value
    # nothing lost: the prompt stays to be rephrased, no placeholder stays behind, the studio works on
    assert studio.generate_tab.prompt_box.value == prompt
    assert studio.grid.tiles == [] and not studio.generate_tab.controls.run_button.disabled
    _click_generate(studio, "a knight with a lute at the castle gate", model=model)
    assert len(studio.grid.images) == 1 and "ipyimagegen-ok" in studio.generate_tab.status.value


def test_moderation_low_in_the_panel_relaxes_the_list() -> None:
    studio = Studio(PreviewEngine())
    _click_generate(studio, "an old pistol on the lawn", model="gpt-image-2.6-flare", moderation="auto")
    assert "safety_violations=[weapons]" in _status_text(studio)
    _click_generate(studio, "an old pistol on the lawn", model="gpt-image-2.6-flare", moderation="low")
    assert len(studio.grid.images) == 1
