"""run_parallel: more images than a model makes per request, served by concurrent requests."""

from __future__ import annotations

import threading
import time

import pytest

from ipyimagegen.api.parallel import requests_needed, run_parallel, split_request, validate_parallel
from ipyimagegen.api.types import CallHooks, GenerateRequest, ImagesResponse, PartialImage, Progress
from ipyimagegen.errors import CancelledError, ContentPolicyError, RateLimitError, ValidationError
from waiting import wait_until
from widget_helpers import WAIT_S, FakeBackend


def _request(**kwargs: object) -> GenerateRequest:
    return GenerateRequest(prompt="a red fox in snow", **kwargs)  # type: ignore[arg-type]


def test_within_the_model_limit_is_one_plain_call() -> None:
    backend = FakeBackend(side=64)
    request = _request(model="gpt-image-1", n=3)
    response = run_parallel(backend, request)
    assert backend.requests == [request]
    assert [image.index for image in response] == [0, 1, 2]


def test_dalle3_n4_runs_four_requests_at_the_same_time() -> None:
    # Each call waits at a barrier for 4 parties: sequential calls would break it.
    barrier = threading.Barrier(4, timeout=WAIT_S)
    backend = FakeBackend(side=64, barrier=barrier)
    response = run_parallel(backend, _request(model="dall-e-3", n=4, seed=10))
    assert not barrier.broken
    assert len(backend.requests) == 4
    assert all(part.n == 1 for part in backend.requests)
    assert sorted(part.seed for part in backend.requests) == [10, 11, 12, 13]
    assert [image.index for image in response] == [0, 1, 2, 3]
    assert [image.seed for image in response] == [10, 11, 12, 13]  # merged in request order
    assert response.request is not None and response.request.n == 4
    assert response.errors == []


def test_split_keeps_other_parameters_and_covers_n() -> None:
    request = _request(model="gpt-image-1", n=23, seed=5, quality="low", size="1536x1024")
    parts = split_request(request)
    assert [part.n for part in parts] == [10, 10, 3]
    assert [part.seed for part in parts] == [5, 15, 25]
    assert {(part.quality, part.size, part.prompt) for part in parts} == {
        ("low", "1536x1024", request.prompt)
    }
    assert requests_needed(request) == 3
    assert requests_needed(_request(model="dall-e-3", n=4)) == 4
    assert split_request(_request(model="dall-e-3", n=3))[0].seed is None


def test_parts_of_a_seedless_request_get_consecutive_seeds_so_they_differ() -> None:
    backend = FakeBackend(side=64)
    request = _request(model="dall-e-3", n=3)
    response = run_parallel(backend, request)
    seeds = sorted(part.seed for part in backend.requests)
    assert seeds[0] is not None and seeds == [seeds[0], seeds[0] + 1, seeds[0] + 2]
    assert request.seed is None and response.request is request


def test_progress_counts_images_done_of_n() -> None:
    seen: list[Progress] = []
    run_parallel(FakeBackend(side=64), _request(model="dall-e-3", n=3), CallHooks(on_progress=seen.append))
    assert (seen[0].done, seen[0].total) == (0, 3)
    assert sorted(p.done for p in seen) == [0, 1, 2, 3]
    assert all(p.total == 3 for p in seen)


def test_partial_images_keep_their_place_in_the_merged_result() -> None:
    partials: list[PartialImage] = []
    lock = threading.Lock()

    def on_partial(partial: PartialImage) -> None:
        with lock:
            partials.append(partial)

    request = _request(model="gpt-image-1", n=12, partial_images=1)
    response = run_parallel(FakeBackend(side=64), request, CallHooks(on_partial=on_partial))
    assert len(response) == 12
    assert sorted(p.index for p in partials) == list(range(12))


def test_partial_failure_keeps_the_images_that_were_made() -> None:
    refused = ContentPolicyError("Your request was rejected.", status_code=400)
    backend = FakeBackend(side=64, fail=lambda request: refused if request.seed == 2 else None)
    response = run_parallel(backend, _request(model="dall-e-3", n=4, seed=0))
    assert [image.seed for image in response] == [0, 1, 3]
    assert [image.index for image in response] == [0, 1, 2]
    assert response.errors == [refused]


def test_when_every_part_fails_the_first_error_is_raised() -> None:
    errors = {0: RateLimitError("slow down", retry_after=3), 1: ContentPolicyError("no")}
    backend = FakeBackend(side=64, fail=lambda request: errors[request.seed or 0])
    with pytest.raises(RateLimitError):
        run_parallel(backend, _request(model="dall-e-3", n=2, seed=0))


def test_cancel_stops_waiting_at_once_keeps_what_is_done_and_hands_on_what_arrives_later() -> None:
    gates = {10: threading.Event(), 11: threading.Event(), 12: threading.Event()}
    backend = FakeBackend(side=64, gate=lambda request: gates[request.seed])
    cancel = threading.Event()
    late: list[list[int | None]] = []
    outcome: list[BaseException | object] = []
    places: list[list[int]] = []
    arrived: list[int] = []

    def on_late(response: ImagesResponse) -> None:
        late.append([image.seed for image in response.data])
        places.append([image.index for image in response.data])

    hooks = CallHooks(cancel=cancel, on_late=on_late, on_images=lambda first, _images: arrived.append(first))
    request = _request(model="dall-e-3", n=3, seed=10)

    def call() -> None:
        try:
            outcome.append(run_parallel(backend, request, hooks, max_workers=3))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    for _ in range(3):
        assert backend.calls_started.acquire(timeout=WAIT_S)
    gates[10].set()
    assert backend.calls_finished.acquire(timeout=WAIT_S)
    wait_until(lambda: arrived)  # the first part is in
    cancel.set()
    thread.join(WAIT_S)
    assert not thread.is_alive()  # returned while two backend calls are still blocked
    (error,) = outcome
    assert isinstance(error, CancelledError)
    assert [image.seed for image in error.kept.data] == [10]  # kept: what was done

    gates[11].set()
    gates[12].set()
    for _ in range(2):
        assert backend.calls_finished.acquire(timeout=WAIT_S)
    wait_until(lambda: len(late) >= 2)
    assert sorted(late) == [[11], [12]]  # sent before the cancel, paid for: handed on
    assert sorted(places) == [[1], [2]]  # each at its place in the whole request


def test_parts_not_sent_before_a_cancel_are_never_sent() -> None:
    gate = threading.Event()
    backend = FakeBackend(side=64, gate=gate)
    cancel = threading.Event()
    late: list[int] = []
    hooks = CallHooks(cancel=cancel, on_late=lambda response: late.append(len(response.data)))
    thread = threading.Thread(
        target=lambda: pytest.raises(
            CancelledError, run_parallel, backend, _request(model="dall-e-3", n=3), hooks, 1
        ),
        daemon=True,
    )
    thread.start()
    assert backend.calls_started.acquire(timeout=WAIT_S)
    cancel.set()
    thread.join(WAIT_S)
    gate.set()
    assert backend.calls_finished.acquire(timeout=WAIT_S)
    wait_until(lambda: late)
    time.sleep(0.2)  # time for a part not sent before the cancel to be sent, were it ever
    assert len(backend.requests) == 1 and late == [1]


def test_validate_parallel_checks_one_part_not_the_total() -> None:
    validate_parallel(_request(model="dall-e-3", n=4))
    with pytest.raises(ValidationError, match="prompt"):
        validate_parallel(GenerateRequest(prompt="  ", model="dall-e-3", n=4))
    with pytest.raises(ValidationError, match="style"):
        validate_parallel(_request(model="gpt-image-1", style="vivid"))


def test_each_parts_images_are_handed_on_as_the_part_arrives() -> None:
    backend = FakeBackend(side=32)
    arrived: list[tuple[int, list[int | None]]] = []
    hooks = CallHooks(on_images=lambda first, images: arrived.append((first, [i.seed for i in images])))
    request = GenerateRequest(prompt="kites", model="dall-e-3", n=3, size="1024x1024", seed=10)

    response = run_parallel(backend, request, hooks)

    assert sorted(arrived) == [(0, [10]), (1, [11]), (2, [12])]  # each with its place in the whole
    assert [image.seed for image in response.data] == [10, 11, 12]
