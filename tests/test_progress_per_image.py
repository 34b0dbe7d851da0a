"""Progress that moves: an engine that makes a batch image by image hands over each image as it is made;
the session saves it and tells it at once, the studio fills its tile and counts it, and Cancel keeps the
images already made (in the grid and the gallery) and drops the rest."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ipyimagegen.api.types import CallHooks, GeneratedImage, GenerateRequest, ImageRequest, Progress
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.errors import ContentPolicyError
from ipyimagegen.gallery import Gallery
from ipyimagegen.session import (
    ImageSaved,
    JobCancelled,
    JobEvent,
    JobFailed,
    JobKept,
    ResultsReady,
    Session,
    ThumbnailReady,
)
from ipyimagegen.widgets.studio import Studio
from test_session import Recorder
from waiting import WAIT_S, wait_until


class SteppedPreview(PreviewEngine):
    """The preview engine, waiting after each image it hands over until the test lets it make the next."""

    def __init__(self) -> None:
        super().__init__()
        self.go_on = threading.Semaphore(0)

    def _image_done(
        self, request: ImageRequest, hooks: CallHooks, image: GeneratedImage, usage: Any = None
    ) -> None:
        super()._image_done(request, hooks, image, usage)
        assert self.go_on.acquire(timeout=WAIT_S), "the test never let the engine make the next image"


class RefusesTheThird(PreviewEngine):
    """The preview engine, refusing the call when it comes to image 3 (as a model's output check may)."""

    def _result(self, image: Any, index: int, seed: int, request: Any, hooks: CallHooks) -> GeneratedImage:
        if index == 2:
            raise ContentPolicyError("Your request was rejected by the safety system.")
        return super()._result(image, index, seed, request, hooks)


class Heard(Recorder):
    """Every event of a session, and whether each image told saved was on disk at that moment."""

    def __init__(self, gallery: Gallery) -> None:
        super().__init__(gallery)
        self.on_disk_when_told: list[bool] = []

    def __call__(self, event: JobEvent) -> None:
        if isinstance(event, ImageSaved):
            item = self.gallery.get(event.image.metadata["gallery_id"])
            self.on_disk_when_told.append(item.path.is_file())
        super().__call__(event)


@pytest.fixture
def gallery(tmp_path: Path) -> Iterator[Gallery]:
    with Gallery(tmp_path / "gallery") as opened:
        yield opened


def _boats(n: int, model: str = "dall-e-2", size: str = "256x256") -> GenerateRequest:
    return GenerateRequest(prompt="paper boats on a pond", model=model, size=size, n=n, seed=3)


# -- the session ------------------------------------------------------------------------------------


def test_each_image_is_saved_then_told_as_it_is_made_and_the_result_saves_nothing_twice(
    gallery: Gallery,
) -> None:
    engine = SteppedPreview()
    session = Session(engine, gallery)
    heard = Heard(gallery)
    session.subscribe(heard)
    session.submit(_boats(4))
    for made in range(1, 5):
        wait_until(lambda made=made: len(heard.of(ImageSaved)) == made)
        assert len(gallery) == made and not heard.of(ResultsReady) and session.busy
        engine.go_on.release()
    assert session.wait(WAIT_S)

    told = heard.of(ImageSaved)
    assert [event.index for event in told] == [0, 1, 2, 3] and heard.on_disk_when_told == [True] * 4
    assert sorted(event.index for event in heard.of(ThumbnailReady)) == [0, 1, 2, 3]
    (ready,) = heard.of(ResultsReady)
    assert [id(image) for image in ready.response.data] == [id(event.image) for event in told]
    assert len(gallery) == 4  # the response's images were saved as they came, not again
    saved = {item.id for item in gallery.items()}
    assert {image.metadata["gallery_id"] for image in ready.response.data} == saved
    for image in ready.response.data:  # saved with what the whole call says of each image
        item = gallery.get(image.metadata["gallery_id"])
        assert (item.prompt, item.model, item.seed) == ("paper boats on a pond", "dall-e-2", image.seed)
        assert item.metadata["details"]["cost"] == image.metadata["cost"]


def test_a_parallel_job_of_image_by_image_parts_saves_and_tells_each_image_once(gallery: Gallery) -> None:
    session = Session(PreviewEngine(), gallery)
    heard = Heard(gallery)
    session.subscribe(heard)
    session.submit(_boats(3, model="dall-e-3", size="1024x1024"))  # three requests of one image
    assert session.wait(WAIT_S)
    assert sorted(event.index for event in heard.of(ImageSaved)) == [0, 1, 2]
    assert len(gallery) == 3 and len(heard.of(ResultsReady)) == 1


def test_cancel_keeps_the_images_told_and_nothing_comes_after(gallery: Gallery) -> None:
    engine = SteppedPreview()
    session = Session(engine, gallery)
    heard = Heard(gallery)
    session.subscribe(heard)
    job = session.submit(_boats(6))
    wait_until(lambda: len(heard.of(ImageSaved)) == 1)
    engine.go_on.release()
    wait_until(lambda: len(heard.of(ImageSaved)) == 2)

    assert session.cancel()
    for _ in range(6):
        engine.go_on.release()  # the engine may go on: it stops before its next image
    wait_until(lambda: heard.of(JobKept))
    assert job.join(WAIT_S)
    (kept,) = heard.of(JobKept)
    assert (len(kept.kept.data), kept.asked) == (2, 6)
    assert [id(image) for image in kept.kept.data] == [id(event.image) for event in heard.of(ImageSaved)]
    assert len(gallery) == 2
    kinds = [type(event) for event in heard.events]
    assert kinds[-2:] == [JobCancelled, JobKept] and kinds.count(ImageSaved) == 2
    assert not heard.of(ResultsReady) and not heard.of(JobFailed)


def test_a_call_that_fails_after_some_images_ends_with_them_and_the_error(gallery: Gallery) -> None:
    session = Session(RefusesTheThird(), gallery)
    heard = Heard(gallery)
    session.subscribe(heard)
    session.submit(_boats(4))
    assert session.wait(WAIT_S)
    assert not heard.of(JobFailed)
    (ready,) = heard.of(ResultsReady)
    assert [image.index for image in ready.response.data] == [0, 1]
    (error,) = ready.response.errors
    assert isinstance(error, ContentPolicyError)
    assert len(gallery) == 2


# -- the studio -------------------------------------------------------------------------------------


def _start(s: Studio, n: int) -> None:
    tab = s.generate_tab
    tab.prompt_box.value = "paper boats on a pond"
    tab.params.model, tab.params.size, tab.params.n = "dall-e-2", "256x256", n
    tab.controls.run_button.click()


def _filled(s: Studio) -> list[bool]:
    return [tile.is_filled for tile in s.grid.tiles]


def test_a_preview_batch_fills_its_tiles_one_by_one_and_counts_them(tmp_path: Path) -> None:
    engine = SteppedPreview()
    s = Studio(engine, gallery=tmp_path / "gallery")
    controls = s.generate_tab.controls
    _start(s, 6)
    for made in range(1, 7):
        wait_until(lambda made=made: sum(_filled(s)) == made)
        assert _filled(s) == [True] * made + [False] * (6 - made)
        assert all(tile.is_stored for tile in s.grid.tiles[:made])  # its file is in the gallery
        assert len(s.gallery) == made and s.runner.busy
        wait_until(lambda made=made: controls.progress.value.startswith(f"{made} of 6 · "))
        engine.go_on.release()
    assert s.runner.wait(WAIT_S)
    assert _filled(s) == [True] * 6 and len(s.gallery) == 6  # the result shows and saves nothing twice
    assert len({tile.details.metadata["gallery_id"] for tile in s.grid.tiles}) == 6
    assert "6 images in" in controls.status.value
    s.close()


def test_cancel_after_two_keeps_exactly_those_two_in_the_grid_and_the_gallery(tmp_path: Path) -> None:
    engine = SteppedPreview()
    s = Studio(engine, gallery=tmp_path / "gallery")
    tab = s.generate_tab
    _start(s, 6)
    wait_until(lambda: sum(_filled(s)) == 1)
    engine.go_on.release()
    wait_until(lambda: sum(_filled(s)) == 2)
    job = s.runner.job

    tab.controls.cancel_button.click()
    assert not s.runner.busy and not tab.controls.run_button.disabled
    assert _filled(s) == [True, True]  # the placeholders of the rest are gone at once
    for _ in range(6):
        engine.go_on.release()  # the engine may go on: it stops before its next image
    wait_until(lambda: "kept" in tab.status.value)
    assert job is not None and job.join(WAIT_S)
    assert "Cancelled: kept 2 of 6." in tab.status.value
    assert _filled(s) == [True, True] and len(s.gallery) == 2  # nothing arrived after
    shown = {tile.details.metadata["gallery_id"] for tile in s.grid.tiles}
    assert shown == {item.id for item in s.gallery.items()}
    assert all("save" in tile["enabled"] for tile in s.grid.view.tiles)
    s.close()


# -- the diffusers engine ---------------------------------------------------------------------------


STEPS = 2


@pytest.fixture(scope="module")
def tiny_engine(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from local_models import require_torch

    torch = require_torch()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from ipyimagegen.engines.diffusers_engine import DiffusersEngine
    from tiny_pipeline import build_tiny_pipeline

    torch.set_num_threads(2)
    return DiffusersEngine(build_tiny_pipeline(tmp_path_factory.mktemp("models") / "tiny-sd"), steps=STEPS)


@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy:DeprecationWarning")
def test_the_diffusers_engine_hands_over_each_image_as_soon_as_it_is_made(tiny_engine: Any) -> None:
    log: list[tuple[str, Any]] = []
    hooks = CallHooks(
        on_images=lambda first, images: log.append(("images", (first, images))),
        on_progress=lambda progress: log.append(("progress", progress)),
    )
    request = GenerateRequest(prompt="a cat", model="tiny-sd", size="64x64", n=3, seed=4)
    response = tiny_engine.run(request, hooks)

    handed = [(at, item) for at, (kind, item) in enumerate(log) if kind == "images"]
    assert [(first, len(images)) for _at, (first, images) in handed] == [(0, 1), (1, 1), (2, 1)]
    steps: list[Progress] = [item for kind, item in log if kind == "progress"]
    assert steps[-1].done == steps[-1].total == 3 * STEPS  # the steps of the whole call
    for number, (at, _item) in enumerate(handed, start=1):  # each after its own steps, before the next's
        before = [item.done for kind, item in log[:at] if kind == "progress"]
        assert max(before) == number * STEPS
    images = [images[0] for _at, (_first, images) in handed]
    assert [id(image) for image in images] == [id(image) for image in response.data]
    for image in images:
        assert image.request is response.request and image.metadata["model"] == "tiny-sd"
        assert image.metadata["backend"] == tiny_engine.name
    assert [image.seed for image in images] == [4, 5, 6]
