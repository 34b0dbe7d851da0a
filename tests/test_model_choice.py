"""The model a call means when it names none, as the original Images API chose it: DALL-E 2 unless a
parameter only the GPT image models take is set, wherever DALL-E 2 is served; elsewhere the backend's
default, and a typed error before anything is sent where only DALL-E 2 would take the call. Also the
original API's answers: links by default for the DALL-E models, 1024x1024 by default, request ids."""

from __future__ import annotations

import io
import logging
import time
import urllib.request
from collections.abc import Iterator

import openai
import pytest
import requests
from PIL import Image

from fake_openai import OpenAIToday, sample_mask, sample_png
from ipyimagegen import Gallery
from ipyimagegen.api.client import OpenAIClient
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.errors import ResultExpiredError, UnnamedModelRetiredError, ValidationError
from ipyimagegen.models import DEFAULT_MODEL, EDITS, GENERATIONS, VARIATIONS
from ipyimagegen.server import ServerThread, make_app
from ipyimagegen.server.config import ServerConfig


def png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


# -- the rule, in process ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "given", "model", "reason"),
    [
        (GENERATIONS, {}, "dall-e-2", "no model given, so dall-e-2, the Images API's default"),
        (GENERATIONS, {"size": "1024x1024", "n": 1}, "dall-e-2", "so dall-e-2, the Images API's default"),
        (
            GENERATIONS,
            {"size": "256x256"},
            "dall-e-2",
            "no model given; 256x256 is a DALL-E 2 size, so dall-e-2",
        ),
        (GENERATIONS, {"response_format": "b64_json"}, "dall-e-2", "response_format is a DALL-E parameter"),
        (VARIATIONS, {}, "dall-e-2", "no model given; variations are DALL-E 2's, so dall-e-2"),
        (GENERATIONS, {"output_format": "webp"}, DEFAULT_MODEL, "output_format is a GPT image parameter"),
        (GENERATIONS, {"quality": "high"}, DEFAULT_MODEL, "quality 'high' is a GPT image quality"),
        (GENERATIONS, {"size": "1536x1024"}, DEFAULT_MODEL, "1536x1024 is a GPT image size"),
        (EDITS, {"images": 3}, DEFAULT_MODEL, "several input images are for GPT image models"),
        (GENERATIONS, {"partial_images": 0}, "dall-e-2", "the Images API's default"),
    ],
)
def test_a_call_without_a_model_means_what_the_original_api_meant(
    endpoint: str, given: dict[str, object], model: str, reason: str
) -> None:
    choice = PreviewEngine().choose_model(endpoint, given)
    assert choice.model == model
    assert reason in choice.reason


def test_the_guides_first_call_in_python_gives_a_link_to_a_1024_square() -> None:
    response = PreviewEngine().generate(
        prompt="a white siamese cat", n=1, size="1024x1024", response_format="url"
    )

    assert response.model == "dall-e-2"
    url = response[0].url
    assert url is not None and url.startswith("data:image/png;base64,")
    with urllib.request.urlopen(url) as link:  # noqa: S310 - a data: URL, made here
        assert png_size(link.read()) == (1024, 1024)


def test_errors_name_the_model_the_call_resolved_to_and_why() -> None:
    engine = PreviewEngine()
    with pytest.raises(ValidationError) as caught:
        engine.generate(prompt="a white siamese cat", n=11, size="1024x1024")
    assert caught.value.param == "n"
    assert "for dall-e-2" in caught.value.message
    assert "(no model given, so dall-e-2, the Images API's default)" in caught.value.message

    with pytest.raises(ValidationError) as caught:
        engine.generate(prompt="a poster", size="256x256", output_format="webp")
    assert caught.value.param == "size"
    assert f"for {DEFAULT_MODEL}" in caught.value.message
    assert f"output_format is a GPT image parameter, so {DEFAULT_MODEL}" in caught.value.message

    with pytest.raises(ValidationError) as caught:  # a message that names no model gets no reason
        engine.generate(prompt="   ")
    assert "no model given" not in caught.value.message


def test_a_named_model_is_used_as_named() -> None:
    response = PreviewEngine().generate(prompt="a fox", model="gpt-image-2", size="1024x1024")
    assert response.model == "gpt-image-2" and response.request is not None
    assert response.request.model_reason is None
    assert "model_reason" not in response.request.options()


def test_a_variation_or_dalle_edit_without_a_size_is_1024_square() -> None:
    engine = PreviewEngine()
    varied = engine.create_variation(image=sample_png((300, 300)))
    edited = engine.edit(image=sample_png((512, 512)), mask=sample_mask((512, 512)), prompt="a red balloon")

    assert varied.model == edited.model == "dall-e-2"
    assert png_size(varied[0].data) == png_size(edited[0].data) == (1024, 1024)
    assert varied[0].url is None  # links only where asked for, in process


# -- OpenAI, where DALL-E 2 is retired: refused before anything is sent ---------------------------


@pytest.fixture
def openai_today() -> Iterator[tuple[OpenAIToday, OpenAIClient]]:
    with OpenAIToday() as server:
        client = OpenAIClient(
            base_url=server.base_url, api_key="sk-test", follow_shutdowns=True, max_retries=0
        )
        with client:
            yield server, client


@pytest.mark.parametrize(
    ("call", "param", "instead"),
    [
        (
            {"size": "256x256"},
            "size",
            f"name model='{DEFAULT_MODEL}' with one of its sizes, such as size='1024x1024'",
        ),
        ({"size": "512x512", "response_format": "url"}, "size", "and leave response_format unset"),
        ({"response_format": "b64_json"}, "response_format", "leave response_format unset"),
    ],
)
def test_on_openai_a_dalle2_only_call_says_which_live_model_and_size_to_use(
    openai_today: tuple[OpenAIToday, OpenAIClient], call: dict[str, str], param: str, instead: str
) -> None:
    server, client = openai_today
    with pytest.raises(UnnamedModelRetiredError) as caught:
        client.generate(prompt="a white siamese cat", **call)  # type: ignore[arg-type]

    assert caught.value.param == param
    assert caught.value.message.startswith("No model given; ")
    assert "so dall-e-2, and dall-e-2 was shut down here on 2026-05-12" in caught.value.message
    assert instead in caught.value.message
    assert server.calls == []  # nothing was sent


def test_on_openai_a_neutral_call_goes_to_the_default_model(
    openai_today: tuple[OpenAIToday, OpenAIClient],
) -> None:
    server, client = openai_today
    response = client.generate(prompt="a white siamese cat", n=1, size="1024x1024")
    assert response.model == DEFAULT_MODEL
    assert [call.json().get("model") for call in server.calls] == [DEFAULT_MODEL]


# -- serve: the same rule over HTTP, links, request ids ------------------------------------------


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    with ServerThread(make_app(PreviewEngine(), ServerConfig(url_ttl=600))) as running:
        yield running.base_url


def test_serve_answers_the_guides_call_with_a_link_that_downloads(served: str) -> None:
    sdk = openai.OpenAI(base_url=served, api_key="local", max_retries=0)
    answer = sdk.images.generate(prompt="a white siamese cat", n=2, size="512x512")

    assert [item.b64_json for item in answer.data] == [None, None]
    for item in answer.data:
        assert item.url is not None
        fetched = requests.get(item.url, timeout=10)
        assert fetched.status_code == 200 and png_size(fetched.content) == (512, 512)
        assert fetched.headers["x-content-type-options"] == "nosniff"  # a link never runs as a page
        assert fetched.headers["content-security-policy"].startswith("sandbox")
    assert answer.output_format is None  # a DALL-E answer, not a GPT image one


def test_serve_errors_name_the_model_and_why_over_http(served: str) -> None:
    sdk = openai.OpenAI(base_url=served, api_key="local", max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.images.generate(prompt="a white siamese cat", n=11, size="1024x1024")
    error = caught.value
    assert (error.status_code, error.param, error.type) == (400, "n", "invalid_request_error")
    assert "for dall-e-2" in error.message and "no model given, so dall-e-2" in error.message
    assert isinstance(error.request_id, str) and error.request_id.startswith("req_")


def test_every_answer_carries_its_own_request_id_and_the_log_has_it(
    served: str, caplog: pytest.LogCaptureFixture
) -> None:
    sdk = openai.OpenAI(base_url=served, api_key="local", max_retries=0)
    with caplog.at_level(logging.INFO, logger="ipyimagegen.server"):
        first = sdk.images.generate(prompt="a fox", size="256x256", response_format="b64_json")
        second = sdk.images.with_raw_response.generate(prompt="a fox", model="gpt-image-2", size="1024x1024")
        unknown = requests.get(served + "/nowhere", timeout=10)
        refused = requests.post(served + "/images/generations", json={"prompt": "a", "n": 0}, timeout=10)

    ids = [first._request_id, second.headers["x-request-id"], unknown.headers["x-request-id"]]
    ids.append(refused.headers["x-request-id"])
    assert all(isinstance(value, str) and value.startswith("req_") and len(value) == 36 for value in ids)
    assert len(set(ids)) == 4
    assert unknown.status_code == 404 and refused.status_code == 400
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert first._request_id in logged and refused.headers["x-request-id"] in logged
    refusal_line = next(line for line in logged.splitlines() if refused.headers["x-request-id"] in line)
    assert "-> 400 (invalid_value, param='n')" in refusal_line  # the host sees why, by the id


def test_the_gallery_keeps_the_request_id_of_a_call_to_serve(served: str, tmp_path) -> None:
    gallery = Gallery(tmp_path / "gallery")
    with OpenAIClient(base_url=served, api_key="local", max_retries=0) as client:
        response = client.generate(prompt="a fox", model="dall-e-2", size="256x256")
    saved = gallery.save_response(response)

    assert response.request_id is not None and response.request_id.startswith("req_")
    assert gallery.get(saved[0].id).request_id == response.request_id


def test_an_expired_link_is_the_apis_404_and_the_client_says_what_to_do() -> None:
    with ServerThread(make_app(PreviewEngine(), ServerConfig(url_ttl=0.3))) as running:
        sdk = openai.OpenAI(base_url=running.base_url, api_key="local", max_retries=0)
        url = sdk.images.generate(prompt="a fox", size="256x256").data[0].url
        assert url is not None and requests.get(url, timeout=10).status_code == 200
        time.sleep(0.5)
        gone = requests.get(url, timeout=10)
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "not_found" and "expired" in gone.json()["error"]["message"]
    assert gone.headers["x-request-id"].startswith("req_")

    with (
        ServerThread(
            make_app(PreviewEngine(), ServerConfig(url_ttl=0))
        ) as running,  # links gone before the download
        OpenAIClient(base_url=running.base_url, api_key="local", max_retries=0) as client,
        pytest.raises(ResultExpiredError) as caught,
    ):
        client.generate(prompt="a fox", model="dall-e-2", size="256x256", response_format="url")
    assert caught.value.status_code == 404
    assert "response_format='b64_json'" in caught.value.hint


# -- what a review found ----------------------------------------------------------------------------


def test_an_edit_without_a_mask_means_a_gpt_image_model_that_reworks_the_whole_picture() -> None:
    engine = PreviewEngine()
    photo = sample_png((512, 512))
    choice = engine.choose_model(EDITS, {"images": 1, "mask": None})
    assert choice.model == DEFAULT_MODEL and "an edit without a mask" in choice.reason
    edited = engine.edit(image=photo, prompt="the same scene at night")
    masked = engine.edit(image=photo, mask=sample_mask((512, 512)), prompt="a red balloon")
    assert (edited.model, masked.model) == (DEFAULT_MODEL, "dall-e-2")


def test_an_engines_own_refusal_says_why_its_model_was_chosen() -> None:
    class Picky(PreviewEngine):
        def _generate(self, request, hooks):  # type: ignore[no-untyped-def]
            raise ValidationError(f"{request.model} cannot draw this today.", param="prompt")

    with pytest.raises(ValidationError) as caught:
        Picky().generate(prompt="a fox")
    assert caught.value.message == (
        "dall-e-2 cannot draw this today (no model given, so dall-e-2, the Images API's default)."
    )


def test_a_dalle_call_without_a_size_is_held_to_the_servers_pixel_limit() -> None:
    with ServerThread(make_app(PreviewEngine(), ServerConfig(max_pixels=512 * 512))) as running:
        answer = requests.post(running.base_url + "/images/generations", json={"prompt": "a fox"}, timeout=10)
    assert answer.status_code == 400  # the call's size is 1024x1024 before any check, as it will be made
    assert answer.json()["error"]["param"] == "size" and "1024x1024" in answer.json()["error"]["message"]


def test_a_deployment_means_its_own_model_whatever_the_call_sets() -> None:
    from ipyimagegen.api.client import AzureOpenAIClient

    azure = AzureOpenAIClient(
        endpoint="https://example.invalid", deployment="gpt-image-2", api_key="k", api_version="2025-04-01"
    )
    choice = azure.choose_model(GENERATIONS, {"size": "256x256"})
    assert choice.model == "gpt-image-2" and "this deployment's model" in choice.reason
    with pytest.raises(ValidationError) as caught:
        azure.generate(prompt="a fox", size="256x256")
    assert (
        caught.value.param == "size"
        and "(no model given, so gpt-image-2, this deployment's model)" in str(caught.value)
    )


def test_a_server_that_does_not_list_dalle2_says_it_is_not_served_there() -> None:
    with (
        OpenAIToday() as server,
        OpenAIClient(
            base_url=server.base_url, api_key="sk-test", follow_shutdowns=False, max_retries=0
        ) as client,
        pytest.raises(UnnamedModelRetiredError) as caught,
    ):
        client.generate(prompt="a fox", size="256x256")
    assert "so dall-e-2, and dall-e-2 is not served here: name model=" in caught.value.message
    assert server.calls == []
