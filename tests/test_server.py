"""The Images API server on loopback, driven by the official openai client and by ipyimagegen's own."""

from __future__ import annotations

import base64
import io
import threading

import openai
import pytest
import requests
from PIL import Image

import ipyimagegen.errors as errors
from ipyimagegen.api.client import OpenAIClient
from ipyimagegen.api.types import CallHooks, GenerateRequest
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.server import ServerThread, make_app
from ipyimagegen.server.config import ServerConfig
from ipyimagegen.server.files import ResultStore


def png_bytes(size: tuple[int, int] = (256, 256), color: tuple[int, ...] = (40, 120, 200, 255)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def mask_bytes(size: tuple[int, int] = (256, 256)) -> bytes:
    """Opaque, with a transparent square in the middle (the area to remake)."""
    mask = Image.new("RGBA", size, (0, 0, 0, 255))
    w, h = size
    mask.paste((0, 0, 0, 0), (w // 4, h // 4, 3 * w // 4, 3 * h // 4))
    buffer = io.BytesIO()
    mask.save(buffer, "PNG")
    return buffer.getvalue()


def decoded_size(b64: str) -> tuple[int, int]:
    with Image.open(io.BytesIO(base64.b64decode(b64))) as image:
        return image.size


class SlowEngine(PreviewEngine):
    """Waits until it is cancelled: a call that never finishes in time."""

    def __init__(self) -> None:
        super().__init__()
        self.cancelled = threading.Event()

    def _generate(self, request, hooks):
        assert hooks.cancel is not None
        hooks.cancel.wait(10)
        if hooks.cancel.is_set():
            self.cancelled.set()
        return super()._generate(request, hooks)


class FailingEngine(PreviewEngine):
    """Refuses prompts that mention 'forbidden' and breaks on prompts that mention 'bug'."""

    def _generate(self, request, hooks):
        if "forbidden" in request.prompt:
            raise errors.ContentPolicyError("This prompt is not allowed.", code="content_policy_violation")
        if "bug" in request.prompt:
            raise RuntimeError("a bug in the engine")
        return super()._generate(request, hooks)


@pytest.fixture(scope="module")
def server():
    with ServerThread(make_app(PreviewEngine())) as running:
        yield running


@pytest.fixture(scope="module")
def sdk(server):
    return openai.OpenAI(base_url=server.base_url, api_key="local", max_retries=0)


@pytest.fixture(scope="module")
def client(server):
    with OpenAIClient(base_url=server.base_url, api_key="local", max_retries=0) as own:
        yield own


# -- the official openai client ------------------------------------------------------------------


def test_sdk_generate_dalle2_two_images(sdk):
    result = sdk.images.generate(
        model="dall-e-2", prompt="a red fox", n=2, size="256x256", response_format="b64_json"
    )
    assert len(result.data) == 2
    assert [decoded_size(item.b64_json) for item in result.data] == [(256, 256), (256, 256)]
    assert result.output_format is None  # the gpt-image fields are for gpt-image models


@pytest.mark.parametrize("model", ["dall-e-2", "dall-e-3"])
def test_sdk_dalle_models_answer_links_unless_base64_is_asked(sdk, model):
    result = sdk.images.generate(model=model, prompt="a red fox", n=1, size="1024x1024")
    assert result.data[0].b64_json is None
    fetched = requests.get(result.data[0].url, timeout=10)
    assert fetched.status_code == 200 and fetched.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(fetched.content)).size == (1024, 1024)


def test_sdk_generate_gpt_image_reports_output_details(sdk):
    result = sdk.images.generate(model="gpt-image-1.5", prompt="a red fox", size="1536x1024", quality="low")
    assert len(result.data) == 1
    assert decoded_size(result.data[0].b64_json) == (1536, 1024)
    assert (result.output_format, result.size, result.quality) == ("png", "1536x1024", "low")
    assert result.background in ("opaque", "transparent")


def test_sdk_generate_jpeg_output(sdk):
    result = sdk.images.generate(model="gpt-image-1", prompt="a fox", size="1024x1024", output_format="jpeg")
    assert base64.b64decode(result.data[0].b64_json)[:3] == b"\xff\xd8\xff"
    assert result.output_format == "jpeg"


def test_sdk_url_results_are_served_then_unknown_names_are_404(sdk, server):
    result = sdk.images.generate(model="dall-e-2", prompt="a fox", n=2, size="512x512", response_format="url")
    urls = [item.url for item in result.data]
    assert all(url.startswith(server.base_url + "/files/") for url in urls)
    assert len(set(urls)) == 2
    fetched = requests.get(urls[0], timeout=10)
    assert fetched.status_code == 200
    assert fetched.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(fetched.content)).size == (512, 512)
    missing = requests.get(server.base_url + "/files/not-a-real-name.png", timeout=10)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_sdk_gpt_image_refuses_response_format(sdk):
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.images.generate(model="gpt-image-1.5", prompt="a fox", response_format="url")
    assert caught.value.param == "response_format"


def test_sdk_edit_with_mask(sdk):
    result = sdk.images.edit(
        model="dall-e-2",
        prompt="a fox in a garden",
        image=("photo.png", png_bytes(), "image/png"),
        mask=("mask.png", mask_bytes(), "image/png"),
        size="256x256",
        n=2,
        response_format="b64_json",
    )
    assert [decoded_size(item.b64_json) for item in result.data] == [(256, 256), (256, 256)]


def test_sdk_edit_several_images_gpt_image(sdk):
    images = [(f"in{i}.png", png_bytes((1024, 1024), (i * 80, 60, 90, 255)), "image/png") for i in range(3)]
    result = sdk.images.edit(model="gpt-image-1", prompt="the three together", image=images, size="1024x1536")
    assert len(result.data) == 1
    assert decoded_size(result.data[0].b64_json) == (1024, 1536)
    assert result.size == "1024x1536"


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # the SDK marks variations deprecated
def test_sdk_create_variation(sdk):
    result = sdk.images.create_variation(
        model="dall-e-2",
        image=("photo.png", png_bytes(), "image/png"),
        n=3,
        size="256x256",
        response_format="b64_json",
    )
    assert [decoded_size(item.b64_json) for item in result.data] == [(256, 256)] * 3


def test_sdk_bad_size_is_bad_request_with_param(sdk):
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.images.generate(model="dall-e-2", prompt="a fox", size="300x300")
    assert caught.value.status_code == 400
    assert caught.value.param == "size"
    assert "256x256" in caught.value.message


def test_sdk_streamed_generation(sdk):
    stream = sdk.images.generate(
        model="gpt-image-1", prompt="a fox", stream=True, partial_images=2, size="1024x1024"
    )
    events = list(stream)
    kinds = [event.type for event in events]
    assert kinds[-1] == "image_generation.completed"
    assert set(kinds[:-1]) <= {"image_generation.partial_image"}
    partial_indexes = [event.partial_image_index for event in events if event.type.endswith("partial_image")]
    assert partial_indexes == sorted(partial_indexes)
    assert decoded_size(events[-1].b64_json) == (1024, 1024)
    assert events[-1].output_format == "png"


def test_sdk_streamed_edit(sdk):
    stream = sdk.images.edit(
        model="gpt-image-1",
        prompt="a fox",
        image=("photo.png", png_bytes((1024, 1024)), "image/png"),
        stream=True,
        partial_images=1,
    )
    events = list(stream)
    assert events[-1].type == "image_edit.completed"
    assert all(event.type.startswith("image_edit.") for event in events)
    assert decoded_size(events[-1].b64_json)[0] > 0


def test_sdk_stream_refused_for_dalle(sdk):
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.images.generate(model="dall-e-2", prompt="a fox", stream=True)
    assert caught.value.param == "stream"


def test_sdk_models_list(sdk):
    names = [model.id for model in sdk.models.list()]
    assert "dall-e-2" in names
    assert names == list(dict.fromkeys(names))
    assert sdk.models.retrieve("dall-e-2").id == "dall-e-2"
    with pytest.raises(openai.NotFoundError):
        sdk.models.retrieve("no-such-model")


def test_cors_is_off_by_default_and_opt_in(server):
    preflight = {"Origin": "http://notebook.example", "Access-Control-Request-Method": "POST"}
    closed = requests.options(server.base_url + "/images/generations", headers=preflight, timeout=10)
    assert "access-control-allow-origin" not in closed.headers
    app = make_app(PreviewEngine(), ServerConfig(cors_origins=["http://notebook.example"]))
    with ServerThread(app) as open_to_one:
        allowed = requests.options(
            open_to_one.base_url + "/images/generations", headers=preflight, timeout=10
        )
    assert allowed.headers["access-control-allow-origin"] == "http://notebook.example"


def test_health(server):
    answer = requests.get(server.url + "/health", timeout=10).json()
    assert answer["status"] == "ok"
    assert answer["auth"] == "open"


# -- ipyimagegen's own client ---------------------------------------------------------------------


def test_client_generate(client):
    result = client.generate(model="dall-e-2", prompt="a red fox", n=2, size="256x256")
    assert [image.size for image in result] == [(256, 256), (256, 256)]


def test_client_generate_gpt_image(client):
    result = client.generate(model="gpt-image-1.5", prompt="a red fox", size="1024x1536")
    assert result[0].size == (1024, 1536)
    assert result[0].metadata["output_format"] == "png"


def test_client_url_results_are_downloaded(client):
    result = client.generate(model="dall-e-2", prompt="a fox", size="256x256", response_format="url")
    assert result[0].url and "/v1/files/" in result[0].url
    assert result[0].size == (256, 256)


def test_client_edit_with_mask_and_variation(client):
    edited = client.edit(
        model="dall-e-2", image=png_bytes(), mask=mask_bytes(), prompt="a fox", size="256x256"
    )
    assert edited[0].size == (256, 256)
    varied = client.create_variation(model="dall-e-2", image=png_bytes(), n=2, size="256x256")
    assert [image.size for image in varied] == [(256, 256)] * 2


def test_client_edit_several_images(client):
    images = [png_bytes((1024, 1024), (i * 90, 30, 30, 255)) for i in range(2)]
    result = client.edit(model="gpt-image-1", image=images, prompt="both", size="1024x1024")
    assert result[0].size == (1024, 1024)


def test_client_streams_partial_images(client):
    partials = []
    request = GenerateRequest(model="gpt-image-1", prompt="a fox", size="1024x1024", partial_images=2)
    result = client.run(request, CallHooks(on_partial=partials.append))
    assert result[0].size == (1024, 1024)
    assert all(partial.data[:4] == b"\x89PNG" for partial in partials)


def test_client_errors_are_typed(client):
    # Extra body fields pass the client's own checks; the server refuses unknown parameters.
    with pytest.raises(errors.BadRequestError) as caught:
        client.run(GenerateRequest(model="dall-e-2", prompt="x", extra={"foo": 1}))
    assert caught.value.param == "foo"
    assert caught.value.status_code == 400


# -- what a call may take, and what happens when it fails ------------------------------------------


def test_timeout_is_504_and_cancels_the_engine():
    engine = SlowEngine()
    with ServerThread(make_app(engine, ServerConfig(request_timeout=0.3))) as slow:
        answer = requests.post(slow.base_url + "/images/generations", json={"prompt": "a fox"}, timeout=10)
        assert answer.status_code == 504
        assert answer.json()["error"]["code"] == "timeout"
        assert engine.cancelled.wait(5)


def test_engine_errors_map_to_api_errors():
    with ServerThread(make_app(FailingEngine())) as failing:
        sdk = openai.OpenAI(base_url=failing.base_url, api_key="local", max_retries=0)
        with pytest.raises(openai.BadRequestError) as caught:
            sdk.images.generate(model="dall-e-2", prompt="something forbidden", size="256x256")
        assert caught.value.code == "content_policy_violation"
        with pytest.raises(openai.InternalServerError) as broken:
            sdk.images.generate(model="dall-e-2", prompt="a bug", size="256x256")
        assert broken.value.body["type"] == "server_error"
        assert "a bug in the engine" not in broken.value.message
        # the server still answers after a failure
        assert len(sdk.images.generate(model="dall-e-2", prompt="fine", size="256x256").data) == 1


def test_result_store_expires_and_evicts():
    now = [0.0]
    store = ResultStore(ttl_s=60, max_bytes=10, clock=lambda: now[0])
    first = store.put(b"12345", "image/png")
    assert first.endswith(".png")
    assert store.get(first).data == b"12345"
    second = store.put(b"abcdef", "image/jpeg")
    assert second.endswith(".jpg")
    assert store.get(first) is None  # over max_bytes: the oldest went
    now[0] = 61
    assert store.get(second) is None
    assert len(store) == 0
