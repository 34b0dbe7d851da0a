"""The studio on a workshop server, in pure Python against a real ``ServerThread``: the line that says
what the token has left, ``n`` lowered to it before sending, and nothing sent once it is spent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from edit_helpers import picture
from ipyimagegen.api.client import OpenAIClient
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.server import ServerThread, TokenStore, make_app
from ipyimagegen.widgets.studio import Studio
from waiting import wait_until
from widget_helpers import WAIT_S

NEVER = ("billing", "another key")


@pytest.fixture
def store(tmp_path) -> TokenStore:
    return TokenStore.in_dir(tmp_path)


@pytest.fixture
def server(store: TokenStore) -> Iterator[ServerThread]:
    with ServerThread(make_app(PreviewEngine(), tokens=store)) as running:
        yield running


def open_studio(server: ServerThread, token: str) -> Studio:
    return Studio(OpenAIClient(base_url=server.base_url, api_key=token, max_retries=0), gallery=False)


def host_of(server: ServerThread) -> str:
    return server.base_url.split("//")[1].split("/")[0]


def generate(s: Studio, n: int, **params: Any) -> None:
    tab = s.generate_tab
    tab.prompt_box.textarea.value = "a copper kettle"
    tab.params.model, tab.params.size, tab.params.n = "dall-e-2", "256x256", n
    for name, value in params.items():
        setattr(tab.params, name, value)
    tab.controls.run_button.click()
    assert s.runner.wait(WAIT_S)


def line(s: Studio, text: str) -> str:
    """The budget line, once it says ``text``."""
    return wait_until(
        lambda: text in s.budget_line.value and s.budget_line.value, message=f"the line {text!r}"
    )


def test_the_line_shows_what_is_left_and_n_is_lowered_to_it(server: ServerThread, store: TokenStore) -> None:
    token, _ = store.create("ivy", budget=5, budget_usd=1.0)
    s = open_studio(server, token)
    host = host_of(server)
    line(s, f"5 images and $1.00 left on {host}")  # read as the studio opens
    assert s.budget_line in s.children and s.budget_line.layout.display != "none"
    generate(s, n=4)
    line(s, f"1 image and $0.94 left on {host}")  # read again after the run
    generate(s, n=4)
    status = s.generate_tab.status.value
    assert status.startswith('<span class="ipyimagegen-warning">Asked 4, 1 left: making 1. 1 image in ')
    assert len(s.grid.tiles) == 5 and store.get("ivy").images == 5
    spent = line(s, f"Your workshop budget on {host} is spent: 5 of 5 images.")
    assert "ipyimagegen-warning" in spent
    sent = store.get("ivy").requests
    generate(s, n=1)  # nothing is left: nothing is sent, and the run button's status says why
    assert store.get("ivy").requests == sent and store.get("ivy").rejected == 0
    status = s.generate_tab.status.value
    assert status == (
        f'<span class="ipyimagegen-error">Your workshop budget on {host} is spent: 5 of 5 images. '
        "Ask the workshop host for a bigger budget.</span>"
    )
    assert len(s.grid.tiles) == 5
    s.close()


def test_n_is_lowered_to_the_dollars_left(server: ServerThread, store: TokenStore) -> None:
    token, _ = store.create("ivy", budget_usd=0.05)  # dall-e-2 256x256: $0.016 an image
    s = open_studio(server, token)
    line(s, f"$0.05 left on {host_of(server)}")
    generate(s, n=4)
    assert "Asked 4, $0.05 left: making 3. 3 images in " in s.generate_tab.status.value
    assert store.get("ivy").images == 3
    line(s, f"Your workshop budget on {host_of(server)} is spent: about $0.05 of $0.05.")
    s.close()


def test_variations_are_lowered_to_what_is_left_too(server: ServerThread, store: TokenStore) -> None:
    token, _ = store.create("ivy", budget=2)
    s = open_studio(server, token)
    line(s, "2 images left")
    tab = s.variations_tab
    assert s.edit_tab.budget is s.budget_line and tab.budget is s.budget_line
    tab.use_image(picture(64, 64))
    tab.params.model, tab.params.size, tab.params.n = "dall-e-2", "256x256", 3
    tab.controls.run_button.click()
    assert s.runner.wait(WAIT_S)
    assert "Asked 3, 2 left: making 2." in tab.status.value
    assert store.get("ivy").images == 2 and len(s.grid.tiles) == 2
    s.close()


def test_a_budget_spent_elsewhere_is_refused_naming_the_budget_and_the_host(
    server: ServerThread, store: TokenStore
) -> None:
    token, _ = store.create("ivy", budget=5)
    s = open_studio(server, token)
    host = host_of(server)
    line(s, f"5 images left on {host}")
    elsewhere = OpenAIClient(base_url=server.base_url, api_key=token, max_retries=0)
    elsewhere.generate(model="dall-e-2", prompt="a fox", size="256x256", n=4)  # another notebook, same token
    generate(s, n=3)  # the studio still thinks 5 are left: the server refuses
    status = s.generate_tab.status.value
    assert status.startswith(
        f'<span class="ipyimagegen-error">Your workshop budget on {host} has 1 of 5 images left, and this call '
        "asks for 3. (HTTP 429, code=insufficient_quota"
    )
    assert status.endswith("Ask for 1 or fewer, or ask the workshop host for a bigger budget.</span>")
    assert not any(word in status for word in NEVER) and token not in status
    line(s, f"1 image left on {host}")  # what is left is read again after the refusal
    elsewhere.close()
    s.close()


def test_the_line_is_hidden_where_no_budget_is_kept(server: ServerThread, store: TokenStore) -> None:
    offline = Studio(PreviewEngine(), gallery=False)
    offline.budget_line.refresh().join(WAIT_S)
    assert offline.budget_line.layout.display == "none" and offline.budget_line.value == ""
    generate(offline, n=4)
    assert len(offline.grid.tiles) == 4 and "Asked" not in offline.generate_tab.status.value
    offline.close()
    token, _ = store.create("unlimited")
    s = open_studio(server, token)
    s.budget_line.refresh().join(WAIT_S)
    assert s.budget_line.layout.display == "none" and s.budget_line.budget is not None
    generate(s, n=4)
    assert len(s.grid.tiles) == 4
    s.close()
