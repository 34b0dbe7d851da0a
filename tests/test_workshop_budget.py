"""What a workshop token has left, as the client reads it (``budget_left``), a request fitted to it
(``fit_to_budget``), and a budget refusal's message: it names the budget and the host, never billing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from ipyimagegen.api.backend import WorkshopBudget
from ipyimagegen.api.budget import TokenBudget, cost_bound, fit_to_budget
from ipyimagegen.api.client import AzureOpenAIClient, OpenAIClient
from ipyimagegen.api.types import GenerateRequest
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.errors import (
    AuthenticationError,
    RateLimitError,
    WorkshopBudgetError,
    describe_error,
    error_from_response,
)
from ipyimagegen.server import ServerThread, TokenStore, make_app

FOX = {"model": "dall-e-2", "prompt": "a fox", "size": "256x256"}
"""$0.016 an image in the catalogue."""
NEVER = ("billing", "another key")


@pytest.fixture
def store(tmp_path) -> TokenStore:
    return TokenStore.in_dir(tmp_path)


@pytest.fixture
def server(store: TokenStore) -> Iterator[ServerThread]:
    with ServerThread(make_app(PreviewEngine(), tokens=store)) as running:
        yield running


def host_of(server: ServerThread) -> str:
    return server.base_url.split("//")[1].split("/")[0]


# -- reading the budget ----------------------------------------------------------------------------


def test_the_client_reads_what_its_own_token_has_left(server: ServerThread, store: TokenStore) -> None:
    expires = time.time() + 3600
    token, _ = store.create("ivy", budget=5, budget_usd=1.0, expires=expires)
    client = OpenAIClient(base_url=server.base_url, api_key=token, max_retries=0)
    assert isinstance(client, WorkshopBudget)
    assert client.budget_left() == TokenBudget(
        host=host_of(server), images=0, budget=5, images_left=5, spent_usd=0.0, budget_usd=1.0,
        usd_left=1.0, expires=float(int(expires)),
    )  # fmt: skip
    client.generate(n=2, **FOX)
    after = client.budget_left()
    assert after is not None and (after.images, after.images_left) == (2, 3)
    assert after.usd_left == pytest.approx(0.968)
    client.close()


def test_no_budget_is_asked_where_none_is_kept(server: ServerThread) -> None:
    with ServerThread(make_app(PreviewEngine())) as open_server:  # answers 404 at /usage: never asked
        client = OpenAIClient(base_url=open_server.base_url, api_key="unused", max_retries=0)
        assert client.budget_left() is None
        client.close()
    azure = AzureOpenAIClient(
        endpoint="https://example.openai.azure.com", deployment="gpt-image-1", api_key="k"
    )
    for backend in (PreviewEngine(), azure):
        assert isinstance(backend, WorkshopBudget) and backend.budget_left() is None
    azure.close()


def test_a_revoked_token_reading_its_budget_is_told_so(server: ServerThread, store: TokenStore) -> None:
    token, _ = store.create("ivy", budget=5)
    client = OpenAIClient(base_url=server.base_url, api_key=token, max_retries=0)
    assert client.models()  # the model list named the usage page
    store.revoke("ivy")
    with pytest.raises(AuthenticationError, match="revoked"):
        client.budget_left()
    client.close()


@pytest.mark.parametrize(
    "answer",
    [[], {"object": "list", "data": []}, {"object": "usage", "images": "2", "spent_usd": 0}, "usage"],
    ids=["a list", "the old list", "a count as text", "a string"],
)
def test_an_answer_that_is_no_usage_record_is_no_budget(answer: Any) -> None:
    assert TokenBudget.from_usage(answer, "h") is None


# -- the line the studio shows ---------------------------------------------------------------------


def budget(**changes: Any) -> TokenBudget:
    fields = dict(
        host="h:8000", images=3, budget=10, images_left=7, spent_usd=0.58, budget_usd=1.0, usd_left=0.42
    )
    return TokenBudget(**{**fields, **changes})


def test_the_line_says_what_is_left_and_where() -> None:
    assert budget().line() == "7 images and $0.42 left on h:8000"
    assert budget(usd_left=None, budget_usd=None, images_left=1).line() == "1 image left on h:8000"
    assert budget(images_left=None, budget=None).line() == "$0.42 left on h:8000"
    soon = time.time() + 600
    same_day = time.localtime(soon)[:3] == time.localtime()[:3]  # ten minutes from now may be tomorrow
    shown = time.strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M", time.localtime(soon))
    assert budget(expires=soon).line().endswith(f"(your token expires at {shown})")
    assert (
        budget(images=10, images_left=0).line() == "Your workshop budget on h:8000 is spent: 10 of 10 images."
    )
    assert not budget(images_left=None, budget=None, usd_left=None, budget_usd=None).limited


# -- fitting a request to what is left -------------------------------------------------------------


def test_n_is_lowered_to_the_images_left_with_a_note() -> None:
    request = GenerateRequest(n=4, **FOX)
    fitted, note = fit_to_budget(request, budget(images=9, images_left=1))
    assert fitted.n == 1 and note == "Asked 4, 1 left: making 1. "
    assert fitted == replace(request, n=1)
    assert fit_to_budget(request, budget()) == (request, "")  # it fits: as it was
    assert fit_to_budget(request, None) == (request, "")  # nothing known: the server decides


def test_n_is_lowered_to_the_dollars_left_at_the_servers_bound() -> None:
    request = GenerateRequest(n=4, **FOX)
    fitted, note = fit_to_budget(request, budget(usd_left=0.05, images_left=None, budget=None))
    assert fitted.n == 3 and note == "Asked 4, $0.05 left: making 3. "
    assert cost_bound(fitted) <= 0.05 < cost_bound(replace(request, n=4))


SPENT = {
    "the token's images": (
        dict(images=10, images_left=0),
        "Your workshop budget on h:8000 is spent: 10 of 10 images.",
    ),
    "the workshop's images": (dict(images=3, images_left=0), "The workshop's budget on h:8000 is spent."),
    "the token's dollars": (
        dict(spent_usd=0.998, usd_left=0.002),
        "Your workshop budget on h:8000 is spent: about $1.00 of $1.00.",
    ),
    "less than one image's dollars": (
        dict(spent_usd=0.99, usd_left=0.01),
        "Your workshop budget on h:8000 has about $0.01 of $1.00 left, and this call could cost up to $0.02.",
    ),
}


@pytest.mark.parametrize("case", SPENT.values(), ids=SPENT.keys())
def test_nothing_is_sent_when_nothing_is_left(case: tuple[dict[str, Any], str]) -> None:
    changes, message = case
    with pytest.raises(WorkshopBudgetError) as refused:
        fit_to_budget(GenerateRequest(n=2, **FOX), budget(**changes))
    assert refused.value.message == message
    assert not any(word in describe_error(refused.value) for word in NEVER)


# -- a refusal from the server ---------------------------------------------------------------------


def refusal(budget: Any) -> dict[str, Any]:
    return {"error": {"message": "(the server's words)", "type": "insufficient_quota", "param": None,
                      "code": "insufficient_quota", "budget": budget}}  # fmt: skip


REFUSALS = {
    "images spent": (
        {"kind": "images", "used": 5, "limit": 5, "asked": 1},
        "Your workshop budget on h:8000 is spent: 5 of 5 images. (HTTP 429, code=insufficient_quota) "
        "Ask the workshop host for a bigger budget.",
    ),
    "more images than are left": (
        {"kind": "images", "used": 4, "limit": 5, "asked": 3},
        "Your workshop budget on h:8000 has 1 of 5 images left, and this call asks for 3. "
        "(HTTP 429, code=insufficient_quota) Ask for 1 or fewer, or ask the workshop host for a bigger budget.",
    ),
    "dollars": (
        {"kind": "usd", "used": 0.048, "limit": 0.05, "asked": 0.016},
        "Your workshop budget on h:8000 is spent: about $0.05 of $0.05. (HTTP 429, code=insufficient_quota) "
        "Ask the workshop host for a bigger budget.",
    ),
    "the workshop's images": (
        {"kind": "workshop_images", "used": 500, "limit": 500, "asked": 2},
        "The workshop's budget on h:8000 is spent: 500 of 500 images. (HTTP 429, code=insufficient_quota) "
        "Ask the workshop host for a bigger budget.",
    ),
    "the upstream's quota": (
        {"kind": "upstream"},
        "The workshop server on h:8000 cannot make images now: its upstream account's quota is used up. "
        "(HTTP 429, code=insufficient_quota) Tell the workshop host.",
    ),
    "numbers that are not numbers": (
        {"kind": "images", "used": "5", "limit": True, "asked": -1},
        "Your workshop budget on h:8000 is spent. (HTTP 429, code=insufficient_quota) "
        "Ask the workshop host for a bigger budget.",
    ),
}


@pytest.mark.parametrize("case", REFUSALS.values(), ids=REFUSALS.keys())
def test_a_workshop_refusal_names_the_budget_and_the_host(case: tuple[Any, str]) -> None:
    detail, told = case
    error = error_from_response(429, _json(refusal(detail)), host="h:8000")
    assert isinstance(error, WorkshopBudgetError) and isinstance(error, RateLimitError)
    assert describe_error(error) == told


def test_openais_own_quota_refusal_keeps_its_advice() -> None:
    body = {"error": {"message": "You exceeded your current quota.", "type": "insufficient_quota",
                      "param": None, "code": "insufficient_quota"}}  # fmt: skip
    for extra in ({}, {"budget": {"kind": "someone else's"}}, {"budget": "images"}):
        error = error_from_response(429, _json({"error": {**body["error"], **extra}}), host="api.openai.com")
        assert type(error) is RateLimitError
        assert describe_error(error).endswith("check billing, or use another key.")


def test_the_client_is_told_which_budget_is_spent_on_which_host(
    server: ServerThread, store: TokenStore
) -> None:
    token, _ = store.create("ivy", budget=3)
    client = OpenAIClient(base_url=server.base_url, api_key=token, max_retries=0)
    client.generate(n=2, **FOX)
    with pytest.raises(WorkshopBudgetError) as refused:
        client.generate(n=2, **FOX)
    assert (
        refused.value.message
        == f"Your workshop budget on {host_of(server)} has 1 of 3 images left, and this call asks for 2."
    )
    client.generate(n=1, **FOX)
    with pytest.raises(WorkshopBudgetError) as refused:
        client.generate(n=1, **FOX)
    told = describe_error(refused.value)
    assert told.startswith(f"Your workshop budget on {host_of(server)} is spent: 3 of 3 images. (HTTP 429")
    assert told.endswith("Ask the workshop host for a bigger budget.")
    assert not any(word in told for word in NEVER) and token not in told
    client.close()


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()
