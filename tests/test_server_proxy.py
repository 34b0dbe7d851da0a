"""Proxy mode: participants call the server with their tokens; it calls the upstream API with its own key.

The upstream is a second local server (the preview engine behind its own tokens), wrapped so
that it records the Authorization header of every call it gets.
"""

from __future__ import annotations

import base64
import concurrent.futures
import io
import json
import logging
import os
import socket
import subprocess
import sys
import time

import openai
import pytest
import requests
from PIL import Image
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from fake_api_server import FakeImagesAPI, Reply
from ipyimagegen.api.client import OpenAIClient
from ipyimagegen.api.retry import rate_limit_reset
from ipyimagegen.api.types import GenerateRequest
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.errors import RateLimitError
from ipyimagegen.server import ServerThread, TokenStore, make_app
from ipyimagegen.server.config import ServerConfig
from ipyimagegen.server.upstream import upstream_backend
from waiting import wait_for_health, wait_until


class Recorder:
    """ASGI wrapper that notes the Authorization header of each call."""

    def __init__(self, app) -> None:
        self.app = app
        self.authorizations: list[str] = []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/images/"):
            headers = dict(scope["headers"])
            self.authorizations.append(headers.get(b"authorization", b"").decode())
        await self.app(scope, receive, send)


def png_bytes(size=(256, 256)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", size, (10, 200, 90, 255)).save(buffer, "PNG")
    return buffer.getvalue()


def decoded_size(b64: str) -> tuple[int, int]:
    return Image.open(io.BytesIO(base64.b64decode(b64))).size


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    store = TokenStore.in_dir(tmp_path_factory.mktemp("upstream"))
    recorder = Recorder(make_app(PreviewEngine(), tokens=store))
    with ServerThread(recorder) as running:
        running.recorder = recorder
        running.store = store
        yield running


def start_proxy(upstream, store: TokenStore, key: str) -> ServerThread:
    client = OpenAIClient(base_url=upstream.base_url, api_key=key, max_retries=0)
    return ServerThread(make_app(client, tokens=store, secrets=[key])).start()


@pytest.fixture(scope="module")
def proxy_store(tmp_path_factory):
    return TokenStore.in_dir(tmp_path_factory.mktemp("proxy"))


@pytest.fixture(scope="module")
def upstream_key(upstream):
    key, _ = upstream.store.create("workshop")
    return key


@pytest.fixture(scope="module")
def proxy(upstream, proxy_store, upstream_key):
    running = start_proxy(upstream, proxy_store, upstream_key)
    yield running
    running.stop()


@pytest.fixture
def participant(proxy_store, request):
    token, _ = proxy_store.create(request.node.name, budget=20)
    return token


def sdk_for(server: ServerThread, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=token, max_retries=0)


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # the SDK marks variations deprecated
def test_calls_go_upstream_with_the_server_key(upstream, proxy, participant, upstream_key, caplog):
    caplog.set_level(logging.DEBUG)
    seen_before = len(upstream.recorder.authorizations)
    sdk = sdk_for(proxy, participant)
    result = sdk.images.generate(
        model="dall-e-2", prompt="a fox", n=2, size="256x256", response_format="b64_json"
    )
    assert [decoded_size(item.b64_json) for item in result.data] == [(256, 256)] * 2
    edited = sdk.images.edit(
        model="gpt-image-1", prompt="a fox", image=[("a.png", png_bytes((1024, 1024)), "image/png")] * 2
    )
    assert decoded_size(edited.data[0].b64_json) == (1024, 1024)
    varied = sdk.images.create_variation(
        model="dall-e-2",
        image=("a.png", png_bytes(), "image/png"),
        size="256x256",
        response_format="b64_json",
    )
    assert decoded_size(varied.data[0].b64_json) == (256, 256)
    linked = sdk.images.generate(model="dall-e-2", prompt="a fox", size="256x256")  # DALL-E: a link
    assert linked.data[0].b64_json is None and linked.data[0].url.startswith(proxy.base_url + "/files/")
    sent = upstream.recorder.authorizations[seen_before:]
    assert sent == [f"Bearer {upstream_key}"] * 4
    assert upstream_key not in caplog.text


def test_url_results_are_served_by_the_proxy(proxy, participant, upstream_key):
    result = sdk_for(proxy, participant).images.generate(
        model="dall-e-2", prompt="a fox", size="256x256", response_format="url"
    )
    assert result.data[0].url.startswith(proxy.base_url + "/files/")
    fetched = requests.get(result.data[0].url, timeout=10)
    assert Image.open(io.BytesIO(fetched.content)).size == (256, 256)


def test_streaming_through_the_proxy(proxy, participant):
    stream = sdk_for(proxy, participant).images.generate(
        model="gpt-image-1", prompt="a fox", size="1024x1024", stream=True, partial_images=2
    )
    events = list(stream)
    assert events[-1].type == "image_generation.completed"
    assert decoded_size(events[-1].b64_json) == (1024, 1024)


def test_participant_budget_and_rate_are_enforced_before_upstream(upstream, proxy, proxy_store):
    budget_token, _ = proxy_store.create("small-budget", budget=1)
    rate_token, _ = proxy_store.create("slow", rate="1/hour")
    seen_before = len(upstream.recorder.authorizations)
    for token, code in ((budget_token, "insufficient_quota"), (rate_token, "rate_limit_exceeded")):
        sdk = sdk_for(proxy, token)
        sdk.images.generate(model="dall-e-2", prompt="a fox", size="256x256")
        with pytest.raises(openai.RateLimitError) as caught:
            sdk.images.generate(model="dall-e-2", prompt="a fox", size="256x256")
        assert caught.value.code == code
    assert len(upstream.recorder.authorizations) == seen_before + 2  # refused calls never went upstream


def test_a_participant_token_never_goes_upstream(upstream, proxy, participant):
    sdk_for(proxy, participant).images.generate(model="dall-e-2", prompt="a fox", size="256x256")
    assert all(participant not in header for header in upstream.recorder.authorizations)


def test_upstream_refusing_the_key_is_502_without_the_key(upstream, proxy_store, caplog):
    caplog.set_level(logging.DEBUG)
    key, _ = upstream.store.create("revoked-key")
    upstream.store.revoke("revoked-key")
    token, _ = proxy_store.create("victim")
    with start_proxy(upstream, proxy_store, key) as broken:
        answer = requests.post(
            broken.base_url + "/images/generations",
            json={"model": "dall-e-2", "prompt": "a fox", "size": "256x256"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
    assert answer.status_code == 502
    assert answer.json()["error"]["code"] == "upstream_auth_failed"
    assert key not in answer.text
    assert key not in caplog.text
    assert proxy_store.get("victim").images == 0  # the failed call was refunded


def test_upstream_quota_spent_is_429(upstream, proxy_store):
    key, _ = upstream.store.create("tiny-account", budget=0)
    token, _ = proxy_store.create("quota-user")
    with start_proxy(upstream, proxy_store, key) as poor, pytest.raises(openai.RateLimitError) as caught:
        sdk_for(poor, token).images.generate(model="dall-e-2", prompt="a fox", size="256x256")
    assert caught.value.code == "insufficient_quota"
    assert "workshop host" in caught.value.message


def test_upstream_error_messages_are_redacted(proxy_store, caplog):
    """An upstream that quotes the key back in its error: the participant sees *** instead."""
    caplog.set_level(logging.DEBUG)
    key = "sk-upstream-secret-0123456789"

    async def refuse(request):
        quoted = request.headers.get("authorization", "")
        return JSONResponse(
            {
                "error": {
                    "message": f"Bad call with {quoted}",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                }
            },
            status_code=400,
        )

    echo = Starlette(routes=[Route("/v1/images/generations", refuse, methods=["POST"])])
    token, _ = proxy_store.create("redaction")
    with ServerThread(echo) as upstream_echo, start_proxy(upstream_echo, proxy_store, key) as proxy:
        answer = requests.post(
            proxy.base_url + "/images/generations",
            json={"model": "dall-e-2", "prompt": "a fox", "size": "256x256"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
    assert answer.status_code == 400
    assert key not in answer.text
    assert "***" in answer.json()["error"]["message"]
    assert key not in caplog.text


def test_upstream_backend_reads_the_key_from_the_environment(
    monkeypatch, upstream, upstream_key, proxy_store
):
    monkeypatch.setenv("WORKSHOP_UPSTREAM_KEY", upstream_key)
    client = upstream_backend(upstream.base_url, key_env="WORKSHOP_UPSTREAM_KEY")
    assert upstream_key not in repr(client)
    token, _ = proxy_store.create("env-key")
    seen_before = len(upstream.recorder.authorizations)
    app = make_app(client, tokens=proxy_store, secrets=[upstream_key])
    with ServerThread(app) as proxy:
        result = sdk_for(proxy, token).images.generate(model="dall-e-2", prompt="a fox", size="256x256")
    assert len(result.data) == 1
    assert upstream.recorder.authorizations[seen_before:] == [f"Bearer {upstream_key}"]


# -- passing answers on as they came -------------------------------------------------------------


@pytest.fixture
def scripted_upstream():
    api = FakeImagesAPI().start()
    yield api
    api.close()


def test_the_upstreams_answer_is_passed_on_byte_for_byte_with_its_key_taken_out(scripted_upstream):
    key = "sk-upstream-0123456789abcdef"
    image = base64.b64encode(png_bytes((64, 64))).decode()
    answer_of_upstream = {"created": 1767225600, "data": [{"b64_json": image}], "note": f"it echoes {key}"}
    body = json.dumps(answer_of_upstream, indent=1).encode()  # spacing only a pass-through keeps
    scripted_upstream.reply(Reply(body=body, headers={"Content-Type": "application/json"}))
    client = OpenAIClient(base_url=scripted_upstream.base_url, api_key=key, max_retries=0)
    with ServerThread(make_app(client, secrets=[key])) as proxy:
        answer = requests.post(
            f"{proxy.base_url}/images/generations",
            json={"model": "gpt-image-2", "prompt": "a fox"},
            timeout=30,
        )
    assert answer.status_code == 200
    assert answer.content == body.replace(key.encode(), b"***")  # the same bytes: nothing decoded again
    assert answer.headers["x-queue-ahead"] == "0"
    assert scripted_upstream.requests[0].json() == {"model": "gpt-image-2", "n": 1, "prompt": "a fox"}


def test_a_stream_is_relayed_as_it_arrives_with_the_key_taken_out(scripted_upstream):
    key = "sk-upstream-0123456789abcdef"
    partial = base64.b64encode(png_bytes((32, 32))).decode()
    events = [
        ("image_generation.partial_image", {"type": "image_generation.partial_image", "b64_json": partial,
                                            "partial_image_index": 0, "echo": key}),
        ("image_generation.completed", {"type": "image_generation.completed", "b64_json": partial,
                                        "usage": {"total_tokens": 3}}),
    ]  # fmt: skip
    scripted_upstream.reply(Reply(events=events))
    client = OpenAIClient(base_url=scripted_upstream.base_url, api_key=key, max_retries=0)
    with ServerThread(make_app(client, secrets=[key])) as proxy:
        sdk = openai.OpenAI(base_url=proxy.base_url, api_key="local", max_retries=0)
        received = list(
            sdk.images.generate(model="gpt-image-2", prompt="a fox", stream=True, partial_images=1)
        )
    assert [event.type for event in received] == [
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    assert received[0].b64_json == partial and received[0].model_extra["echo"] == "***"
    sent = scripted_upstream.requests[0].json()
    assert sent["stream"] is True and sent["partial_images"] == 1


def test_the_proxy_runs_many_slow_calls_at_once_and_says_where_a_caller_stands(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "ipyimagegen",
        "serve",
        "--port",
        str(port),
        "--upstream",
        "http://127.0.0.1:9/v1",
    ]
    env = {**os.environ, "IPYIMAGEGEN_SERVER_DIR": str(tmp_path), "OPENAI_API_KEY": "sk-x"}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        health = wait_for_health(f"http://127.0.0.1:{port}", process)
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert health["queue"] == {"running": 0, "waiting": 0, "at_once": 32, "rate": None, "shared": False}


# -- the upstream's rate: a refusal waits its turn again instead of reaching the participant ------

RATE_LIMITED = {
    "error": {
        "message": "Rate limit reached for images per minute.",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
}


def images_answer() -> dict:
    return {"created": 1767225600, "data": [{"b64_json": base64.b64encode(png_bytes((64, 64))).decode()}]}


def refusal(wait_ms: int) -> Reply:
    return Reply(status=429, body=RATE_LIMITED, headers={"retry-after-ms": str(wait_ms)})


def as_served(api: FakeImagesAPI, monkeypatch) -> OpenAIClient:
    """The client `ipyimagegen serve --upstream` makes (the default retries included)."""
    monkeypatch.setenv("PACED_UPSTREAM_KEY", "sk-upstream-0123456789abcdef")
    return upstream_backend(api.base_url, key_env="PACED_UPSTREAM_KEY")


def healthy(proxy: ServerThread) -> dict:
    answer = requests.get(proxy.url + "/health", timeout=5)
    assert answer.status_code == 200
    return answer.json()["queue"]


def test_an_upstream_429_waits_its_turn_again_and_the_call_is_served(scripted_upstream, monkeypatch):
    answer_of_upstream = images_answer()
    scripted_upstream.reply(refusal(100), refusal(100), refusal(100), Reply(body=answer_of_upstream))
    with ServerThread(
        make_app(as_served(scripted_upstream, monkeypatch), ServerConfig(upstream_rate="600/min"))
    ) as proxy:
        started = time.monotonic()
        answer = requests.post(
            f"{proxy.base_url}/images/generations",
            json={"model": "gpt-image-2", "prompt": "a fox"},
            timeout=30,
        )
        took = time.monotonic() - started
        queue = healthy(proxy)
    assert answer.status_code == 200, answer.text
    assert answer.json() == answer_of_upstream
    assert len(scripted_upstream.requests) == 4  # more tries than the client's own two retries
    assert took >= 0.3  # each refusal's Retry-After was waited out
    assert queue["running"] == 0 and queue["waiting"] == 0


def test_the_participant_gets_the_429_only_when_the_calls_time_runs_out(scripted_upstream, monkeypatch):
    scripted_upstream.reply(*[refusal(300)] * 40)
    client = as_served(scripted_upstream, monkeypatch)
    with ServerThread(make_app(client, ServerConfig(request_timeout=1.5))) as proxy:
        started = time.monotonic()
        answer = requests.post(
            f"{proxy.base_url}/images/generations",
            json={"model": "gpt-image-2", "prompt": "a fox"},
            timeout=30,
        )
        took = time.monotonic() - started
        queue = healthy(proxy)
    assert answer.status_code == 429
    assert answer.json() == RATE_LIMITED
    assert answer.headers["retry-after-ms"] == "300" and answer.headers["retry-after"] == "1"
    assert len(scripted_upstream.requests) >= 4  # tried in its turns while time was left
    assert 1.1 <= took < 5.0
    assert queue["running"] == 0 and queue["waiting"] == 0


def test_a_refusal_that_asks_longer_than_the_call_has_left_is_passed_on_at_once(
    scripted_upstream, monkeypatch
):
    scripted_upstream.reply(Reply(status=429, body=RATE_LIMITED, headers={"retry-after": "30"}))
    client = as_served(scripted_upstream, monkeypatch)
    with ServerThread(make_app(client, ServerConfig(request_timeout=10))) as proxy:
        started = time.monotonic()
        answer = requests.post(
            f"{proxy.base_url}/images/generations",
            json={"model": "gpt-image-2", "prompt": "a fox"},
            timeout=30,
        )
        took = time.monotonic() - started
        healthy(proxy)
    assert answer.status_code == 429
    assert answer.json() == RATE_LIMITED
    assert answer.headers["retry-after"] == "30"
    assert len(scripted_upstream.requests) == 1 and took < 5.0


def test_a_call_that_cannot_start_within_its_time_is_told_at_once_and_never_goes_upstream(
    scripted_upstream, monkeypatch
):
    scripted_upstream.reply(Reply(body=images_answer()), Reply(body=images_answer()))
    client = as_served(scripted_upstream, monkeypatch)
    app = make_app(
        client, ServerConfig(upstream_rate="1/min", request_timeout=1.0)
    )  # the next image in a minute
    with ServerThread(app) as proxy:
        url = f"{proxy.base_url}/images/generations"
        body = {"model": "gpt-image-2", "prompt": "a fox"}
        first = requests.post(url, json=body, timeout=10)
        began = time.monotonic()
        second = requests.post(url, json=body, timeout=10)
        answered_in = time.monotonic() - began
        queue = healthy(proxy)
    assert first.status_code == 200
    assert second.status_code == 429 and answered_in < 0.9  # told at once, not after its second
    error = second.json()["error"]
    assert error["code"] == "workshop_busy" and error["type"] == "requests"
    assert error["queue"]["ahead"] == 0 and error["queue"]["wait_s"] > 50
    assert int(second.headers["retry-after"]) > 50 and second.headers["x-should-retry"] == "true"
    assert len(scripted_upstream.requests) == 1 and scripted_upstream.pending_replies == 1
    assert queue["running"] == 0 and queue["waiting"] == 0


def test_a_refusal_holds_every_participant_for_the_wait_the_upstream_asked():
    arrivals: list[float] = []

    async def images(request):
        arrivals.append(time.monotonic())
        if len(arrivals) == 1:
            return JSONResponse(RATE_LIMITED, status_code=429, headers={"retry-after-ms": "600"})
        return JSONResponse(images_answer())

    upstream_app = Starlette(routes=[Route("/v1/images/generations", images, methods=["POST"])])
    with ServerThread(upstream_app) as paced_upstream:
        client = OpenAIClient(base_url=paced_upstream.base_url, api_key="sk-upstream-0123456789abcdef")
        with ServerThread(make_app(client)) as proxy, concurrent.futures.ThreadPoolExecutor(2) as pool:
            url = f"{proxy.base_url}/images/generations"
            first = pool.submit(requests.post, url, json={"model": "gpt-image-2", "prompt": "a"}, timeout=30)
            queue = wait_until(lambda: (found := healthy(proxy))["waiting"] == 1 and found, timeout=5)
            assert queue == {
                "running": 0,
                "waiting": 1,
                "at_once": 4,
                "rate": None,
                "shared": False,
            }  # its slot given back
            second = pool.submit(requests.post, url, json={"model": "gpt-image-2", "prompt": "b"}, timeout=30)
            answers = [first.result(), second.result()]
            healthy(proxy)
        client.close()
    assert [answer.status_code for answer in answers] == [200, 200]
    assert len(arrivals) == 3
    assert all(later - arrivals[0] >= 0.55 for later in arrivals[1:])  # the other participant waited too


def test_forward_leaves_a_429_to_the_queue_with_when_the_spent_limit_resets(scripted_upstream):
    headers = {
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "1m2.5s",
        "x-ratelimit-remaining-tokens": "1000",
        "x-ratelimit-reset-tokens": "6m0s",
    }
    scripted_upstream.reply(
        Reply(status=429, body=RATE_LIMITED, headers=headers), Reply(body=images_answer())
    )
    client = OpenAIClient(base_url=scripted_upstream.base_url, api_key="sk-upstream-0123456789abcdef")
    with pytest.raises(RateLimitError) as caught:
        client.forward(GenerateRequest(prompt="a fox", model="gpt-image-2"))
    client.close()
    assert caught.value.retry_after == 62.5  # the spent limit's reset, not the tokens' (not spent)
    assert len(scripted_upstream.requests) == 1  # not retried: the proxy's queue paces it


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"x-ratelimit-reset-requests": "20ms"}, 0.02),
        ({"x-ratelimit-reset-images": "1h2m3.5s", "x-ratelimit-remaining-images": "0"}, 3723.5),
        ({"x-ratelimit-reset-requests": "0.5"}, 0.5),
        ({"x-ratelimit-reset-requests": "2s", "x-ratelimit-remaining-requests": "3"}, None),
        ({"x-ratelimit-reset-requests": "soon"}, None),
        ({"x-ratelimit-reset-requests": "-1s"}, None),
        ({"x-ratelimit-reset-requests": "1s2x"}, None),
        ({"x-ratelimit-reset-requests": "inf"}, None),
        ({}, None),
    ],
)
def test_when_a_spent_rate_limit_resets(headers, seconds):
    assert rate_limit_reset(headers) == seconds


@pytest.mark.parametrize("connections", [32, 10])
def test_the_upstream_connection_pool_follows_the_concurrency(connections: int, caplog) -> None:
    """32 calls at once over the upstream client keep 32 connections: none is dropped for a full pool
    (with requests' default of 10, urllib3 says "Connection pool is full" and opens one a call)."""
    api = FakeImagesAPI().start()
    try:
        url = api.serve_file("/slow", b"abc", trickle=0.1)  # 0.3 s an answer: 32 overlap
        client = upstream_backend(api.base_url, connections=connections)
        caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")
        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            bodies = list(pool.map(lambda _i: client.session.get(url, timeout=10).content, range(32)))
        assert bodies == [b"abc"] * 32
        full = [record for record in caplog.records if "Connection pool is full" in record.getMessage()]
        assert (full == []) is (connections == 32)
    finally:
        api.close()
