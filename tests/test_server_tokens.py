"""Participant tokens: stored as hashes, checked on every call, with budgets and rate limits."""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
import requests

import ipyimagegen.errors as errors
from ipyimagegen.api.client import OpenAIClient
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.server import Rate, RateLimiter, ServerThread, TokenStore, make_app
from ipyimagegen.server.tokens import Refusal


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return TokenStore.in_dir(tmp_path_factory.mktemp("server-state"))


@pytest.fixture(scope="module")
def server(store):
    with ServerThread(make_app(PreviewEngine(), tokens=store)) as running:
        yield running


def sdk_for(server: ServerThread, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=token, max_retries=0)


def small(sdk: openai.OpenAI, n: int = 1):
    return sdk.images.generate(model="dall-e-2", prompt="a fox", n=n, size="256x256")


# -- the store and the limiter -------------------------------------------------------------------


def test_tokens_are_stored_as_hashes(tmp_path):
    store = TokenStore.in_dir(tmp_path)
    token, info = store.create("alice", budget=5, rate="10/min")
    assert token.startswith("igt-") and len(token) > 40
    assert (info.name, info.budget, info.rate, info.admin) == ("alice", 5, Rate(10, 60.0), False)
    raw = store.path.read_bytes()
    assert token.encode() not in raw
    with sqlite3.connect(store.path) as db:
        assert token not in [value for row in db.execute("SELECT * FROM tokens") for value in row]
    assert store.authenticate(token) == info
    assert store.authenticate(token + "x") is None
    assert store.path.stat().st_mode & 0o077 == 0


def test_token_names_are_unique_until_revoked(tmp_path):
    store = TokenStore.in_dir(tmp_path)
    first, _ = store.create("bob")
    with pytest.raises(ValueError, match="already an active token"):
        store.create("bob")
    store.revoke("bob")
    assert not store.authenticate(first).active
    second, info = store.create("bob")
    assert store.authenticate(second).active
    assert [t.name for t in store.tokens(include_revoked=False)] == ["bob"]
    assert len(store.tokens()) == 2
    with pytest.raises(KeyError):
        store.revoke("nobody")


def test_budget_reservations_and_refunds(tmp_path):
    store = TokenStore.in_dir(tmp_path)
    _, info = store.create("carol", budget=3)
    store.reserve(info.id, 2)
    with pytest.raises(Refusal) as refused:  # 2 + 2 > 3: refused whole
        store.reserve(info.id, 2)
    assert refused.value.what == "images"
    store.record_failure(info.id, 2)  # the call failed: its images go back
    store.reserve(info.id, 3)
    usage = store.get("carol")
    assert (usage.requests, usage.images, usage.errors, usage.rejected, usage.images_left) == (2, 3, 1, 1, 0)


@pytest.mark.parametrize(
    ("text", "rate"), [("10/min", Rate(10, 60.0)), ("2/s", Rate(2, 1.0)), ("100 / hours", Rate(100, 3600.0))]
)
def test_rate_parsing(text, rate):
    assert Rate.parse(text) == rate


@pytest.mark.parametrize("text", ["10", "0/min", "ten/min", "5/fortnight"])
def test_bad_rates(text):
    with pytest.raises(ValueError, match="10/min"):
        Rate.parse(text)


def test_rate_limiter_token_bucket():
    now = [100.0]
    limiter = RateLimiter(clock=lambda: now[0])
    rate = Rate(2, 60.0)  # a burst of 2, then one every 30 s
    assert limiter.acquire("a", rate) == 0.0
    assert limiter.acquire("a", rate) == 0.0
    assert limiter.acquire("a", rate) == pytest.approx(30.0)
    assert limiter.acquire("b", rate) == 0.0  # buckets are per key
    now[0] += 15
    assert limiter.acquire("a", rate) == pytest.approx(15.0)
    now[0] += 15
    assert limiter.acquire("a", rate) == 0.0


# -- the server with tokens ------------------------------------------------------------------------


def test_valid_token_works_and_usage_is_counted(server, store):
    token, _ = store.create("dave", budget=10)
    assert len(small(sdk_for(server, token), n=2).data) == 2
    usage = store.get("dave")
    assert (usage.requests, usage.images, usage.errors) == (1, 2, 0)
    assert usage.last_used is not None


@pytest.mark.parametrize("api_key", ["", "igt-not-a-real-token"])
def test_missing_or_wrong_token_is_401(server, api_key):
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    answer = requests.post(
        server.base_url + "/images/generations", json={"prompt": "a fox"}, headers=headers, timeout=10
    )
    assert answer.status_code == 401
    error = answer.json()["error"]
    assert error["code"] == "invalid_api_key"
    if api_key:
        assert api_key not in answer.text


def test_sdk_sees_authentication_error(server, store):
    with pytest.raises(openai.AuthenticationError):
        small(sdk_for(server, "igt-wrong"))
    token, _ = store.create("erin")
    store.revoke("erin")
    with pytest.raises(openai.AuthenticationError, match="revoked"):
        small(sdk_for(server, token))


def test_models_need_a_token_and_health_does_not(server, store):
    assert requests.get(server.base_url + "/models", timeout=10).status_code == 401
    assert requests.get(server.url + "/health", timeout=10).json()["auth"] == "tokens"


def test_budget_spent_is_429_insufficient_quota(server, store):
    token, _ = store.create("frank", budget=3)
    sdk = sdk_for(server, token)
    small(sdk, n=2)
    with pytest.raises(openai.RateLimitError) as caught:
        small(sdk, n=2)
    assert caught.value.code == "insufficient_quota"
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert "2 of its 3 images" in caught.value.message
    assert len(small(sdk, n=1).data) == 1  # what is left can still be used


def test_failed_calls_do_not_spend_the_budget(server, store):
    token, _ = store.create("gina", budget=1)
    sdk = sdk_for(server, token)
    with pytest.raises(openai.BadRequestError):
        sdk.images.generate(model="dall-e-2", prompt="a fox", size="300x300")
    assert len(small(sdk).data) == 1
    assert store.get("gina").images == 1


def test_rate_limit_is_429_with_retry_after(server, store):
    token, _ = store.create("hank", rate="2/hour")
    sdk = sdk_for(server, token)
    small(sdk)
    small(sdk)
    with pytest.raises(openai.RateLimitError) as caught:
        small(sdk)
    assert caught.value.code == "rate_limit_exceeded"
    retry_after = int(caught.value.response.headers["retry-after"])
    assert 1 <= retry_after <= 1800
    assert store.get("hank").rejected == 1


def test_usage_endpoint(server, store):
    admin, _ = store.create("host", admin=True)
    participant, _ = store.create("ivy", budget=4)
    small(sdk_for(server, participant))
    own = requests.get(
        server.base_url + "/usage", headers={"Authorization": f"Bearer {participant}"}, timeout=10
    )
    assert (own.json()["name"], own.json()["images"], own.json()["images_left"]) == ("ivy", 1, 3)
    hosts = requests.get(server.base_url + "/usage", headers={"Authorization": f"Bearer {admin}"}, timeout=10)
    assert hosts.json()["name"] == "host" and "ivy" not in hosts.text  # an admin token sees its own too
    assert participant not in own.text + hosts.text and admin not in own.text + hosts.text


@pytest.mark.timeout(120)
def test_bounded_load_with_rate_limit(server, store):
    """200 calls from 8 threads: every answer is an image set or the intended 429."""
    token, _ = store.create("load", rate="50/day")
    local = threading.local()

    def call(_: int) -> tuple[int, dict]:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        answer = local.session.post(
            server.base_url + "/images/generations",
            json={"model": "dall-e-2", "prompt": "a fox", "size": "256x256", "response_format": "b64_json"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        return answer.status_code, answer.json()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(call, range(200)))
    statuses = [status for status, _ in results]
    assert set(statuses) <= {200, 429}
    assert statuses.count(200) == 50  # the bucket's size: refilling one call takes half an hour
    for status, body in results:
        if status == 200:
            assert len(body["data"]) == 1 and body["data"][0]["b64_json"]
        else:
            assert body["error"]["code"] == "rate_limit_exceeded"
    usage = store.get("load")
    assert (usage.requests, usage.images, usage.rejected, usage.errors) == (50, 50, 150, 0)


def test_own_client_sees_typed_errors(server, store):
    wrong = OpenAIClient(base_url=server.base_url, api_key="igt-wrong", max_retries=0)
    with wrong, pytest.raises(errors.AuthenticationError):
        wrong.generate(model="dall-e-2", prompt="a fox", size="256x256")
    token, _ = store.create("jack", budget=1)
    with OpenAIClient(base_url=server.base_url, api_key=token, max_retries=2) as own:
        assert own.generate(model="dall-e-2", prompt="a fox", size="256x256")[0].size == (256, 256)
        with pytest.raises(errors.RateLimitError) as caught:
            own.generate(model="dall-e-2", prompt="a fox", size="256x256")
    assert caught.value.code == "insufficient_quota"
    assert store.get("jack").rejected == 1  # x-should-retry: false, so the client did not try again
