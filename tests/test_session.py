"""The session from plain Python: jobs run and watched with no widget, on the preview engine and a gallery."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from ipyimagegen.api.types import CallHooks, GeneratedImage, GenerateRequest, ImagesResponse
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.errors import ContentPolicyError, ValidationError
from ipyimagegen.gallery import Gallery
from ipyimagegen.session import (
    ImageSaved,
    JobCancelled,
    JobEvent,
    JobFailed,
    JobKept,
    JobStarted,
    LateArrived,
    PartialArrived,
    ResultsReady,
    Session,
    ThumbnailReady,
)
from waiting import WAIT_S, wait_until

E = TypeVar("E", bound=JobEvent)


class GatedPreview(PreviewEngine):
    """The preview engine, each call held at its own gate (handed out in the order the calls come)."""

    def __init__(self, calls: int) -> None:
        super().__init__()
        self.gates = [threading.Event() for _ in range(calls)]
        self._handed = iter(self.gates)
        self._lock = threading.Lock()
        self.started = threading.Semaphore(0)

    def _generate(self, request: GenerateRequest, hooks: CallHooks) -> ImagesResponse:
        with self._lock:
            gate = next(self._handed)
        self.started.release()
        assert gate.wait(WAIT_S), "the test never opened the gate"
        return super()._generate(request, hooks)


class Refusing(PreviewEngine):
    def _generate(self, request: GenerateRequest, hooks: CallHooks) -> ImagesResponse:
        raise ContentPolicyError("Your request was rejected by the safety system.")


class Recorder:
    """Every event a subscriber gets, and what the gallery held when results were said to be ready."""

    def __init__(self, gallery: Gallery | None = None) -> None:
        self.gallery = gallery
        self.events: list[JobEvent] = []
        self.on_disk_when_ready: list[bool] = []
        self._lock = threading.Lock()

    def __call__(self, event: JobEvent) -> None:
        if isinstance(event, ResultsReady) and self.gallery is not None:
            self.on_disk_when_ready = [
                self.gallery.get(image.metadata["gallery_id"]).path.stat().st_size > 0
                for image in event.response.data
            ]
        with self._lock:
            self.events.append(event)

    def of(self, kind: type[E]) -> list[E]:
        with self._lock:
            return [event for event in self.events if isinstance(event, kind)]


@pytest.fixture
def gallery(tmp_path: Path) -> Iterator[Gallery]:
    with Gallery(tmp_path / "gallery") as opened:
        yield opened


def test_a_script_runs_a_job_and_hears_each_step_in_order_the_results_saved_first(gallery: Gallery) -> None:
    session = Session(PreviewEngine(), gallery)
    heard = Recorder(gallery)
    session.subscribe(heard)
    request = GenerateRequest(prompt="a lighthouse at dusk", model="dall-e-2", size="256x256", n=3)

    job = session.submit(request, labels={"lesson": "one"})
    assert session.wait(WAIT_S)

    kinds = [type(event) for event in heard.events]
    assert kinds[0] is JobStarted and kinds[-1] is ResultsReady
    assert sorted(event.index for event in heard.of(ThumbnailReady)) == [0, 1, 2]
    assert [event.index for event in heard.of(ImageSaved)] == [0, 1, 2]  # the engine makes them one by one
    assert set(kinds[1:-1]) == {ThumbnailReady, ImageSaved}
    assert all(event.job is job for event in heard.events)
    (ready,) = heard.of(ResultsReady)
    response = ready.response
    assert heard.on_disk_when_ready == [True, True, True]  # on disk before anyone was told
    assert len(gallery) == 3
    assert all(
        gallery.get(image.metadata["gallery_id"]).metadata["details"]["lesson"] == "one"
        for image in response.data
    )
    assert job.state == "done" and not session.busy
    cost = response.cost
    assert cost is not None and cost.usd > 0 and session.spending.would_cost_usd == pytest.approx(cost.usd)


def test_streamed_previews_arrive_before_the_results_and_finish_runs_once_per_image(gallery: Gallery) -> None:
    session = Session(PreviewEngine(), gallery)
    heard = Recorder()
    finished: list[GeneratedImage] = []

    def finish(image: GeneratedImage) -> None:
        finished.append(image)
        image.metadata["finished"] = True

    request = GenerateRequest(
        prompt="a paper boat", model="gpt-image-1", size="1024x1024", n=2, partial_images=2
    )
    session.submit(request, finish=finish, watch=heard)
    assert session.wait(WAIT_S)

    kinds = [type(event) for event in heard.events]
    assert kinds.count(PartialArrived) == 4
    assert kinds.index(ResultsReady) > max(i for i, kind in enumerate(kinds) if kind is PartialArrived)
    (ready,) = heard.of(ResultsReady)
    images = ready.response.data
    assert [id(image) for image in finished] == [id(image) for image in images]
    assert all(gallery.get(image.metadata["gallery_id"]).metadata["details"]["finished"] for image in images)


def test_parts_of_a_parallel_job_are_told_as_they_arrive(gallery: Gallery) -> None:
    backend = GatedPreview(3)
    session = Session(backend, gallery)
    heard = Recorder()
    finished: list[GeneratedImage] = []
    session.submit(
        GenerateRequest(
            prompt="three lanterns", model="dall-e-3", size="1024x1024", n=3
        ),  # three calls of one
        watch=heard,
        finish=finished.append,
    )
    for _ in range(3):
        assert backend.started.acquire(timeout=WAIT_S)
    backend.gates[1].set()
    wait_until(lambda: len(heard.of(ThumbnailReady)) == 1)
    assert not heard.of(ResultsReady) and session.busy
    for gate in backend.gates:
        gate.set()
    assert session.wait(WAIT_S)
    assert sorted(event.index for event in heard.of(ThumbnailReady)) == [0, 1, 2]
    assert len(finished) == 3 and len({id(image) for image in finished}) == 3  # once each, parts or whole
    assert len(heard.of(ResultsReady)) == 1


def test_cancel_keeps_what_arrived_and_saves_what_arrives_late(gallery: Gallery) -> None:
    backend = GatedPreview(3)
    session = Session(backend, gallery)
    heard = Recorder()
    session.subscribe(heard)
    job = session.submit(GenerateRequest(prompt="three lanterns", model="dall-e-3", size="1024x1024", n=3))
    for _ in range(3):
        assert backend.started.acquire(timeout=WAIT_S)
    backend.gates[0].set()  # one image is done, the other two are still being made
    wait_until(lambda: len(heard.of(ThumbnailReady)) == 1)

    assert session.cancel()
    assert not session.busy and job.state == "cancelled"
    assert len(heard.of(JobCancelled)) == 1  # told at once, in the thread that cancels
    wait_until(lambda: len(heard.of(JobKept)) == 1)
    (kept,) = heard.of(JobKept)
    assert (len(kept.kept.data), kept.asked) == (1, 3)
    assert len(gallery) == 1  # what was done is saved: it is paid for

    backend.gates[1].set()
    backend.gates[2].set()
    wait_until(lambda: len(heard.of(LateArrived)) == 2)
    assert all(event.saved for event in heard.of(LateArrived))
    assert len(gallery) == 3
    assert job.join(WAIT_S)
    assert not heard.of(ResultsReady) and not heard.of(JobFailed)  # the cancelled job's outcome is dropped
    kinds = [type(event) for event in heard.events]
    assert kinds.index(JobCancelled) < kinds.index(JobKept) < kinds.index(LateArrived)


def test_an_error_is_told_with_the_error_and_the_next_job_runs(gallery: Gallery) -> None:
    session = Session(Refusing(), gallery)
    heard = Recorder()
    session.subscribe(heard)
    job = session.submit(GenerateRequest(prompt="something", model="dall-e-2", size="256x256"))
    assert session.wait(WAIT_S)
    (failed,) = heard.of(JobFailed)
    assert isinstance(failed.error, ContentPolicyError)
    assert failed.job is job and job.state == "failed" and job.error is failed.error
    assert [type(event) for event in heard.events] == [JobStarted, JobFailed]
    assert len(gallery) == 0

    session.backend = PreviewEngine()
    session.submit(GenerateRequest(prompt="something", model="dall-e-2", size="256x256"))
    assert session.wait(WAIT_S) and len(heard.of(ResultsReady)) == 1


def test_a_request_that_cannot_be_sent_is_refused_before_any_job_starts() -> None:
    session = Session(PreviewEngine())
    heard = Recorder()
    session.subscribe(heard)
    with pytest.raises(ValidationError, match="size"):
        session.submit(GenerateRequest(prompt="a kite", model="dall-e-2", size="999x999"))
    assert not session.busy and session.runner.job is None and heard.events == []


def test_one_job_at_a_time_and_a_failing_subscriber_fails_the_job_but_not_the_others(
    gallery: Gallery,
) -> None:
    backend = GatedPreview(1)
    session = Session(backend, gallery)
    heard = Recorder()

    def broken(event: JobEvent) -> None:
        if isinstance(event, ResultsReady):
            raise RuntimeError("cannot show this")

    session.subscribe(broken)
    session.subscribe(heard)
    request = GenerateRequest(prompt="a kite", model="dall-e-2", size="256x256")
    session.submit(request)
    with pytest.raises(RuntimeError, match="already running"):
        session.submit(request)
    backend.gates[0].set()
    assert session.wait(WAIT_S)
    assert [type(event) for event in heard.events][-2:] == [ResultsReady, JobFailed]
    assert str(heard.of(JobFailed)[0].error) == "cannot show this"
    session.subscribe(broken, remove=True)


def test_the_session_imports_no_widgets() -> None:
    code = "import sys, ipyimagegen.session; assert 'ipywidgets' not in sys.modules, 'ipywidgets imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
