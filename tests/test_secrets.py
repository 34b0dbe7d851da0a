"""No key in any trace: errors, bodies, logs, reprs and a participant's answers in upstream mode."""

from __future__ import annotations

import logging

import openai
import pytest
import requests

from fake_api_server import FakeImagesAPI, Reply
from ipyimagegen.api import BadRequestError, describe_error
from ipyimagegen.api.client import OpenAIClient
from ipyimagegen.api.config import Secret
from ipyimagegen.server import ServerThread, make_app
from ipyimagegen.server.upstream import upstream_backend, upstream_key

KEY = "sk-proj-never-shown-8a1f"


def _echo(status: int = 400) -> Reply:
    body = {
        "error": {
            "message": f"Bad key {KEY}",
            "type": f"invalid_request_error {KEY}",
            "param": KEY,
            "code": f"code-{KEY}",
            "details": [{"echo": KEY}],
        }
    }
    return Reply(status=status, body=body, headers={"x-request-id": f"req-{KEY}"})


def test_every_field_of_an_error_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    api = FakeImagesAPI().start()
    try:
        api.reply(_echo())
        client = OpenAIClient(base_url=api.base_url, api_key=KEY, max_retries=0)
        with caplog.at_level(logging.DEBUG, logger="ipyimagegen"), pytest.raises(BadRequestError) as caught:
            client.generate(prompt="a cat", model="dall-e-2")
    finally:
        api.close()
    error = caught.value
    shown = [
        str(error),
        describe_error(error),
        repr(error.body),
        error.param,
        error.code,
        error.type,
        error.request_id,
    ]
    assert all(KEY not in text for text in shown), shown
    assert "***" in str(error) and error.param == "***"
    assert KEY not in caplog.text and KEY not in repr(client)
    assert api.requests[0].headers["authorization"] == f"Bearer {KEY}"  # it was sent, as it must be


def test_the_key_is_a_secret_everywhere_the_client_keeps_it() -> None:
    client = OpenAIClient(base_url="http://127.0.0.1:9/v1", api_key=KEY)
    assert isinstance(client._settings.api_key, Secret)
    assert KEY not in repr(client._settings) and KEY not in str(client._settings.api_key)
    assert KEY not in repr(client.transport.auth) and KEY not in str(
        vars(client.transport).get("default_headers")
    )


def test_a_refused_connection_carries_no_headers_or_key() -> None:
    client = OpenAIClient(base_url="http://127.0.0.1:9/v1", api_key=KEY, max_retries=0, timeout=2)
    with pytest.raises(Exception) as caught:
        client.generate(prompt="a cat", model="dall-e-2")
    chain, seen = [caught.value], set()
    while chain:
        current = chain.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        assert KEY not in str(current) and KEY not in repr(current.args)
        chain += [e for e in (current.__cause__, current.__context__) if e is not None]


def test_upstream_mode_never_repeats_the_hosts_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    upstream = FakeImagesAPI().start()
    try:
        upstream.reply(_echo(400), _echo(401))
        app = make_app(upstream_backend(upstream.base_url), secrets=[upstream_key()])
        with ServerThread(app) as server:
            sdk = openai.OpenAI(base_url=server.base_url, api_key="participant", max_retries=0)
            with pytest.raises(openai.BadRequestError) as refused:
                sdk.images.generate(prompt="a cat", model="dall-e-2")
            answer = requests.post(
                f"{server.base_url}/images/generations",
                json={"prompt": "a cat", "model": "dall-e-2"},
                timeout=10,
            )
    finally:
        upstream.close()
    assert KEY not in str(refused.value.body) and refused.value.body["param"] == "***"  # type: ignore[index]
    assert answer.status_code == 502 and KEY not in answer.text  # the upstream refused the host's key
