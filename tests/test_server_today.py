"""``ipyimagegen serve`` speaks today's Images API to the official SDK: every catalogue model and
option, the original API (DALL-E 2) included, usage and the quality used in every answer; and in
front of OpenAI as it is today, it adds nothing a participant did not send."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator

import openai
import pytest
from PIL import Image

from fake_openai import OpenAIToday, sample_mask, sample_png
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.models import EDITS, GENERATIONS, MODELS, model_spec
from ipyimagegen.server import ServerThread, make_app
from ipyimagegen.server.config import ServerConfig
from ipyimagegen.server.upstream import upstream_backend

SERVED = [name for name, spec in MODELS.items() if spec.serves(GENERATIONS)]


@pytest.fixture(scope="module")
def sdk() -> Iterator[openai.OpenAI]:
    with ServerThread(make_app(PreviewEngine())) as running:
        yield openai.OpenAI(base_url=running.base_url, api_key="local", max_retries=0)


@pytest.mark.parametrize("model", SERVED)
def test_every_catalogue_model_generates_through_the_sdk(sdk: openai.OpenAI, model: str) -> None:
    spec = model_spec(model)
    answer = sdk.images.generate(model=model, prompt="a white siamese cat", n=1, size=spec.default_size)

    assert answer.data and (answer.data[0].url if spec.family == "dall-e" else answer.data[0].b64_json)
    if spec.is_gpt_image:
        assert answer.quality in ("low", "medium", "high", "xhigh", "max")  # never "auto"
        assert (
            answer.size == spec.default_size
            and answer.background == "opaque"
            and answer.output_format == "png"
        )
        assert answer.usage is not None and answer.usage.output_tokens > 0
        assert answer.usage.input_tokens_details.text_tokens > 0


@pytest.mark.parametrize("model", [name for name, spec in MODELS.items() if spec.serves(EDITS)])
def test_every_catalogue_model_edits_with_a_mask_through_the_sdk(sdk: openai.OpenAI, model: str) -> None:
    answer = sdk.images.edit(
        model=model,
        image=("photo.png", sample_png(), "image/png"),
        mask=("mask.png", sample_mask(), "image/png"),
        prompt="the same picture with a red balloon in the middle",
        size="256x256" if model == "dall-e-2" else "1024x1024",
    )
    assert answer.data and (answer.data[0].url if model == "dall-e-2" else answer.data[0].b64_json)
    if model_spec(model).is_gpt_image:
        assert answer.usage is not None and answer.usage.input_tokens_details.image_tokens > 0


def test_the_original_api_keeps_working(sdk: openai.OpenAI) -> None:
    made = sdk.images.generate(model="dall-e-2", prompt="a white siamese cat", n=10, size="256x256")
    with pytest.warns(DeprecationWarning):
        varied = sdk.images.create_variation(
            image=("cat.png", sample_png(), "image/png"), n=3, size="512x512", response_format="b64_json"
        )

    assert len(made.data) == 10 and len(varied.data) == 3
    assert Image.open(io.BytesIO(base64.b64decode(varied.data[0].b64_json or ""))).size == (512, 512)


def test_todays_options_are_taken_and_echoed(sdk: openai.OpenAI) -> None:
    answer = sdk.images.generate(
        model="gpt-image-2.6-flare",
        prompt="a poster of a lighthouse",
        quality="xhigh",
        complexity="high",
        moderation="low",
        background="transparent",
        output_format="webp",
        output_compression=70,
        size="1536x864",
        safety_identifier="hashed-participant",
        user="older-spelling",
    )
    assert (answer.quality, answer.background, answer.output_format, answer.size) == (
        "xhigh",
        "transparent",
        "webp",
        "1536x864",
    )
    assert answer.safety_identifier == "hashed-participant"
    edited = sdk.images.edit(
        model="gpt-image-2.6-sunburst",
        image=[("a.png", sample_png(), "image/png"), ("b.png", sample_png(), "image/png")],
        prompt="both of them in one picture",
        complexity="low",
        quality="max",
        safety_identifier="hashed-participant",
    )
    assert edited.quality == "max" and edited.usage is not None


def test_a_model_the_server_does_not_serve_is_a_404_model_not_found(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        sdk.images.generate(model="gpt-image-3", prompt="a cat", size="1024x1024")
    assert caught.value.status_code == 404
    assert caught.value.body["code"] == "model_not_found" and caught.value.body["param"] == "model"  # type: ignore[index]
    assert caught.value.body["message"].startswith(  # type: ignore[index]
        "The model 'gpt-image-3' does not exist on this server. It serves: gpt-image-2.6-flare, "
    )


def test_a_retired_model_the_preview_still_draws_is_served(sdk: openai.OpenAI) -> None:
    answer = sdk.images.generate(model="gpt-image-1", prompt="a cat", size="1024x1024")
    assert answer.data and answer.data[0].b64_json


def test_a_server_started_to_take_any_name_gives_an_unknown_name_its_familys_answer() -> None:
    with ServerThread(make_app(PreviewEngine(), ServerConfig(any_model=True))) as running:
        sdk = openai.OpenAI(base_url=running.base_url, api_key="local", max_retries=0)
        answer = sdk.images.generate(model="gpt-image-3", prompt="a cat", quality="auto", size="1024x1024")
        assert answer.size == "1024x1024" and answer.background == "opaque" and answer.output_format == "png"
        assert answer.quality == "medium" and answer.usage is not None
        with pytest.raises(openai.BadRequestError) as caught:  # unknown names still have bounded sizes
            sdk.images.generate(model="someone-elses", prompt="a cat", size="99999x99999")
        assert caught.value.body["param"] == "size"  # type: ignore[index]
        with pytest.raises(openai.BadRequestError) as caught:
            sdk.images.generate(model="someone-elses", prompt="a cat", size="4096x4096")
        assert caught.value.body["message"] == (  # type: ignore[index]
            "size 4096x4096 is 16,777,216 pixels; this server makes at most 8,294,400 pixels per image: "
            "ask for a smaller size."
        )


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"model": "gpt-image-2", "moderation": "bogus"}, "moderation"),
        ({"model": "gpt-image-2", "quality": "max"}, "quality"),
        ({"model": "gpt-image-2", "background": "transparent"}, "background"),
        ({"model": "gpt-image-2", "size": "3840x3840"}, "size"),
        ({"model": "gpt-image-2.5-flare", "complexity": "high"}, "complexity"),
        ({"model": "gpt-image-2.5-flare", "output_format": "gif"}, "output_format"),
        ({"model": "gpt-image-2.6-flare", "output_format": "svg", "n": 2}, "n"),
        ({"model": "gpt-image-2.6-flare", "frame_count": 4}, "frame_count"),
        ({"model": "gpt-image-2.6-flare", "response_format": "b64_json"}, "response_format"),
    ],
)
def test_bad_options_are_a_400_naming_the_parameter(sdk: openai.OpenAI, options: dict, param: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.images.generate(prompt="a cat", **options)
    assert caught.value.status_code == 400
    assert caught.value.body["param"] == param, caught.value.body  # type: ignore[index]


def test_input_fidelity_is_checked_against_the_model(sdk: openai.OpenAI) -> None:
    image = ("a.png", sample_png(), "image/png")
    for model, value in (("gpt-image-2", "high"), ("gpt-image-1.5", "bogus")):
        with pytest.raises(openai.BadRequestError) as caught:
            sdk.images.edit(model=model, image=image, prompt="a cat", input_fidelity=value)  # type: ignore[arg-type]
        assert caught.value.body["param"] == "input_fidelity"  # type: ignore[index]
    assert sdk.images.edit(model="gpt-image-1.5", image=image, prompt="a cat", input_fidelity="high").data


def test_streamed_events_carry_usage_and_the_quality_used(sdk: openai.OpenAI) -> None:
    events = list(
        sdk.images.generate(model="gpt-image-2.5-sunburst", prompt="a cat", stream=True, partial_images=1)
    )
    assert [event.type for event in events] == [
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    assert events[-1].quality == "medium" and events[-1].usage.output_tokens > 0


@pytest.fixture
def proxy() -> Iterator[tuple[openai.OpenAI, OpenAIToday]]:
    with OpenAIToday() as upstream_api:
        backend = upstream_backend(upstream_api.base_url)
        with ServerThread(make_app(backend)) as running:
            yield openai.OpenAI(base_url=running.base_url, api_key="participant", max_retries=0), upstream_api


def test_the_proxy_adds_nothing_the_participant_did_not_send(
    proxy: tuple[openai.OpenAI, OpenAIToday],
) -> None:
    sdk, upstream_api = proxy
    for model in ("gpt-image-2.6-flare", "gpt-image-2.5-sunburst", "gpt-image-2"):
        answer = sdk.images.generate(model=model, prompt="a cat", size="1024x1024")
        assert answer.data and answer.usage is not None and answer.quality == "medium"
    edited = sdk.images.edit(
        model="gpt-image-2.6-flare",
        image=("a.png", sample_png(), "image/png"),
        prompt="a cat",
        stream=True,
        partial_images=1,
    )
    assert [event.type for event in edited][-1] == "image_edit.completed"

    sent = [call.json() for call in upstream_api.calls[:3]]
    assert all("response_format" not in body and "seed" not in body for body in sent)
    assert "response_format" not in upstream_api.calls[3].fields()


def test_our_own_client_keeps_the_original_api_on_the_server() -> None:
    from ipyimagegen.api.client import OpenAIClient

    with ServerThread(make_app(PreviewEngine())) as running:
        client = OpenAIClient(base_url=running.base_url, api_key="local", max_retries=0)
        assert "dall-e-2" in client.models("variations") and client.shutdown_date("dall-e-2") is None
        assert len(client.generate(prompt="a white siamese cat", model="dall-e-2", size="256x256", n=3)) == 3
        assert len(client.vary(image=sample_png(), n=2)) == 2  # real variations where they are served
        listed = {
            entry.id: entry for entry in openai.OpenAI(base_url=running.base_url, api_key="x").models.list()
        }
        assert listed["dall-e-2"].shutdown_date is None  # type: ignore[attr-defined]
