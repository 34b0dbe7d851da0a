"""The studio end to end in pure Python: Generate drives a real BaseBackend subclass in a worker thread."""

from __future__ import annotations

import itertools
import logging
import threading
from typing import Any

import ipywidgets as widgets
import numpy as np
import pytest

from ipyimagegen.api.types import GeneratedImage, GenerateRequest, ImagesResponse
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.errors import (
    APIConnectionError,
    AuthenticationError,
    ContentPolicyError,
    RateLimitError,
)
from ipyimagegen.widgets.edit_tab import EditTab
from ipyimagegen.widgets.images_tab import FIRST_TILE
from ipyimagegen.widgets.studio import REVEAL, Studio, studio
from waiting import wait_until
from widget_helpers import WAIT_S, FakeBackend, iter_widgets, state_bytes


def _generate(s: Studio, prompt: str = "a lighthouse in a storm", **params: Any) -> None:
    """Set the prompt and parameters as a user would, click Generate and wait for the job."""
    tab = s.generate_tab
    tab.prompt_box.textarea.value = prompt
    for name, value in params.items():
        setattr(tab.params, name, value)
    tab.controls.run_button.click()
    assert s.runner.wait(WAIT_S)


def _status(s: Studio) -> str:
    return s.generate_tab.status.value


def test_parameters_flow_from_the_panel_to_the_backend() -> None:
    backend = FakeBackend(side=64)
    s = Studio(backend)
    _generate(s, "two red kites", model="dall-e-2", size="512x512", n=2)
    (request,) = backend.requests
    assert isinstance(request, GenerateRequest)
    assert (request.prompt, request.model, request.size, request.n) == (
        "two red kites",
        "dall-e-2",
        "512x512",
        2,
    )
    assert len(s.grid.tiles) == 2 and all(tile.is_filled for tile in s.grid.tiles)
    assert "2 images" in _status(s) and "ipyimagegen-ok" in _status(s)


def test_gpt_image_options_reach_the_backend() -> None:
    backend = FakeBackend(side=64)
    s = Studio(backend)
    _generate(
        s,
        model="gpt-image-2.5-flare",
        quality="low",
        background="transparent",
        output_format="webp",
        output_compression=50,
    )
    (request,) = backend.requests
    assert (request.quality, request.background, request.output_format, request.output_compression) == (
        "low",
        "transparent",
        "webp",
        50,
    )
    assert request.style is None


def test_dalle3_n4_is_served_by_four_concurrent_requests() -> None:
    barrier = threading.Barrier(4, timeout=WAIT_S)  # only passes when all four run at once
    backend = FakeBackend(side=64, barrier=barrier)
    s = Studio(backend)
    assert "4 requests in parallel" not in s.generate_tab.params.n_note.value
    s.generate_tab.params.model = "dall-e-3"
    s.generate_tab.params.n = 4
    assert "4 requests in parallel" in s.generate_tab.params.n_note.value
    _generate(s)
    assert not barrier.broken
    assert [r.n for r in backend.requests] == [1, 1, 1, 1]
    assert len(s.grid.images) == 4
    assert [tile.label_text().split(" · ")[-1] for tile in s.grid.tiles] == ["1/4", "2/4", "3/4", "4/4"]
    assert (s.runner.done, s.runner.total) == (4, 4)


def test_clicking_generate_returns_while_the_backend_is_blocked() -> None:
    gate = threading.Event()
    backend = FakeBackend(side=64, gate=gate)
    s = Studio(backend)
    tab = s.generate_tab
    tab.prompt_box.value = "a slow painting"
    tab.controls.run_button.click()  # returns: the call runs in the worker thread
    assert backend.calls_started.acquire(timeout=WAIT_S)
    assert s.runner.busy
    assert tab.controls.run_button.disabled and not tab.controls.cancel_button.disabled
    assert len(s.grid.tiles) == 1 and not s.grid.tiles[0].is_filled  # the placeholder is there already
    tab.controls.run_button.click()  # disabled in the browser; a programmatic click is refused
    assert len(backend.requests) == 1
    gate.set()
    assert s.runner.wait(WAIT_S)
    assert not tab.controls.run_button.disabled and tab.controls.cancel_button.disabled
    assert s.grid.tiles[0].is_filled


def test_progress_shows_images_done_of_total() -> None:
    release = threading.Event()
    calls = itertools.count()
    backend = FakeBackend(side=64, gate=lambda request: None if next(calls) == 0 else release)
    s = Studio(backend)
    tab = s.generate_tab
    tab.params.model = "dall-e-3"
    tab.params.n = 3
    tab.prompt_box.value = "three owls"
    tab.controls.run_button.click()
    wait_until(lambda: tab.controls.progress.value.startswith("1 of 3 · "))  # one call is through
    assert tab.controls.bar.value == 1 and tab.controls.bar.max == 3
    release.set()
    assert s.runner.wait(WAIT_S)
    assert (s.runner.done, s.runner.total) == (3, 3)
    assert tab.controls.progress.value == "" and "3 images in" in _status(s)  # idle: the status says it


ERRORS = [
    (
        ContentPolicyError(
            "Your request was rejected by the safety system.",
            status_code=400,
            code="content_policy_violation",
        ),
        "Rephrase the prompt",
    ),
    (AuthenticationError("Incorrect API key provided.", status_code=401), "OPENAI_API_KEY"),
    (RateLimitError("Rate limit reached.", status_code=429, retry_after=20), "try again in 20 s"),
    (APIConnectionError("Could not connect to http://127.0.0.1:9/v1."), "Check the network"),
    (RuntimeError("kaboom"), "RuntimeError: kaboom"),
]


@pytest.mark.parametrize(("error", "advice"), ERRORS, ids=[type(e).__name__ for e, _ in ERRORS])
def test_errors_show_what_to_do_and_the_studio_works_on(
    error: Exception, advice: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-test-secret-0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    backend = FakeBackend(side=64, fail=error)
    s = Studio(backend)
    with caplog.at_level(logging.ERROR):
        _generate(s, n=2)
    status = _status(s)
    assert advice in status and "ipyimagegen-error" in status
    assert s.grid.tiles == []  # the placeholders went away
    assert not s.generate_tab.controls.run_button.disabled
    if isinstance(error, RuntimeError):
        assert any(record.exc_info for record in caplog.records)  # logged with its traceback
    assert all(secret not in str(w.get_state()) for w in iter_widgets(s))
    backend.fail = None
    _generate(s, n=2)
    assert len(s.grid.images) == 2 and "ipyimagegen-ok" in _status(s)


def test_some_parallel_requests_failing_keeps_the_images_made() -> None:
    refused = ContentPolicyError("Rejected.", status_code=400, code="content_policy_violation")
    calls = itertools.count()
    backend = FakeBackend(side=64, fail=lambda request: refused if next(calls) == 1 else None)
    s = Studio(backend)
    _generate(s, model="dall-e-3", n=3)
    assert len(s.grid.images) == 2 and len(s.grid.tiles) == 2
    assert "ipyimagegen-warning" in _status(s) and "Rephrase" in _status(s)


def test_cancel_returns_to_idle_and_late_results_never_show() -> None:
    gate = threading.Event()
    backend = FakeBackend(side=64, gate=gate)
    s = Studio(backend)
    tab = s.generate_tab
    tab.prompt_box.value = "never mind"
    tab.params.n = 2
    tab.controls.run_button.click()
    assert backend.calls_started.acquire(timeout=WAIT_S)
    tab.controls.cancel_button.click()
    assert not s.runner.busy and not tab.controls.run_button.disabled
    assert "Cancelled" in _status(s) and s.grid.tiles == []
    job = s.runner.job
    gate.set()  # the backend finishes after the cancel...
    assert backend.calls_finished.acquire(timeout=WAIT_S)
    assert job is not None and job.join(WAIT_S)
    assert s.grid.tiles == []  # ...and nothing is shown
    assert "Cancelled" in _status(s)
    _generate(s, "again")
    assert len(s.grid.images) == 2


def test_streamed_partial_images_fill_the_placeholders() -> None:
    gate = threading.Event()
    backend = FakeBackend(side=64, gate=gate)
    s = Studio(backend)
    tab = s.generate_tab
    tab.params.model = "gpt-image-2.5-flare"
    tab.params.n = 2
    tab.params.partial_images = 2
    tab.prompt_box.value = "a city at night"
    tab.controls.run_button.click()
    # Both placeholders must be there: all() of no tiles is true, so a failed job would pass unseen.
    wait_until(lambda: len(s.grid.tiles) == 2 and all("preview 2" in t.status_text() for t in s.grid.tiles))
    assert s.runner.busy, tab.status.value  # held at the gate, not failed
    assert all(tile.picture is not None and not tile.is_filled for tile in s.grid.tiles)
    assert backend.requests[0].partial_images == 2
    gate.set()
    assert s.runner.wait(WAIT_S)
    assert len(s.grid.tiles) == 2, tab.status.value
    assert all(tile.is_filled and "preview" not in tile.status_text() for tile in s.grid.tiles)


def test_prompt_over_the_limit_is_refused_with_a_clear_message() -> None:
    backend = FakeBackend(side=64)
    s = Studio(backend)
    s.generate_tab.params.model = "dall-e-2"
    assert s.generate_tab.prompt_box.limit == 1000
    s.generate_tab.prompt_box.value = "x" * 1200
    assert s.generate_tab.generate() is None
    problem = s.generate_tab.prompt_box.problem  # said under the prompt; the run button points there
    assert (
        "at most 1000" in problem.value and problem.layout.display is None and "see the prompt" in _status(s)
    )
    assert backend.requests == [] and s.grid.tiles == []
    s.generate_tab.prompt_box.value = "   "  # a change clears what was said
    assert problem.layout.display == "none"
    s.generate_tab.controls.run_button.click()
    assert "prompt is empty" in problem.value


def test_ctrl_enter_in_the_prompt_generates() -> None:
    backend = FakeBackend(side=64)
    s = Studio(backend)
    shortcut = s.generate_tab.prompt_box.shortcut
    assert shortcut is not None
    shortcut._handle_message(shortcut, {"event": "submit", "value": "typed and sent"}, [])
    assert s.runner.wait(WAIT_S)
    assert backend.requests[0].prompt == "typed and sent"


class _Receiver(widgets.HTML):
    """A stand-in Edit tab: any widget with use_image(image) receives routed images."""

    def __init__(self) -> None:
        super().__init__("edit tab")
        self.received: list[GeneratedImage] = []

    def use_image(self, image: GeneratedImage) -> None:
        self.received.append(image)


def test_tile_actions_are_routed_to_the_tabs() -> None:
    s = Studio(FakeBackend(side=64))
    _generate(s, "a green door", n=2)
    routed: list[GeneratedImage] = []
    s.on_variations(routed.append)
    tile = s.grid.tiles[1]
    s.grid.act(tile, "variations")
    assert routed == [tile.image] and s.tabs.selected_index == 2
    assert s.tab("Variations").prepared is not None
    receiver = _Receiver()
    placeholder = s.tab("Edit")
    s.set_tab("Edit", receiver)
    assert placeholder.comm is None and list(s.tabs.titles) == ["Generate", "Edit", "Variations", "History"]
    s.grid.act(tile, "edit")
    assert receiver.received == [tile.image] and s.tabs.selected_index == 1
    s.generate_tab.prompt_box.value = ""
    s.grid.act(tile, "use_prompt")
    assert s.generate_tab.prompt_box.value == "a green door" and s.tabs.selected_index == 0


def test_the_edit_and_variations_tabs_take_only_a_widget_that_receives_images() -> None:
    s = Studio(FakeBackend(side=64))
    for title in ("Edit", "Variations"):
        with pytest.raises(TypeError, match=r"use_image\(image\)"):
            s.set_tab(title, widgets.HTML("soon"))
    assert isinstance(s.tab("Edit"), EditTab)  # the refused widget took no tab's place
    s.set_tab("History", widgets.HTML("no history here"))  # the other tabs take any widget
    assert s.tab("History").value == "no history here"


def test_saved_state_carries_thumbnails_not_full_images() -> None:
    backend = FakeBackend(side=512)
    s = Studio(backend)
    for k in range(3):
        _generate(s, f"texture study {k}", n=2)
    images = s.grid.images
    assert len(images) == 6
    full = sum(len(image.data) for image in images)
    assert state_bytes(s) < full / 5
    assert [w for w in iter_widgets(s) if isinstance(w, widgets.Image)] == []  # thumbnails cross as buffers
    assert all(
        tile.picture is not None and len(tile.picture[0]) * 10 < len(images[0].data) for tile in s.grid.tiles
    )
    s.select("History")
    pictures = [tile.picture for tile in s.history.tiles]
    assert len(pictures) == 6  # the History tab shows the same six, as the gallery's thumbnails
    assert all(p is not None and len(p[0]) * 10 < len(images[0].data) for p in pictures)
    s.grid.act(s.grid.tiles[0], "enlarge")
    assert bytes(s.grid.view.viewer_image) == images[0].data
    s.grid.close_preview()
    assert state_bytes(s) < full / 5


class _Gallery:
    """Records saves, and what the grid showed at the moment of each save."""

    def __init__(self, grid_images: Any, fail: bool = False) -> None:
        self.grid_images = grid_images
        self.fail = fail
        self.saved: list[tuple[ImagesResponse, int]] = []

    def save_response(self, response: ImagesResponse, parent_id: Any = None) -> list[int]:
        if self.fail:
            raise OSError("disk full")
        self.saved.append((response, len(self.grid_images())))
        return list(range(len(response.data)))


def test_results_are_saved_to_the_gallery_before_they_are_shown() -> None:
    s = Studio(FakeBackend(side=64))
    gallery = _Gallery(lambda: s.grid.images)
    s.generate_tab.gallery = gallery
    _generate(s, n=2)
    ((response, shown_at_save),) = gallery.saved
    assert shown_at_save == 0 and s.grid.images == response.data


def test_a_gallery_failure_still_shows_the_images_and_says_so() -> None:
    s = Studio(FakeBackend(side=64), gallery=_Gallery(lambda: [], fail=True))
    _generate(s, n=1)
    assert len(s.grid.images) == 1
    assert "could not be saved to the gallery" in _status(s) and "ipyimagegen-warning" in _status(s)


def test_the_studio_says_which_backend_it_uses_and_how_to_go_online() -> None:
    assert "fake" in Studio(FakeBackend()).header.value
    s = studio()  # no key, no server: the preview engine, and the header says how to go online
    assert isinstance(s.backend, PreviewEngine)
    assert "ipyimagegen-backend" in s.header._dom_classes
    assert "OPENAI_API_KEY" in s.header.value and "ipyimagegen-offline" in s.header.value
    for css in ("ipyimagegen-studio",):
        assert css in s._dom_classes
    assert "ipyimagegen-generate" in s.generate_tab.controls.run_button._dom_classes
    assert "ipyimagegen-cancel" in s.generate_tab.controls.cancel_button._dom_classes
    assert "ipyimagegen-status" in s.generate_tab.status._dom_classes
    assert not any(isinstance(w, widgets.Password) for w in iter_widgets(s))
    assert [type(s.tab(t)).__name__ for t in ("Edit", "Variations", "History")] == [
        "EditTab",
        "VariationsTab",
        "HistoryBrowser",
    ]


def test_the_preview_engine_drives_the_studio_end_to_end() -> None:
    s = Studio(PreviewEngine())
    _generate(s, "a red fox in snow", model="dall-e-3", n=2)
    first, second = s.grid.images
    assert first.data != second.data  # two parallel requests, two different pictures
    tile = s.grid.tiles[0]
    revised = tile.image.revised_prompt
    assert revised and revised != "a red fox in snow"  # dall-e-3 rewrites prompts; the tile shows it
    assert (
        tile.prompt == "a red fox in snow" and tile.revised_prompt == revised
    )  # the user's, and the model's
    assert tile.picture is not None and len(tile.picture[0]) * 3 < len(tile.image.data)


class HeldPreviewEngine(PreviewEngine):
    """The preview engine, holding each result until the test releases it (its previews stream at once)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def _image_done(self, request: Any, hooks: Any, image: GeneratedImage, usage: Any = None) -> None:
        assert self.release.wait(WAIT_S)
        super()._image_done(request, hooks, image, usage)


def test_the_preview_engine_streams_partial_images_into_the_tiles() -> None:
    engine = HeldPreviewEngine()
    s = Studio(engine)
    tab = s.generate_tab
    tab.params.model = "gpt-image-2.5-flare"
    tab.params.n = 2
    tab.params.partial_images = 2
    tab.prompt_box.value = "a city at night"
    tab.controls.run_button.click()
    wait_until(lambda: len(s.grid.tiles) == 2 and "preview 2" in s.grid.tiles[0].status_text())
    first, second = s.grid.tiles  # the engine makes one image after the other
    assert first.picture is not None and not first.is_filled and second.picture is None
    engine.release.set()
    assert s.runner.wait(WAIT_S)
    assert len(s.grid.tiles) == 2 and all(tile.is_filled for tile in s.grid.tiles)
    assert all("preview" not in tile.status_text() for tile in s.grid.tiles)


def test_tabs_are_made_when_first_opened() -> None:
    s = Studio(FakeBackend(side=64), gallery=False)
    shown = len(list(iter_widgets(s)))  # what the browser is sent for a new studio
    assert shown < 250, shown  # the Edit tab alone is some 200 widgets
    edit_index = s.tabs.titles.index("Edit")
    assert type(s.tabs.children[edit_index]).__name__ != "EditTab"
    s.select("Edit")  # as a click on the tab does
    assert type(s.tabs.children[edit_index]).__name__ == "EditTab"
    assert s.tabs.selected_index == edit_index
    _generate(s, "a green door")
    s.grid.act(s.grid.tiles[0], "variations")  # routing makes the Variations tab too
    assert s.variations_tab.prepared is not None and s.tabs.selected_index == 2
    assert len(list(iter_widgets(s))) > shown + 250


def test_edit_from_a_tile_carries_its_prompt_model_and_shape() -> None:
    s = Studio(PreviewEngine(), gallery=False)
    _generate(s, "a harbour at dawn", model="gpt-image-2", size="1536x1024", quality="low")
    tile = s.grid.tiles[0]
    s.edit_tab.params.model = "dall-e-2"  # the Edit tab was left on another model
    s.grid.act(tile, "edit")
    edit = s.edit_tab
    assert edit.prompt_box.value == "a harbour at dawn"
    assert (edit.params.model, edit.params.size, edit.params.quality) == ("gpt-image-2", "1536x1024", "low")
    assert edit.painter.image.size == (1536, 1024)  # no square, no invented bands
    edit.use_image(np.zeros((800, 1200, 3), np.uint8))  # an upload of a 3:2 photo
    assert edit.params.size == "1536x1024"


def test_tile_actions_bring_their_target_into_view() -> None:
    from widget_helpers import Page

    s = Studio(PreviewEngine(), gallery=False)
    page = Page(s.grid.view)
    _generate(s, "a paper lantern", model="dall-e-2", size="256x256")
    reveals = [content for content in page.messages if content.get("event") == "reveal"]
    assert reveals == [
        {"event": "reveal", "selector": FIRST_TILE, "block": "nearest", "focus": ""}
    ]  # the new tiles
    tile = s.grid.tiles[0]
    for action, tab in (("edit", "Edit"), ("variations", "Variations"), ("use_prompt", "Generate")):
        s.grid.act(tile, action)
        assert s.tabs.selected_index == s.tabs.titles.index(tab)
    assert page.revealed[1:] == [REVEAL["Edit"][0], REVEAL["Variations"][0], REVEAL["Generate"][0]]
    edit = [content for content in page.messages if content.get("selector") == REVEAL["Edit"][0]]
    assert edit[0]["block"] == "start"  # the painter's top at the top of the window


def test_same_seed_from_the_viewer_makes_the_same_image_again() -> None:
    from widget_helpers import Page

    s = Studio(PreviewEngine(), gallery=False)
    params = s.generate_tab.params
    assert params.takes_seeds and params.is_shown("seed")  # the preview engine honours seeds
    _generate(s, "a copper kettle", model="dall-e-2", size="256x256", n=2)
    second = s.grid.tiles[1]
    page = Page(s.grid.view)
    page.click(second, "enlarge")
    seed = second.details.seed
    assert ["Seed", str(seed)] in s.grid.view.viewer["facts"] and "same_seed" in s.grid.view.viewer["actions"]
    page.send({"event": "action", "id": second.id, "name": "same_seed", "from": "viewer"})
    assert (params.seed, params.n, s.generate_tab.prompt_box.value) == (seed, 1, "a copper kettle")
    assert params.seed_control.value == str(seed)
    s.generate_tab.controls.run_button.click()
    assert s.runner.wait(WAIT_S)
    assert s.grid.tiles[0].image.data == second.image.data  # the same seed, the same picture
    params.seed_control.value = "twelve"
    assert params.seed == seed and "is not one" in params.seed_note.value
    params.seed_control.value = ""
    assert params.seed is None


def test_the_seed_row_is_hidden_where_the_backend_ignores_seeds() -> None:
    s = Studio(FakeBackend(side=64), gallery=False)
    assert not s.generate_tab.params.is_shown("seed")
    s.generate_tab.params.seed = 7
    assert s.generate_tab.params.request("x").seed is None  # not sent where it means nothing


def test_the_viewer_shows_an_edit_before_and_after() -> None:
    from widget_helpers import Page

    s = Studio(PreviewEngine(), gallery=False)
    _generate(s, "a white jug", model="dall-e-2", size="256x256")
    page = Page(s.grid.view)
    page.click(s.grid.tiles[0], "enlarge")
    assert not s.grid.view.viewer["has_before"]  # a generation has no before
    edit = s.edit_tab
    s.grid.act(s.grid.tiles[0], "edit")
    edit.painter.fill()
    edit.prompt_box.value = "a blue jug"
    edit.controls.run_button.click()
    assert s.runner.wait(WAIT_S)
    page.click(s.grid.tiles[0], "enlarge")
    assert s.grid.view.viewer["has_before"]
    page.send({"event": "viewer", "do": "before"})  # the Before button (or B)
    sent = [(m, b) for m, b in zip(page.messages, page.buffers, strict=True) if m.get("event") == "before"]
    (message, (before,)) = sent[-1]
    assert message["id"] == s.grid.tiles[0].id
    assert before == s.grid.tiles[0].request.images[0].data  # the picture the edit changed


def test_share_with_the_class_puts_a_result_on_the_workshop_wall(tmp_path) -> None:
    from ipyimagegen.api.client import OpenAIClient
    from ipyimagegen.server import ServerConfig, ServerThread, TokenStore, make_app
    from ipyimagegen.server.wall import WallStore
    from widget_helpers import Page

    store = TokenStore.in_dir(tmp_path)
    token, _ = store.create("alice")
    with ServerThread(make_app(PreviewEngine(), ServerConfig(class_wall=True), tokens=store)) as server:
        s = Studio(OpenAIClient(base_url=server.base_url, api_key=token, max_retries=0), gallery=False)
        _generate(s, "a copper kettle", model="dall-e-2", size="256x256")
        tile = s.grid.tiles[0]
        page = Page(s.grid.view)
        page.click(tile, "enlarge")
        assert "share" in s.grid.view.viewer["actions"]
        page.send({"event": "action", "id": tile.id, "name": "share", "from": "viewer"})
        wait_until(lambda: "Shared with the class" in s.grid.notice_html)
        assert s.grid.notice_kind == "ok" and s.grid.viewed is tile  # the viewer stays open
        assert [(post.name, post.prompt) for post in WallStore(store).posts()] == [
            ("alice", "a copper kettle")
        ]
        store.revoke("alice")
        s.share(tile.image).join(WAIT_S)
        assert s.grid.notice_kind == "error" and "revoked" in s.grid.notice_html
        assert token not in s.grid.notice_html and len(WallStore(store).posts()) == 1
        s.close()


def test_share_is_not_offered_where_there_is_no_class_wall() -> None:
    from widget_helpers import Page

    s = Studio(PreviewEngine(), gallery=False)
    _generate(s, "a copper kettle", model="dall-e-2", size="256x256")
    Page(s.grid.view).click(s.grid.tiles[0], "enlarge")
    assert "share" not in s.grid.view.viewer["actions"]
