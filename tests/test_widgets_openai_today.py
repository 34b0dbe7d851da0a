"""The studio on OpenAI as it is today: today's models offered, shutdowns shown, cost on every job."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from edit_helpers import picture
from fake_openai import OpenAIToday
from ipyimagegen.api.client import OpenAIClient
from ipyimagegen.models import live_models, today
from ipyimagegen.widgets.studio import Studio
from widget_helpers import WAIT_S


@pytest.fixture
def studio(tmp_path) -> Iterator[tuple[Studio, OpenAIToday]]:
    with OpenAIToday() as server:
        server.shutdown_dates = {"gpt-image-2": (today() + timedelta(days=40)).isoformat()}
        client = OpenAIClient(
            base_url=server.base_url, api_key="sk-test", follow_shutdowns=True, max_retries=0
        )
        made = Studio(client, gallery=tmp_path / "gallery")
        yield made, server
        made.close()


def _generate(studio: Studio, prompt: str) -> str:
    tab = studio.generate_tab
    tab.prompt_box.value = prompt
    tab.controls.run_button.click()
    assert studio.runner.wait(WAIT_S)
    return tab.controls.status.value


def test_todays_models_with_shutdowns_ahead_shown(studio: tuple[Studio, OpenAIToday]) -> None:
    made, _server = studio
    params = made.generate_tab.params
    assert params.offered_models == live_models("generations") and params.model == "gpt-image-2.6-flare"
    labels = dict((value, label) for label, value in params.model_control.options)
    assert (
        labels["gpt-image-2"].startswith("gpt-image-2 (shuts down 20")
        and labels["gpt-image-2.6-flare"] == "gpt-image-2.6-flare"
    )
    params.model = "gpt-image-2"
    assert (
        params.model_note.value.startswith("shuts down on 20")
        and "move to gpt-image-2.6-flare" in params.model_note.value
    )
    assert not params.is_shown("input_fidelity") and params.is_shown("moderation")
    params.model = "gpt-image-2.6-sunburst"
    assert params.model_note.value == "" and params.is_shown("complexity")
    assert {"xhigh", "max"} <= set(params.quality_control.options)


def test_each_job_shows_its_estimated_cost_and_the_session_total(studio: tuple[Studio, OpenAIToday]) -> None:
    made, server = studio
    first = _generate(made, "a white siamese cat")
    second = _generate(made, "a black cat")
    assert "≈ $0.032" in first and "estimate, prices of 2026-" in first and "this session" not in first
    assert "this session $0.064" in second
    assert all("response_format" not in call.json() for call in server.calls)
    items = made.gallery.items()
    assert len(items) == 2 and items[0].metadata["details"]["cost"]["usd"] == pytest.approx(0.03188)
    assert items[0].metadata["details"]["usage"]["output_tokens"] == 1056
    assert made.gallery.total_cost() == pytest.approx(0.06376)


def test_variations_are_made_as_edits(studio: tuple[Studio, OpenAIToday]) -> None:
    made, server = studio
    made.tabs.selected_index = 2
    tab = made.variations_tab
    assert tab.by_edit and not tab.controls.run_button.disabled
    tab.use_image(picture(300, 200))
    tab.controls.run_button.click()
    assert made.runner.wait(WAIT_S)
    assert server.calls[-1].path == "/v1/images/edits" and len(made.grid.tiles) == 1
    assert "≈ $" in tab.controls.status.value


def test_history_sums_the_cost_of_what_it_lists(studio: tuple[Studio, OpenAIToday]) -> None:
    made, _server = studio
    _generate(made, "a white siamese cat")
    _generate(made, "a black dog")
    made.tabs.selected_index = 3
    history = made.history
    assert "2 images · ≈ $0.064 (estimate)" in history.page_label.value
    history.search.value = "cat"  # the list follows the search at once
    assert "1 image · ≈ $0.032 (estimate)" in history.page_label.value
