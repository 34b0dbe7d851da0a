"""Budgets people think in: images and estimated dollars, per token and for the whole workshop,
exact under concurrency; top-ups; what the participant is told."""

from __future__ import annotations

import concurrent.futures
import threading

import openai
import pytest

from ipyimagegen.api.types import GenerateRequest
from ipyimagegen.cli import main
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.server import ServerThread, TokenStore, make_app
from ipyimagegen.server.config import ServerConfig
from ipyimagegen.server.costs import cost_bound


def _sdk(server: ServerThread, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=token, max_retries=0)


def _small(sdk: openai.OpenAI, n: int = 1, **params):
    return sdk.images.generate(model="dall-e-2", prompt="a fox", n=n, size="256x256", **params)


def test_the_cost_bound_is_the_dearest_call_the_request_allows() -> None:
    low = cost_bound(GenerateRequest(prompt="a fox", model="gpt-image-2", size="1024x1024", quality="low"))
    chosen = cost_bound(
        GenerateRequest(prompt="a fox", model="gpt-image-2", size="1024x1024", quality="auto")
    )
    anything = cost_bound(GenerateRequest(prompt="a fox", model="gpt-image-2", size="auto", quality="auto"))
    assert 0 < low < chosen < anything
    assert cost_bound(
        GenerateRequest(prompt="a fox", model="dall-e-2", size="256x256", n=3)
    ) == pytest.approx(0.048)


def test_a_dollar_budget_is_reserved_at_the_bound_and_settled_at_the_usage(tmp_path) -> None:
    store = TokenStore.in_dir(tmp_path)
    token, info = store.create("ada", budget_usd=0.05)  # dall-e-2 256x256: $0.016 an image
    with ServerThread(make_app(PreviewEngine(), tokens=store)) as server:
        sdk = _sdk(server, token)
        _small(sdk, n=3)  # $0.048
        assert store.get("ada").spent_usd == pytest.approx(0.048)
        with pytest.raises(openai.RateLimitError) as refused:
            _small(sdk)
        message = refused.value.body["message"]
        assert "$0.05" in message and "up to $0.02" in message and "bigger budget" in message
        assert refused.value.code == "insufficient_quota"
        store.top_up("ada", usd=0.02)
        _small(sdk)
    final = store.get("ada")
    assert final.spent_usd == pytest.approx(0.064) and final.budget_usd == pytest.approx(0.07)
    assert final.to_dict()["usd_left"] == pytest.approx(0.006)


def test_gpt_image_calls_settle_to_their_reported_usage(tmp_path) -> None:
    store = TokenStore.in_dir(tmp_path)
    token, _ = store.create("bo", budget_usd=5.0)
    with ServerThread(make_app(PreviewEngine(), tokens=store)) as server:
        answer = _sdk(server, token).images.generate(model="gpt-image-2", prompt="a fox", size="1024x1024")
    spent = store.get("bo").spent_usd
    bound = cost_bound(GenerateRequest(prompt="a fox", model="gpt-image-2", size="1024x1024"))
    assert answer.usage is not None and 0 < spent < bound  # the usage's cost, not the bound kept
    assert store.workshop().spent_usd == pytest.approx(spent)


def test_a_failed_call_gives_images_and_dollars_back(tmp_path) -> None:
    class Broken(PreviewEngine):
        def _generate(self, request, hooks):
            raise RuntimeError("the engine broke")

    store = TokenStore.in_dir(tmp_path)
    token, _ = store.create("cy", budget=2, budget_usd=1.0)
    with ServerThread(make_app(Broken(), tokens=store)) as server, pytest.raises(openai.InternalServerError):
        _small(_sdk(server, token), n=2)
    info, room = store.get("cy"), store.workshop()
    assert (info.images, info.spent_usd, info.errors) == (0, 0.0, 1)
    assert (room.images, room.spent_usd) == (0, 0.0)


def test_the_workshop_budget_holds_exactly_under_forty_concurrent_calls(tmp_path) -> None:
    store = TokenStore.in_dir(tmp_path)
    store.set_workshop_budget(images=5)
    tokens = [store.create(f"p{i}")[0] for i in range(8)]
    start = threading.Barrier(40)
    with ServerThread(make_app(PreviewEngine(), ServerConfig(max_concurrency=8), tokens=store)) as server:

        def call(index: int) -> str:
            sdk = _sdk(server, tokens[index % len(tokens)])
            start.wait(10)
            try:
                _small(sdk)
            except openai.RateLimitError as refused:
                assert "The workshop has used 5 of its 5 images" in refused.body["message"]
                return "refused"
            return "made"

        with concurrent.futures.ThreadPoolExecutor(40) as pool:
            outcomes = list(pool.map(call, range(40)))
    assert outcomes.count("made") == 5 and outcomes.count("refused") == 35
    assert store.workshop().images == 5
    assert sum(info.images for info in store.tokens()) == 5


def test_the_workshop_refusal_says_it_is_the_rooms_budget(tmp_path) -> None:
    store = TokenStore.in_dir(tmp_path)
    store.set_workshop_budget(usd=0.02)
    token, _ = store.create("dee", budget=10)
    with ServerThread(make_app(PreviewEngine(), tokens=store)) as server:
        sdk = _sdk(server, token)
        _small(sdk)
        with pytest.raises(openai.RateLimitError, match=r"The workshop has spent about \$0.02 of its \$0.02"):
            _small(sdk)
    info = store.get("dee")
    assert (info.images, info.rejected) == (1, 1)  # the token's count was rolled back with the room's


def test_the_commands_set_the_rooms_budget_top_up_and_show_dollars(capsys, tmp_path) -> None:
    state = str(tmp_path / "state")
    assert main(["tokens", "workshop", "--budget", "300", "--budget-usd", "40", "--state-dir", state]) == 0
    assert "0 of 300 images" in capsys.readouterr().out
    assert main(["tokens", "workshop", "--budget-usd", "none", "--state-dir", state]) == 0
    out = capsys.readouterr().out
    assert "0 of 300 images" in out and "no dollar limit" in out
    assert (
        main(
            [
                "tokens",
                "create",
                "--name",
                "eve",
                "--budget-usd",
                "$2.50",
                "--budget",
                "10",
                "--state-dir",
                state,
            ]
        )
        == 0
    )
    assert "budget $2.50" in capsys.readouterr().out
    assert main(["tokens", "topup", "eve", "--images", "5", "--usd", "1", "--state-dir", state]) == 0
    assert "budget 15 images, budget $3.50" in capsys.readouterr().out
    assert main(["tokens", "usage", "--state-dir", state]) == 0
    out = capsys.readouterr().out
    assert "SPENT $" in out and "3.50" in out and "The workshop has used 0 of 300 images" in out
    assert main(["tokens", "topup", "nobody", "--images", "1", "--state-dir", state]) == 2
    with pytest.raises(SystemExit):
        main(["tokens", "create", "--name", "x", "--budget-usd", "lots", "--state-dir", state])
