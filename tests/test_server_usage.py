"""``GET /v1/usage``: what the caller's own token has used and has left, on SQLite and PostgreSQL; and the
budget refusals, whose error JSON names the budget that is spent. Hostile-corpus style: exact status,
exact error JSON, and the server healthy after."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.errors import RateLimitError
from ipyimagegen.server import ServerThread, TokenStore, make_app
from ipyimagegen.server.replies import error_reply_for
from ipyimagegen.server.tokens import open_store
from postgres_helpers import Cluster, postgres_cluster

FOX = {"model": "dall-e-2", "prompt": "a fox", "size": "256x256", "response_format": "b64_json"}
"""$0.016 an image in the catalogue."""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with postgres_cluster() as running:
        yield running


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[TokenStore]:
    if request.param == "sqlite":
        opened = TokenStore.in_dir(tmp_path)
    else:
        opened = open_store(request.getfixturevalue("cluster").database())
    yield opened
    opened.close()


@pytest.fixture
def server(store: TokenStore) -> Iterator[ServerThread]:
    with ServerThread(make_app(PreviewEngine(), tokens=store)) as running:
        yield running


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make(server: ServerThread, token: str, n: int = 1) -> requests.Response:
    return requests.post(
        f"{server.base_url}/images/generations", json={**FOX, "n": n}, headers=bearer(token), timeout=30
    )


def usage(server: ServerThread, headers: dict[str, str]) -> requests.Response:
    return requests.get(f"{server.base_url}/usage", headers=headers, timeout=10)


def healthy(server: ServerThread) -> bool:
    return requests.get(f"{server.url}/health", timeout=10).json()["status"] == "ok"


def test_usage_is_the_callers_own_token_and_what_it_has_left(server: ServerThread, store: TokenStore) -> None:
    expires = time.time() + 3600
    ivy, _ = store.create("ivy", budget=5, budget_usd=1.0, expires=expires)
    zoe, _ = store.create("zoe", budget=9)
    host, _ = store.create("host", admin=True)
    assert make(server, ivy, n=2).status_code == 200
    assert make(server, zoe).status_code == 200
    own = usage(server, bearer(ivy))
    assert own.status_code == 200 and own.headers["cache-control"] == "no-store"
    assert own.json() == {
        "object": "usage",
        "name": "ivy",
        "images": 2,
        "budget": 5,
        "images_left": 3,
        "spent_usd": 0.032,
        "budget_usd": 1.0,
        "usd_left": 0.968,
        "expires": int(expires),
    }
    hosts = usage(server, bearer(host))  # an admin token reads its own record, no other
    assert hosts.json() == {
        "object": "usage", "name": "host", "images": 0, "budget": None, "images_left": None,
        "spent_usd": 0.0, "budget_usd": None, "usd_left": None, "expires": None,
    }  # fmt: skip
    for answer in (own, hosts):
        assert "zoe" not in answer.text and zoe not in answer.text
        assert ivy not in answer.text and host not in answer.text  # never a token itself
    assert healthy(server)


def test_what_is_left_counts_the_whole_workshops_budget(server: ServerThread, store: TokenStore) -> None:
    ivy, _ = store.create("ivy", budget=10, budget_usd=1.0)
    store.set_workshop_budget(images=3, usd=0.04)
    assert make(server, ivy).status_code == 200
    answer = usage(server, bearer(ivy)).json()
    assert (answer["images"], answer["budget"], answer["images_left"]) == (1, 10, 2)  # the room's 3 bind
    assert (answer["budget_usd"], answer["usd_left"]) == (1.0, 0.024)
    store.set_workshop_budget(images=None, usd=None)
    answer = usage(server, bearer(ivy)).json()
    assert (answer["images_left"], answer["usd_left"]) == (9, 0.984)


def test_the_model_list_names_the_usage_page_only_where_there_are_tokens(
    server: ServerThread, store: TokenStore
) -> None:
    ivy, _ = store.create("ivy")
    listed = requests.get(f"{server.base_url}/models", headers=bearer(ivy), timeout=10)
    assert listed.headers["x-ipyimagegen-usage"] == "usage"
    with ServerThread(make_app(PreviewEngine())) as open_server:
        listed = requests.get(f"{open_server.base_url}/models", timeout=10)
        assert "x-ipyimagegen-usage" not in listed.headers
        answer = usage(open_server, {})
        assert answer.status_code == 404
        assert answer.json() == {
            "error": {
                "message": "This server has no participant tokens, so it keeps no usage record.",
                "type": "invalid_request_error",
                "param": None,
                "code": "not_found",
            }
        }
        assert healthy(open_server)


NO_KEY = (
    "You didn't provide an API key. Send your participant token as 'Authorization: Bearer TOKEN' "
    "(with the OpenAI client: api_key=TOKEN); the workshop host gives out tokens."
)
REFUSED: dict[str, tuple[dict[str, str], str]] = {
    "no token": ({}, NO_KEY),
    "a Basic credential": ({"Authorization": "Basic aXZ5OnNlY3JldA=="}, NO_KEY),
    "an empty bearer": ({"Authorization": "Bearer "}, NO_KEY),
    "a token never made": (
        bearer("igt-made-up"),
        "Incorrect API key provided: use the participant token the workshop host gave you.",
    ),
    "a revoked token": (
        {"Authorization": "REVOKED"},
        "This participant token was revoked: ask the workshop host for a new one.",
    ),
    "an expired token": (
        {"Authorization": "EXPIRED"},
        "This participant token expired at {expired}: ask the workshop host for a new one.",
    ),
}


@pytest.mark.parametrize("case", REFUSED.values(), ids=REFUSED.keys())
def test_usage_without_a_valid_token_is_401_in_the_apis_error_json(
    server: ServerThread, store: TokenStore, case: tuple[dict[str, str], str]
) -> None:
    headers, message = case
    revoked, _ = store.create("gone")
    store.revoke("gone")
    past = time.time() - 60
    expired, _ = store.create("late", expires=past)
    stand_ins = {"REVOKED": bearer(revoked), "EXPIRED": bearer(expired)}
    headers = stand_ins.get(headers.get("Authorization", ""), headers)
    answer = usage(server, headers)
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/json"
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(past))
    assert answer.json() == {
        "error": {
            "message": message.format(expired=when),
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
    assert healthy(server)


def test_usage_takes_only_get(server: ServerThread, store: TokenStore) -> None:
    ivy, _ = store.create("ivy")
    answer = requests.post(f"{server.base_url}/usage", headers=bearer(ivy), timeout=10)
    assert answer.status_code == 405
    assert answer.json()["error"]["code"] == "method_not_allowed"
    assert healthy(server)


# -- a spent budget's refusal names the budget -----------------------------------------------------


def refusal(message: str, budget: dict[str, Any]) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": "insufficient_quota",
            "param": None,
            "code": "insufficient_quota",
            "budget": budget,
        }
    }


def test_a_refusal_for_the_tokens_images_names_that_budget(server: ServerThread, store: TokenStore) -> None:
    ivy, _ = store.create("ivy", budget=5)
    assert make(server, ivy, n=4).status_code == 200
    answer = make(server, ivy, n=2)
    assert answer.status_code == 429 and answer.headers["x-should-retry"] == "false"
    assert answer.json() == refusal(
        "Token 'ivy' has used 4 of its 5 images (this request asks for 2): ask the workshop host for a "
        "bigger budget.",
        {"kind": "images", "used": 4, "limit": 5, "asked": 2},
    )
    assert healthy(server) and make(server, ivy).status_code == 200  # what is left can still be used


def test_a_refusal_for_the_tokens_dollars_names_that_budget(server: ServerThread, store: TokenStore) -> None:
    ivy, _ = store.create("ivy", budget_usd=0.05)
    assert make(server, ivy, n=3).status_code == 200
    answer = make(server, ivy)
    assert answer.status_code == 429
    assert answer.json() == refusal(
        "Token 'ivy' has spent about $0.05 of its $0.05, and this request could cost up to $0.02 (choose a "
        "quality and size, or fewer images, to ask for less): ask the workshop host for a bigger budget.",
        {"kind": "usd", "used": 0.048, "limit": 0.05, "asked": 0.016},
    )
    assert healthy(server)


def test_a_refusal_for_the_workshops_budget_names_that_budget(
    server: ServerThread, store: TokenStore
) -> None:
    ivy, _ = store.create("ivy")
    store.set_workshop_budget(images=2)
    assert make(server, ivy, n=2).status_code == 200
    answer = make(server, ivy)
    assert answer.status_code == 429
    assert answer.json() == refusal(
        "The workshop has used 2 of its 2 images: ask the workshop host for a bigger budget.",
        {"kind": "workshop_images", "used": 2, "limit": 2, "asked": 1},
    )
    store.set_workshop_budget(images=None, usd=0.04)
    answer = make(server, ivy)
    assert answer.json() == refusal(
        "The workshop has spent about $0.03 of its $0.04: ask the workshop host for a bigger budget.",
        {"kind": "workshop_usd", "used": 0.032, "limit": 0.04, "asked": 0.016},
    )
    assert healthy(server)


def test_an_upstream_quota_refusal_says_it_is_the_upstreams() -> None:
    upstream = RateLimitError("You exceeded your current quota.", status_code=429, code="insufficient_quota")
    reply = error_reply_for(upstream)
    assert (reply.status_code, reply.headers) == (429, {"x-should-retry": "false"})
    assert reply.body() == refusal(
        "The upstream account's quota is used up: tell the workshop host.", {"kind": "upstream"}
    )
