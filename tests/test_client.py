"""The HTTP client against a scripted Images API server on 127.0.0.1: the wire format, errors,
retries, timeouts, URL downloads, streaming and secrets."""

from __future__ import annotations

import base64
import io
import logging
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from email.utils import formatdate
from typing import Any

import pytest
import requests
from PIL import Image
from requests.adapters import HTTPAdapter

from fake_api_server import FakeImagesAPI, Reply
from ipyimagegen.api import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    CallHooks,
    CancelledError,
    ConfigurationError,
    ContentPolicyError,
    EditRequest,
    GenerateRequest,
    InputImage,
    InternalServerError,
    ModelShutDownError,
    NotFoundError,
    PartialImage,
    PermissionDeniedError,
    RateLimitError,
    ResultExpiredError,
    VariationRequest,
    describe_error,
)
from ipyimagegen.api.client import AzureOpenAIClient, OpenAIClient

KEY = "sk-test-0123456789abcdefSECRET"


def png(color: tuple[int, int, int, int] = (200, 30, 30, 255), size: int = 32) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", (size, size), color).save(buffer, format="PNG")
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def images_body(*images: bytes, **fields: Any) -> dict[str, Any]:
    return {"created": 1_700_000_000, "data": [{"b64_json": b64(image)} for image in images], **fields}


def error_body(
    message: str, code: str | None = None, param: str | None = None, **more: Any
) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": "invalid_request_error", "param": param, "code": code, **more}
    }


@pytest.fixture
def api() -> Iterator[FakeImagesAPI]:
    server = FakeImagesAPI().start()
    yield server
    server.close()


@pytest.fixture
def sleeps() -> list[float]:
    """What the client waited between tries (recorded, not slept)."""
    return []


@pytest.fixture
def client(api: FakeImagesAPI, sleeps: list[float]) -> Iterator[OpenAIClient]:
    with OpenAIClient(
        api_key=KEY, base_url=api.base_url, organization="org-42", project="proj_7", sleep=sleeps.append
    ) as made:
        yield made


class _ToLocalServer(HTTPAdapter):
    """Sends what is addressed to api.openai.com to the local server instead (the wire stays real)."""

    def __init__(self, root: str) -> None:
        super().__init__()
        self.root = root

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        request.url = (request.url or "").replace("https://api.openai.com", self.root)
        return super().send(request, **kwargs)


# -- generations: the wire format ---------------------------------------------------------


def test_generate_posts_the_parameters_as_json_with_the_headers(
    api: FakeImagesAPI, client: OpenAIClient
) -> None:
    first, second = png((255, 0, 0, 255)), png((0, 0, 255, 255))
    api.reply(
        Reply(
            body=images_body(
                first, second, output_format="png", size="1024x1536", usage={"total_tokens": 99}
            ),
            headers={"x-request-id": "req_gen_1"},
        )
    )

    result = client.generate(
        prompt="a lighthouse at dusk",
        model="gpt-image-1",
        n=2,
        size="1024x1536",
        quality="high",
        background="opaque",
        moderation="low",
        user="workshop-7",
        seed=11,
    )

    (sent,) = api.requests
    assert sent.method == "POST" and sent.path == "/v1/images/generations"
    assert sent.headers["content-type"] == "application/json"
    assert sent.json() == {
        "prompt": "a lighthouse at dusk",
        "model": "gpt-image-1",
        "n": 2,
        "size": "1024x1536",
        "quality": "high",
        "background": "opaque",
        "moderation": "low",
        "user": "workshop-7",
        "seed": 11,  # a compatible server honours it
    }
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["openai-organization"] == "org-42"
    assert sent.headers["openai-project"] == "proj_7"
    assert sent.headers["user-agent"].startswith("ipyimagegen")

    assert [image.data for image in result] == [first, second]
    assert [image.index for image in result] == [0, 1]
    assert result[0].mime_type == "image/png"
    assert result[0].metadata["size"] == "1024x1536"
    assert result[0].request is result.request
    assert result.request_id == "req_gen_1"
    assert result.usage == {"total_tokens": 99}
    assert result.created == 1_700_000_000
    assert result.backend == client.name
    assert result.model == "gpt-image-1"


def test_the_user_agent_names_the_one_version(api: FakeImagesAPI, client: OpenAIClient) -> None:
    from importlib.metadata import version

    import ipyimagegen

    for _ in range(2):
        api.reply(Reply(body=images_body(png())))
        client.generate(prompt="a kite", model="dall-e-2", size="256x256")
    assert ipyimagegen.__version__ == version("ipyimagegen")  # pyproject reads it from the package
    assert [sent.headers["user-agent"] for sent in api.requests] == [
        f"ipyimagegen/{ipyimagegen.__version__}"
    ] * 2


def test_gpt_image_never_gets_response_format_and_extra_fields_pass_through(
    api: FakeImagesAPI, client: OpenAIClient
) -> None:
    webp = io.BytesIO()
    Image.new("RGB", (8, 8)).save(webp, format="WEBP")
    api.reply(Reply(body=images_body(webp.getvalue(), output_format="webp")))

    result = client.run(
        GenerateRequest(
            prompt="x",
            model="gpt-image-1.5",
            output_format="webp",
            output_compression=50,
            partial_images=2,  # no on_partial hook: nothing to stream to
            extra={"custom_flag": True},
        )
    )

    body = api.requests[0].json()
    assert "response_format" not in body
    assert "stream" not in body and "partial_images" not in body
    assert body["output_format"] == "webp" and body["output_compression"] == 50
    assert body["custom_flag"] is True
    assert result[0].mime_type == "image/webp"


@pytest.mark.parametrize("model", ["dall-e-3", "my-server-model"])
def test_dall_e_and_unknown_models_ask_for_base64(
    api: FakeImagesAPI, client: OpenAIClient, model: str
) -> None:
    api.reply(
        Reply(body={"created": 1, "data": [{"b64_json": b64(png()), "revised_prompt": "A red square."}]})
    )

    result = client.generate(prompt="red", model=model, size="1024x1024")

    assert api.requests[0].json()["response_format"] == "b64_json"
    assert result[0].revised_prompt == "A red square."
    assert result[0].prompt == "A red square."


def test_the_public_api_gets_no_seed(api: FakeImagesAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    session = requests.Session()
    session.mount("https://api.openai.com/", _ToLocalServer(api.root))
    api.reply(Reply(body=images_body(png())))

    with OpenAIClient(session=session) as client:
        client.generate(prompt="a cat", model="gpt-image-2", seed=5)
        assert client.name == "OpenAI (api.openai.com)"

    sent = api.requests[0]
    assert sent.path == "/v1/images/generations"
    assert "seed" not in sent.json()
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert session.get(api.serve_file("/still-open.png", b"ok")).content == b"ok"  # not closed by the client


def test_url_results_are_downloaded_at_once_without_the_key(api: FakeImagesAPI, client: OpenAIClient) -> None:
    image = png((0, 128, 0, 255))
    url = api.serve_file("/files/result-0.png", image)
    api.reply(Reply(body={"created": 1, "data": [{"url": url}]}))

    result = client.generate(prompt="green", model="dall-e-2", size="256x256", response_format="url")

    call, download = api.requests
    assert call.json()["response_format"] == "url"
    assert download.method == "GET" and download.path == "/files/result-0.png"
    assert "authorization" not in download.headers
    assert result[0].data == image
    assert result[0].url == url
    assert result[0].mime_type == "image/png"


# -- edits and variations: multipart ------------------------------------------------------


def test_edit_with_several_images_sends_repeated_image_parts(
    api: FakeImagesAPI, client: OpenAIClient
) -> None:
    inputs = [InputImage.from_bytes(png((i * 60, 0, 0, 255)), name=f"input{i}") for i in range(3)]
    api.reply(Reply(body=images_body(png())))

    client.run(
        EditRequest(
            images=inputs,
            prompt="put them in a gift basket",
            model="gpt-image-1",
            n=2,
            quality="low",
            input_fidelity="high",
        )
    )

    sent = api.requests[0]
    assert sent.path == "/v1/images/edits"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    parts = sent.form()
    files = [part for part in parts if part.filename is not None]
    assert [part.name for part in files] == ["image[]", "image[]", "image[]"]
    assert [part.filename for part in files] == ["input0.png", "input1.png", "input2.png"]
    assert {part.content_type for part in files} == {"image/png"}
    assert [part.data for part in files] == [image.data for image in inputs]
    assert sent.fields() == {
        "prompt": "put them in a gift basket",
        "model": "gpt-image-1",
        "n": "2",
        "quality": "low",
        "input_fidelity": "high",
    }


def test_edit_with_a_mask_sends_image_and_mask_parts(api: FakeImagesAPI, client: OpenAIClient) -> None:
    image = InputImage.from_bytes(png(size=64), name="photo")
    mask = InputImage.from_bytes(png((0, 0, 0, 0), size=64), name="mask")
    api.reply(Reply(body=images_body(png())))

    client.run(
        EditRequest(images=[image], mask=mask, prompt="a sunlit lounge with a flamingo", model="gpt-image-1")
    )

    parts = {part.name: part for part in api.requests[0].form()}
    assert (parts["image"].filename, parts["image"].content_type, parts["image"].data) == (
        "photo.png",
        "image/png",
        image.data,
    )
    assert (parts["mask"].filename, parts["mask"].content_type, parts["mask"].data) == (
        "mask.png",
        "image/png",
        mask.data,
    )
    assert parts["prompt"].text == "a sunlit lounge with a flamingo"
    assert "response_format" not in parts


def test_variation_sends_one_image_part(api: FakeImagesAPI, client: OpenAIClient) -> None:
    image = InputImage.from_bytes(png(size=64), name="corgi")
    api.reply(Reply(body=images_body(png(), png())))

    result = client.run(VariationRequest(image=image, model="dall-e-2", n=2, size="256x256"))

    sent = api.requests[0]
    assert sent.path == "/v1/images/variations"
    (file_part,) = [part for part in sent.form() if part.filename is not None]
    assert (file_part.name, file_part.filename, file_part.content_type) == ("image", "corgi.png", "image/png")
    assert sent.fields() == {"model": "dall-e-2", "n": "2", "size": "256x256", "response_format": "b64_json"}
    assert len(result) == 2


# -- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "expected", "code", "param"),
    [
        (400, error_body("Invalid size.", "invalid_value", "size"), BadRequestError, "invalid_value", "size"),
        (
            400,
            error_body("Your request was rejected by our safety system.", "content_policy_violation"),
            ContentPolicyError,
            "content_policy_violation",
            None,
        ),
        (
            400,
            error_body("Blocked by moderation.", "moderation_blocked"),
            ContentPolicyError,
            "moderation_blocked",
            None,
        ),
        (
            400,
            error_body(
                "The response was filtered.",
                "contentFilter",
                innererror={"code": "ResponsibleAIPolicyViolation", "content_filter_result": {}},
            ),
            ContentPolicyError,
            "contentFilter",
            None,
        ),
        (
            401,
            error_body("Incorrect API key provided.", "invalid_api_key"),
            AuthenticationError,
            "invalid_api_key",
            None,
        ),
        (403, error_body("Organization must be verified.", None), PermissionDeniedError, None, None),
        (
            404,
            error_body("The model 'x' does not exist.", "model_not_found", "model"),
            NotFoundError,
            "model_not_found",
            "model",
        ),
        (422, error_body("Unprocessable.", None, "mask"), BadRequestError, None, "mask"),
        (
            429,
            error_body("Rate limit reached.", "rate_limit_exceeded"),
            RateLimitError,
            "rate_limit_exceeded",
            None,
        ),
        (500, error_body("The server had an error.", None), InternalServerError, None, None),
    ],
)
def test_error_answers_become_typed_errors(
    api: FakeImagesAPI,
    status: int,
    body: dict[str, Any],
    expected: type[APIStatusError],
    code: str | None,
    param: str | None,
) -> None:
    api.reply(Reply(status=status, body=body, headers={"x-request-id": "req_err"}))
    client = OpenAIClient(api_key=KEY, base_url=api.base_url, max_retries=0)

    with pytest.raises(expected) as caught:
        client.generate(prompt="a cat", model="gpt-image-1")

    error = caught.value
    assert type(error) is expected
    assert error.status_code == status
    assert error.code == code
    assert error.param == param
    assert error.request_id == "req_err"
    assert error.message == body["error"]["message"]
    assert body["error"]["message"] in str(error) and "req_err" in str(error)
    assert len(api.requests) == 1


def test_rate_limit_error_keeps_retry_after(api: FakeImagesAPI) -> None:
    api.reply(
        Reply(status=429, body=error_body("Slow down.", "rate_limit_exceeded"), headers={"Retry-After": "20"})
    )
    client = OpenAIClient(api_key=KEY, base_url=api.base_url, max_retries=0)

    with pytest.raises(RateLimitError) as caught:
        client.generate(prompt="a cat", model="gpt-image-1")

    assert caught.value.retry_after == 20.0
    assert "20 s" in caught.value.hint


def test_a_retry_after_longer_than_the_client_waits_says_when_to_try_again(
    api: FakeImagesAPI, client: OpenAIClient, sleeps: list[float]
) -> None:
    api.reply(
        Reply(
            status=429, body=error_body("Slow down.", "rate_limit_exceeded"), headers={"Retry-After": "3600"}
        )
    )

    with pytest.raises(RateLimitError) as caught:
        client.generate(prompt="a cat", model="gpt-image-1")

    error = caught.value
    assert error.retry_at is not None
    assert abs((error.retry_at - datetime.now(timezone.utc)).total_seconds() - 3600) < 5
    assert error.message == (
        "Slow down. The server asks to wait 60 min before another try "
        f"(until {error.retry_at:%H:%M:%S} UTC), longer than this call waits (60 s): try again then."
    )
    assert len(api.requests) == 1 and sleeps == []


def test_a_retry_after_past_the_call_timeout_is_reported_not_waited_for(
    api: FakeImagesAPI, sleeps: list[float]
) -> None:
    api.reply(Reply(status=503, body=error_body("Busy."), headers={"Retry-After": "30"}))
    client = OpenAIClient(api_key=KEY, base_url=api.base_url, timeout=5, sleep=sleeps.append)

    with pytest.raises(InternalServerError) as caught:
        client.generate(prompt="a cat", model="gpt-image-1")

    assert "wait 30 s before another try" in caught.value.message
    assert "longer than this call waits (5 s)" in caught.value.message
    assert sleeps == []


@pytest.mark.parametrize("status", [403, 404, 410])
def test_an_expired_result_link_says_so(api: FakeImagesAPI, client: OpenAIClient, status: int) -> None:
    url = f"{api.root}/files/gone.png?se=2026-12-01&sig=abc"
    api.reply(
        Reply(body={"created": 1, "data": [{"url": url}]}),
        Reply(status=status, body="<Error><Code>AuthenticationFailed</Code></Error>"),
    )

    with pytest.raises(ResultExpiredError) as caught:
        client.generate(prompt="a cat", model="dall-e-2", response_format="url")

    assert caught.value.message == (
        f"The image's link has expired or is gone (HTTP {status} for {api.root}/files/gone.png): "
        "result links last about an hour."
    )
    assert "model" not in describe_error(caught.value)
    assert "response_format='b64_json'" in describe_error(caught.value)
    assert "sig=abc" not in str(caught.value)


def test_a_body_that_is_not_json_still_gives_a_readable_error(api: FakeImagesAPI) -> None:
    api.reply(Reply(status=502, body="<html>Bad Gateway</html>", headers={"x-request-id": "req_gw"}))
    client = OpenAIClient(api_key=KEY, base_url=api.base_url, max_retries=0)

    with pytest.raises(InternalServerError) as caught:
        client.generate(prompt="a cat", model="gpt-image-1")

    assert caught.value.status_code == 502
    assert "Bad Gateway" in caught.value.message
    assert caught.value.request_id == "req_gw"


def test_a_success_that_is_not_json_is_an_error(api: FakeImagesAPI, client: OpenAIClient) -> None:
    api.reply(Reply(status=200, body="<html>a login page</html>"))

    with pytest.raises(APIError, match="not JSON"):
        client.generate(prompt="a cat", model="gpt-image-1")


def test_an_unreachable_server_is_a_connection_error(sleeps: list[float]) -> None:
    with socket_port() as port:
        pass  # the port is free again: nothing listens there
    client = OpenAIClient(base_url=f"http://127.0.0.1:{port}/v1", max_retries=1, sleep=sleeps.append)

    with pytest.raises(APIConnectionError) as caught:
        client.generate(prompt="a cat", model="gpt-image-1")

    assert not isinstance(caught.value, APITimeoutError)
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert len(sleeps) == 1


class socket_port:
    """A port number that was free a moment ago."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return self.sock.getsockname()[1]

    def __exit__(self, *exc: Any) -> None:
        self.sock.close()


# -- retries -----------------------------------------------------------------------------


def test_429_is_retried_after_the_time_the_server_asks(
    api: FakeImagesAPI, client: OpenAIClient, sleeps: list[float]
) -> None:
    api.reply(
        Reply(status=429, body=error_body("Slow down.", "rate_limit_exceeded"), headers={"Retry-After": "3"}),
        Reply(
            status=429,
            body=error_body("Slow down.", "rate_limit_exceeded"),
            headers={"retry-after-ms": "1500"},
        ),
        Reply(body=images_body(png())),
    )

    result = client.generate(prompt="a cat", model="gpt-image-1")

    assert len(result) == 1
    assert sleeps == [3.0, 1.5]
    assert len(api.requests) == 3
    assert api.requests[0].body == api.requests[2].body


def test_retry_after_as_an_http_date(api: FakeImagesAPI, client: OpenAIClient, sleeps: list[float]) -> None:
    import time

    api.reply(
        Reply(
            status=503,
            body=error_body("Busy."),
            headers={"Retry-After": formatdate(time.time() + 30, usegmt=True)},
        ),
        Reply(body=images_body(png())),
    )

    client.generate(prompt="a cat", model="gpt-image-1")

    (waited,) = sleeps
    assert 25 <= waited <= 30


def test_server_errors_are_retried_with_backoff(
    api: FakeImagesAPI, client: OpenAIClient, sleeps: list[float]
) -> None:
    api.reply(
        Reply(status=500, body=error_body("Oops.")),
        Reply(status=503, body=error_body("Overloaded.")),
        Reply(body=images_body(png())),
    )

    result = client.generate(prompt="a cat", model="gpt-image-1")

    assert len(result) == 1 and len(api.requests) == 3
    first, second = sleeps
    assert 0.375 <= first <= 0.5  # 0.5 s less up to 25 % jitter
    assert 0.75 <= second <= 1.0


def test_retries_run_out_with_the_last_error(
    api: FakeImagesAPI, client: OpenAIClient, sleeps: list[float]
) -> None:
    api.reply(
        *(
            Reply(status=500, body=error_body(f"failure {i}"), headers={"x-request-id": f"req_{i}"})
            for i in range(3)
        )
    )

    with pytest.raises(InternalServerError) as caught:
        client.generate(prompt="a cat", model="gpt-image-1")

    assert caught.value.message == "failure 2"
    assert caught.value.request_id == "req_2"
    assert len(api.requests) == 3 and len(sleeps) == 2


@pytest.mark.parametrize(
    "reply",
    [
        Reply(status=400, body=error_body("Bad size.", "invalid_value", "size")),
        Reply(status=500, body=error_body("Do not retry."), headers={"x-should-retry": "false"}),
        Reply(status=429, body=error_body("Quota.", "insufficient_quota")),
        Reply(status=429, body=error_body("Come back later."), headers={"Retry-After": "3600"}),
    ],
    ids=["400", "x-should-retry-false", "insufficient-quota", "retry-after-too-long"],
)
def test_what_is_not_retried(
    api: FakeImagesAPI, client: OpenAIClient, sleeps: list[float], reply: Reply
) -> None:
    api.reply(reply, Reply(body=images_body(png())))

    with pytest.raises(APIStatusError):
        client.generate(prompt="a cat", model="gpt-image-1")

    assert len(api.requests) == 1 and sleeps == []


def test_x_should_retry_true_retries_even_a_400(
    api: FakeImagesAPI, client: OpenAIClient, sleeps: list[float]
) -> None:
    api.reply(
        Reply(status=400, body=error_body("Try again."), headers={"x-should-retry": "true"}),
        Reply(body=images_body(png())),
    )

    assert len(client.generate(prompt="a cat", model="gpt-image-1")) == 1
    assert len(api.requests) == 2


@pytest.mark.timeout(10)
def test_cancel_stops_the_wait_between_tries(api: FakeImagesAPI) -> None:
    api.reply(Reply(status=429, body=error_body("Slow down."), headers={"Retry-After": "50"}))
    client = OpenAIClient(api_key=KEY, base_url=api.base_url)  # the real wait
    cancel = threading.Event()
    threading.Timer(0.1, cancel.set).start()

    with pytest.raises(CancelledError):
        client.generate(prompt="a cat", model="gpt-image-1", cancel=cancel)

    assert len(api.requests) == 1


# -- timeouts and broken connections ------------------------------------------------------


def test_timeout_bounds_the_whole_call_so_a_slow_try_leaves_no_time_for_another(
    api: FakeImagesAPI, sleeps: list[float]
) -> None:
    api.reply(Reply(delay=2, body=images_body(png())), Reply(delay=2, body=images_body(png())))
    client = OpenAIClient(api_key=KEY, base_url=api.base_url, timeout=0.3, max_retries=2, sleep=sleeps.append)
    started = time.monotonic()

    with pytest.raises(APITimeoutError) as caught:
        client.generate(prompt="a cat", model="gpt-image-1")

    assert time.monotonic() - started < 1.0
    assert str(caught.value) == f"{api.host} did not answer within 0.3 s."
    assert len(api.requests) == 1 and sleeps == []


def test_quick_failures_are_retried_within_the_timeout(api: FakeImagesAPI, sleeps: list[float]) -> None:
    image = png()
    api.reply(Reply(status=500, body=error_body("Hiccup.")), Reply(body=images_body(image)))
    client = OpenAIClient(api_key=KEY, base_url=api.base_url, timeout=5, sleep=sleeps.append)

    assert client.generate(prompt="a cat", model="gpt-image-1")[0].data == image
    assert len(api.requests) == 2 and len(sleeps) == 1


@pytest.mark.timeout(20)
def test_a_server_that_trickles_its_answer_is_cut_off_at_the_timeout(api: FakeImagesAPI) -> None:
    api.reply(Reply(body=images_body(png()), trickle=0.05))  # a byte every 50 ms: minutes for the body
    client = OpenAIClient(api_key=KEY, base_url=api.base_url, max_retries=0)
    started = time.monotonic()

    with pytest.raises(APITimeoutError) as caught:
        client.generate(prompt="a cat", model="gpt-image-1", timeout=1.5)

    assert 1.4 < time.monotonic() - started < 2.5
    assert str(caught.value) == f"{api.host} did not finish its answer within 1.5 s."


@pytest.mark.timeout(20)
def test_a_download_that_trickles_counts_against_the_same_timeout(api: FakeImagesAPI) -> None:
    url = api.serve_file("/files/slow.png", png(), trickle=0.05)
    api.reply(Reply(body={"created": 1, "data": [{"url": url}]}))
    client = OpenAIClient(api_key=KEY, base_url=api.base_url, max_retries=0)
    started = time.monotonic()

    with pytest.raises(APITimeoutError) as caught:
        client.generate(prompt="a cat", model="dall-e-2", timeout=1.0, response_format="url")

    assert time.monotonic() - started < 2.0
    assert str(caught.value) == f"{api.host} did not finish its answer within 1 s."


@pytest.mark.timeout(20)
def test_a_body_that_stalls_half_way_is_cut_off_at_the_timeout(api: FakeImagesAPI) -> None:
    api.reply(Reply(delay=0.5, body=images_body(png()), hold_after=30))
    client = OpenAIClient(api_key=KEY, base_url=api.base_url, max_retries=0)
    started = time.monotonic()

    with pytest.raises(APITimeoutError) as caught:
        client.generate(prompt="a cat", model="gpt-image-1", timeout=1.0)

    assert time.monotonic() - started < 1.6  # not 0.5 s of waiting plus another full second
    assert str(caught.value) == f"{api.host} did not finish its answer within 1 s."


def test_the_per_call_timeout_overrides_the_client_default(api: FakeImagesAPI, client: OpenAIClient) -> None:
    api.reply(Reply(delay=2, body=images_body(png())))
    client.retry.max_retries = 0

    with pytest.raises(APITimeoutError, match="0.2 s"):
        client.generate(prompt="a cat", model="gpt-image-1", timeout=0.2)


def test_a_connection_dropped_mid_answer_is_a_connection_error(
    api: FakeImagesAPI, client: OpenAIClient, sleeps: list[float]
) -> None:
    api.reply(*(Reply(body=images_body(png()), cut_after=20) for _ in range(3)))

    with pytest.raises(APIConnectionError) as caught:
        client.generate(prompt="a cat", model="gpt-image-1")

    assert not isinstance(caught.value, APITimeoutError)
    assert len(api.requests) == 3 and len(sleeps) == 2


def test_a_dropped_connection_is_retried(api: FakeImagesAPI, client: OpenAIClient) -> None:
    image = png()
    api.reply(Reply(body=images_body(png()), cut_after=20), Reply(body=images_body(image)))

    assert client.generate(prompt="a cat", model="gpt-image-1")[0].data == image


# -- streaming ---------------------------------------------------------------------------


def _stream_events(kind: str, partials: list[bytes], final: bytes) -> list[tuple[str, dict[str, Any]]]:
    common = {
        "background": "opaque",
        "output_format": "png",
        "quality": "low",
        "size": "1024x1024",
        "created_at": 1,
    }
    events = [
        (
            f"{kind}.partial_image",
            {"type": f"{kind}.partial_image", "b64_json": b64(data), "partial_image_index": i, **common},
        )
        for i, data in enumerate(partials)
    ]
    usage = {"input_tokens": 10, "output_tokens": 20, "total_tokens": 30, "input_tokens_details": {}}
    events.append(
        (f"{kind}.completed", {"type": f"{kind}.completed", "b64_json": b64(final), "usage": usage, **common})
    )
    return events


def test_streamed_generation_delivers_partials_in_order(api: FakeImagesAPI, client: OpenAIClient) -> None:
    partials = [png((50, 0, 0, 255)), png((100, 0, 0, 255))]
    final = png((250, 0, 0, 255))
    api.reply(
        Reply(events=_stream_events("image_generation", partials, final), headers={"x-request-id": "req_s"})
    )
    received: list[PartialImage] = []

    result = client.generate(
        prompt="a cat", model="gpt-image-1", partial_images=2, on_partial=received.append
    )

    body = api.requests[0].json()
    assert body["stream"] is True and body["partial_images"] == 2
    assert [(p.index, p.partial_index, p.data, p.mime_type) for p in received] == [
        (0, 0, partials[0], "image/png"),
        (0, 1, partials[1], "image/png"),
    ]
    assert [image.data for image in result] == [final]
    assert result.usage is not None and result.usage["total_tokens"] == 30
    assert result.request_id == "req_s"
    assert result[0].metadata["quality"] == "low"


def test_streamed_edit_sends_stream_as_a_form_field(api: FakeImagesAPI, client: OpenAIClient) -> None:
    partial, final = png((0, 50, 0, 255)), png((0, 250, 0, 255))
    api.reply(Reply(events=_stream_events("image_edit", [partial], final)))
    received: list[PartialImage] = []
    request = EditRequest(
        images=[InputImage.from_bytes(png())], prompt="greener", model="gpt-image-1", partial_images=1
    )

    result = client.run(request, CallHooks(on_partial=received.append))

    fields = api.requests[0].fields()
    assert fields["stream"] == "true" and fields["partial_images"] == "1"
    assert [p.data for p in received] == [partial]
    assert result[0].data == final


@pytest.mark.timeout(10)
def test_cancel_during_a_stream_stops_reading_at_once(api: FakeImagesAPI, client: OpenAIClient) -> None:
    api.reply(Reply(events=_stream_events("image_generation", [png(), png()], png()), stall_after=1))
    cancel = threading.Event()
    received: list[PartialImage] = []

    def on_partial(partial: Any) -> None:
        received.append(partial)
        cancel.set()

    with pytest.raises(CancelledError):
        client.generate(
            prompt="a cat", model="gpt-image-1", partial_images=2, on_partial=on_partial, cancel=cancel
        )

    assert len(received) == 1


def test_an_error_event_in_a_stream_raises(api: FakeImagesAPI, client: OpenAIClient) -> None:
    events = _stream_events("image_generation", [png()], png())[:1]
    events.append(
        ("error", {"type": "error", "error": {"message": "Blocked.", "code": "moderation_blocked"}})
    )
    api.reply(Reply(events=events, headers={"x-request-id": "req_blocked"}))

    with pytest.raises(ContentPolicyError) as caught:
        client.generate(prompt="a cat", model="gpt-image-1", partial_images=1, on_partial=lambda p: None)

    assert caught.value.request_id == "req_blocked"
    assert caught.value.code == "moderation_blocked"


def test_a_stream_that_stalls_times_out(api: FakeImagesAPI, sleeps: list[float]) -> None:
    api.reply(Reply(events=_stream_events("image_generation", [png(), png()], png()), stall_after=1))
    client = OpenAIClient(api_key=KEY, base_url=api.base_url, timeout=0.3, sleep=sleeps.append)
    received: list[PartialImage] = []

    with pytest.raises(APITimeoutError, match="0.3 s"):
        client.generate(prompt="a cat", model="gpt-image-1", partial_images=2, on_partial=received.append)

    assert len(received) == 1
    assert len(api.requests) == 1  # partial images were shown: a stream is not tried again


def test_a_stream_that_ends_early_is_a_connection_error(api: FakeImagesAPI, client: OpenAIClient) -> None:
    api.reply(Reply(events=_stream_events("image_generation", [png()], png())[:1]))

    with pytest.raises(APIConnectionError, match="stream ended"):
        client.generate(prompt="a cat", model="gpt-image-1", partial_images=1, on_partial=lambda p: None)


def test_a_server_that_does_not_stream_still_answers(api: FakeImagesAPI, client: OpenAIClient) -> None:
    image = png()
    api.reply(Reply(body=images_body(image)))
    received: list[Any] = []

    result = client.generate(
        prompt="a cat", model="gpt-image-1", partial_images=1, on_partial=received.append
    )

    assert result[0].data == image and received == []


def test_streaming_is_offered_for_gpt_image_models_only(client: OpenAIClient) -> None:
    assert client.supports_streaming("gpt-image-1")
    assert not client.supports_streaming("dall-e-3")


# -- Azure -------------------------------------------------------------------------------


def test_azure_url_api_version_and_key_header(api: FakeImagesAPI) -> None:
    api.reply(Reply(body=images_body(png())))
    client = AzureOpenAIClient(
        endpoint=api.root, deployment="gpt-image-2", api_version="2025-04-01-preview", api_key=KEY
    )

    client.generate(prompt="a cat", n=1)

    sent = api.requests[0]
    assert sent.path == "/openai/deployments/gpt-image-2/images/generations?api-version=2025-04-01-preview"
    assert sent.headers["api-key"] == KEY
    assert "authorization" not in sent.headers
    assert sent.json()["model"] == "gpt-image-2" and "response_format" not in sent.json()
    assert KEY not in repr(client) and "gpt-image-2" in client.name


def test_azure_v1_route_takes_the_deployment_as_the_model(api: FakeImagesAPI) -> None:
    api.reply(Reply(body=images_body(png())), Reply(body=images_body(png())))
    client = AzureOpenAIClient(endpoint=api.root, deployment="images-prod", api_key=KEY)

    client.generate(prompt="a cat", quality="xhigh")  # an unknown deployment name runs a GPT image model
    client.edit(image=png(), prompt="a cat at night")

    first, second = api.requests
    assert first.path == "/openai/v1/images/generations" and "api-version" not in first.path
    assert first.json()["model"] == "images-prod" and "response_format" not in first.json()
    assert second.path == "/openai/v1/images/edits" and second.fields()["model"] == "images-prod"
    assert client.route == "v1" and client.models("variations") == []


def test_azure_refuses_a_shut_down_model_before_sending(api: FakeImagesAPI) -> None:
    client = AzureOpenAIClient(endpoint=api.root, deployment="dall-e-3", api_key=KEY)

    with pytest.raises(ModelShutDownError, match="dall-e-3 was shut down on 2026-05-12") as caught:
        client.generate(prompt="a cat")

    assert caught.value.replacements and api.requests == []
    assert client.models("generations") == []


def test_azure_ad_token_from_the_environment(api: FakeImagesAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_AD_TOKEN", "entra-from-env")
    api.reply(Reply(body=images_body(png())))
    client = AzureOpenAIClient(endpoint=api.root, deployment="gpt-image-2.6-flare")

    client.generate(prompt="a cat")

    assert api.requests[0].headers["authorization"] == "Bearer entra-from-env"
    assert "entra-from-env" not in repr(client)


def test_azure_from_the_environment_with_an_entra_token(
    api: FakeImagesAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", api.root)
    monkeypatch.setenv("AZURE_OPENAI_DEPLOYMENT", "images-prod")
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")
    api.reply(Reply(body=images_body(png())))
    client = AzureOpenAIClient(azure_ad_token=lambda: "entra-token", default_model="gpt-image-2.5-flare")

    client.generate(prompt="a cat")

    sent = api.requests[0]
    assert sent.path == "/openai/deployments/images-prod/images/generations?api-version=2024-10-21"
    assert sent.headers["authorization"] == "Bearer entra-token"
    assert "api-key" not in sent.headers
    assert client.models("generations") == ["gpt-image-2.5-flare"] == client.models("edits")
    assert client.models("variations") == []


def test_azure_content_filter_is_a_content_policy_error(api: FakeImagesAPI) -> None:
    body = {
        "error": {
            "code": "content_policy_violation",
            "message": "Your request was rejected as a result of our safety system.",
            "innererror": {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": {"violence": {"filtered": True}},
            },
        }
    }
    api.reply(Reply(status=400, body=body, headers={"apim-request-id": "azure-req"}))
    client = AzureOpenAIClient(endpoint=api.root, deployment="gpt-image-2", api_key=KEY, max_retries=0)

    with pytest.raises(ContentPolicyError) as caught:
        client.generate(prompt="a cat")

    assert caught.value.request_id == "azure-req"


def test_azure_content_filter_code_on_the_images_route(api: FakeImagesAPI) -> None:
    body = {
        "error": {
            "code": "contentFilter",
            "message": "Your request was rejected as a result of our safety system.",
            "inner_error": {"code": "ResponsibleAIPolicyViolation"},
        }
    }
    api.reply(Reply(status=400, body=body))
    client = AzureOpenAIClient(endpoint=api.root, deployment="gpt-image-2", api_key=KEY, max_retries=0)

    with pytest.raises(ContentPolicyError) as caught:
        client.edit(image=png(), prompt="a cat")

    assert caught.value.code == "contentFilter" and "Rephrase" in describe_error(caught.value)


def test_azure_needs_an_endpoint_a_deployment_and_a_credential() -> None:
    with pytest.raises(ConfigurationError, match="AZURE_OPENAI_ENDPOINT"):
        AzureOpenAIClient(deployment="d", api_key=KEY)
    with pytest.raises(ConfigurationError, match="AZURE_OPENAI_DEPLOYMENT"):
        AzureOpenAIClient(endpoint="https://r.openai.azure.com", api_key=KEY)
    with pytest.raises(ConfigurationError, match="AZURE_OPENAI_API_KEY"):
        AzureOpenAIClient(endpoint="https://r.openai.azure.com", deployment="d")


# -- configuration and secrets ------------------------------------------------------------


def test_no_key_for_the_public_api_says_what_to_set() -> None:
    with pytest.raises(ConfigurationError) as caught:
        OpenAIClient()

    message = str(caught.value)
    assert "OPENAI_API_KEY" in message and "api_key=" in message and "default_backend()" in message


def test_settings_come_from_the_environment(api: FakeImagesAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", api.base_url + "/")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-env")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-env")
    api.reply(Reply(body=images_body(png())))

    OpenAIClient().generate(prompt="a cat", model="gpt-image-1")

    sent = api.requests[0]
    assert sent.path == "/v1/images/generations"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert (sent.headers["openai-organization"], sent.headers["openai-project"]) == ("org-env", "proj-env")


def test_a_local_server_needs_no_key(api: FakeImagesAPI) -> None:
    api.reply(Reply(body=images_body(png())))
    client = OpenAIClient(
        base_url=api.base_url, default_headers={"X-Workshop": "room-1"}, default_model="dall-e-2"
    )

    client.generate(prompt="a cat")

    sent = api.requests[0]
    assert "authorization" not in sent.headers
    assert sent.headers["x-workshop"] == "room-1"
    assert sent.json()["model"] == "dall-e-2"
    assert client.name.startswith("Images API at 127.0.0.1:")
    assert "not set" in repr(client)


@pytest.mark.parametrize("base_url", ["api.openai.com/v1", "ftp://example.com"])
def test_a_base_url_that_is_not_http_is_refused(base_url: str) -> None:
    with pytest.raises(ConfigurationError, match="http"):
        OpenAIClient(api_key=KEY, base_url=base_url)


def test_the_key_never_shows(
    api: FakeImagesAPI, client: OpenAIClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    echoed = error_body(f"Incorrect API key provided: {KEY}.", "invalid_api_key")
    api.reply(
        Reply(status=401, body=echoed),
        Reply(status=500, body=error_body("Oops.")),
        Reply(body=images_body(png())),
    )

    with pytest.raises(AuthenticationError) as caught:
        client.generate(prompt="a cat", model="gpt-image-1")
    client.generate(prompt="a cat", model="gpt-image-1")  # a retry is logged too

    assert KEY not in str(caught.value) and KEY not in repr(caught.value)
    assert "***" in str(caught.value)
    assert KEY not in repr(client) and KEY not in str(client) and KEY not in client.name
    assert "api_key set" in repr(client)
    assert any(record.name == "ipyimagegen.api" for record in caplog.records)
    assert all(KEY not in record.getMessage() for record in caplog.records)
    assert KEY not in caplog.text
