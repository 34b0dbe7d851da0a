"""The client against OpenAI as it answers today (tests/fake_openai.py): every live model works,
retired ones are refused before sending, and ``GET /v1/models`` keeps the list true."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from fake_openai import OpenAIToday, sample_mask, sample_png
from ipyimagegen.api import ModelShutDownError, PartialImage, ValidationError
from ipyimagegen.api.client import OpenAIClient
from ipyimagegen.models import EDITS, GENERATIONS, VARIATIONS, live_models, today


@pytest.fixture
def openai_today() -> Iterator[OpenAIToday]:
    with OpenAIToday() as server:
        yield server


def _client(server: OpenAIToday) -> OpenAIClient:
    """A client that treats the stand-in as OpenAI itself (catalogue shutdowns apply)."""
    return OpenAIClient(base_url=server.base_url, api_key="sk-test", follow_shutdowns=True, max_retries=0)


@pytest.mark.parametrize("model", live_models(GENERATIONS))
def test_every_live_model_generates_and_edits(openai_today: OpenAIToday, model: str) -> None:
    client = _client(openai_today)

    made = client.generate(prompt="a white siamese cat", model=model, size="1024x1024", n=2)
    edited = client.edit(
        image=sample_png(), mask=sample_mask(), prompt="a white siamese cat in a hat", model=model
    )

    assert len(made) == 2 and made[0].size == (1024, 1024) and len(edited) == 1
    sent = openai_today.calls[0].json()
    assert "response_format" not in sent and "seed" not in sent and sent["model"] == model
    assert "response_format" not in openai_today.calls[1].fields()
    assert made.usage is not None and made.usage["output_tokens"] == 2112
    assert (
        made.cost is not None
        and made.cost.billed
        and made.cost.usd == pytest.approx((40 * 5 + 2112 * 30) / 1e6)
    )
    assert made[0].metadata["quality"] == "medium"  # the quality OpenAI used for "auto"


@pytest.mark.parametrize(
    "model",
    ["dall-e-2", "dall-e-3", "gpt-image-1", "gpt-image-1.5", "gpt-image-1.5-2025-12-16", "gpt-image-1-mini"],
)
def test_a_retired_model_is_refused_before_sending_and_names_its_replacement(
    openai_today: OpenAIToday, model: str
) -> None:
    with pytest.raises(ModelShutDownError) as caught:
        _client(openai_today).generate(prompt="a cat", model=model)

    assert caught.value.param == "model" and caught.value.replacements
    assert caught.value.replacements[0] in str(caught.value) and "shut down on" in str(caught.value)
    assert openai_today.calls == []


def test_the_options_a_model_refuses_are_refused_here_first(openai_today: OpenAIToday) -> None:
    client = _client(openai_today)
    with pytest.raises(ValidationError, match="2026-09-30") as caught:
        client.generate(prompt="a logo", model="gpt-image-2", background="transparent")
    assert "gpt-image-2.5-flare" in str(caught.value)
    with pytest.raises(ValidationError, match="input_fidelity"):
        client.edit(image=sample_png(), prompt="a cat", model="gpt-image-2", input_fidelity="high")
    with pytest.raises(ValidationError, match="quality"):
        client.generate(prompt="a cat", model="gpt-image-2", quality="max")
    with pytest.raises(ValidationError, match="complexity"):
        client.generate(prompt="a cat", model="gpt-image-2.5-flare", complexity="high")
    with pytest.raises(ValidationError, match="size"):
        client.generate(prompt="a cat", model="gpt-image-2", size="3840x3840")
    with pytest.raises(ValidationError, match="moderation"):
        client.generate(prompt="a cat", model="gpt-image-2", moderation="bogus")  # type: ignore[arg-type]
    assert openai_today.calls == []


def test_todays_parameters_reach_the_api_as_it_expects(openai_today: OpenAIToday) -> None:
    client = _client(openai_today)
    client.generate(
        prompt="a poster",
        model="gpt-image-2.6-sunburst",
        quality="xhigh",
        complexity="high",
        moderation="low",
        background="transparent",
        output_format="webp",
        output_compression=80,
        size="2560x1440",
        safety_identifier="hashed-user-1",
    )
    client.edit(
        image=[sample_png(), sample_png()],
        prompt="the two of them together",
        model="gpt-image-2.5-sunburst",
        quality="max",
    )

    body = openai_today.calls[0].json()
    assert body == {
        "prompt": "a poster",
        "model": "gpt-image-2.6-sunburst",
        "n": 1,
        "size": "2560x1440",
        "quality": "xhigh",
        "complexity": "high",
        "moderation": "low",
        "background": "transparent",
        "output_format": "webp",
        "output_compression": 80,
        "safety_identifier": "hashed-user-1",
    }
    parts = openai_today.calls[1].form()
    assert [p.name for p in parts if p.filename] == ["image[]", "image[]"]
    assert {p.content_type for p in parts if p.filename} == {"image/png"}


def test_streaming_works_on_every_current_model(openai_today: OpenAIToday) -> None:
    client = _client(openai_today)
    for model in live_models(GENERATIONS):
        partials: list[PartialImage] = []
        made = client.generate(prompt="a cat", model=model, partial_images=2, on_partial=partials.append)
        assert len(partials) == 2 and len(made) == 1 and made.usage, model
    assert all(call.json()["stream"] is True for call in openai_today.calls)


def test_models_come_from_the_list_and_its_shutdown_dates_override_the_catalogue(
    openai_today: OpenAIToday,
) -> None:
    yesterday = (today() - timedelta(days=1)).isoformat()
    soon = (today() + timedelta(days=30)).isoformat()
    openai_today.shutdown_dates = {"gpt-image-2": yesterday, "gpt-image-2.5-flare": soon}
    openai_today.extra_models = [{"id": "gpt-image-3", "object": "model", "shutdown_date": None}]
    client = _client(openai_today)

    offered = client.models(GENERATIONS)

    assert "gpt-image-2" not in offered and "gpt-image-2.6-flare" in offered and "gpt-image-3" in offered
    assert "gpt-5.5" not in offered and client.models(VARIATIONS) == []
    assert client.shutdown_date("gpt-image-2.5-flare").isoformat() == soon
    with pytest.raises(ModelShutDownError, match=f"gpt-image-2 was shut down on {yesterday}"):
        client.generate(prompt="a cat", model="gpt-image-2")
    made = client.generate(prompt="a cat", model="gpt-image-3", quality="high")  # a model the catalogue lacks
    assert len(made) == 1 and "response_format" not in openai_today.calls[-1].json()
    assert client.model_for(EDITS) == "gpt-image-2.6-flare"


def test_variations_on_openai_are_edits_of_the_whole_image(openai_today: OpenAIToday) -> None:
    client = _client(openai_today)

    varied = client.vary(image=sample_png(), prompt="in autumn colours", n=2)

    call = openai_today.calls[-1]
    assert call.path == "/v1/images/edits" and call.fields()["model"] == "gpt-image-2.6-flare"
    assert (
        call.fields()["prompt"].startswith("A variation of this image")
        and "autumn" in call.fields()["prompt"]
    )
    assert "mask" not in [part.name for part in call.form()]
    assert [image.metadata["variation_method"] for image in varied] == ["edit", "edit"]
