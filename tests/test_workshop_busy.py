"""A workshop server that says it is busy (429 ``workshop_busy``): the client waits as long as it is told
and tries again within the call's time, says so in the progress line, fails at once saying when to come
back where the call's time is too short, and stops waiting at once when cancelled. Every call says how
long the client waits (``x-stainless-read-timeout``), as the official SDKs do."""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from fake_api_server import FakeImagesAPI, Reply
from ipyimagegen.api import (
    CallHooks,
    CancelledError,
    GenerateRequest,
    ImagesResponse,
    RateLimitError,
    WorkshopBusyError,
    describe_error,
)
from ipyimagegen.api.client import OpenAIClient
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.errors import error_from_response
from ipyimagegen.server import ServerThread, make_app
from ipyimagegen.server.config import ServerConfig
from waiting import WAIT_S, wait_until

BUSY_TEXT = "The workshop is busy: about 4 min, 37 ahead of you."


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def images() -> Reply:
    return Reply(body={"created": 1_700_000_000, "data": [{"b64_json": base64.b64encode(png()).decode()}]})


def busy_body(**queue: Any) -> dict[str, Any]:
    numbers = {"position": 38, "ahead": 37, "wait_s": 240.0, "max_wait_s": 240.0, "retry_after_s": 120.0}
    return {
        "error": {
            "message": "The workshop is busy: about 4 min, 37 ahead of you. Try again in 2 min.",
            "type": "requests",
            "param": None,
            "code": "workshop_busy",
            "queue": {**numbers, **queue},
        }
    }


def busy(retry_after: int, **queue: Any) -> Reply:
    """A busy answer as ``ipyimagegen serve`` gives it."""
    return Reply(
        status=429,
        body=busy_body(retry_after_s=float(retry_after), **queue),
        headers={
            "Retry-After": str(retry_after),
            "retry-after-ms": str(retry_after * 1000),
            "x-should-retry": "true" if retry_after <= 60 else "false",
        },
    )


def rate_limited(retry_after: int) -> Reply:
    return Reply(
        status=429,
        body={
            "error": {
                "message": "Slow down.",
                "type": "requests",
                "param": None,
                "code": "rate_limit_exceeded",
            }
        },
        headers={"Retry-After": str(retry_after)},
    )


def request() -> GenerateRequest:
    return GenerateRequest(prompt="a fox in a busy room", model="dall-e-2", size="256x256")


@pytest.fixture
def api() -> Iterator[FakeImagesAPI]:
    server = FakeImagesAPI().start()
    yield server
    server.close()


@pytest.fixture
def sleeps() -> list[float]:
    """What the client waited (recorded, not slept)."""
    return []


@pytest.fixture
def client(api: FakeImagesAPI, sleeps: list[float]) -> Iterator[OpenAIClient]:
    with OpenAIClient(api_key="unused", base_url=api.base_url, max_retries=0, sleep=sleeps.append) as made:
        yield made


def told(messages: list[str]) -> CallHooks:
    return CallHooks(on_progress=lambda progress: messages.append(progress.message))


# -- waiting and trying again ------------------------------------------------------------------


def test_a_busy_workshop_is_tried_again_after_the_wait_it_asks_for(api: FakeImagesAPI) -> None:
    api.reply(busy(1, ahead=3, wait_s=20.0, max_wait_s=15.0), images())
    messages: list[str] = []
    with OpenAIClient(api_key="unused", base_url=api.base_url, max_retries=0, timeout=30) as client:
        started = time.monotonic()
        result = client.run(request(), told(messages))
        elapsed = time.monotonic() - started

    assert len(result.data) == 1 and result.data[0].data == png()
    assert len(api.requests) == 2  # tried again, though max_retries is 0
    assert elapsed >= 0.95  # the second of Retry-After, not a backoff's half second
    assert messages[0] == "The workshop is busy: about 20 s, 3 ahead of you. Trying again in 1 s."
    assert messages[-1] == ""  # the wait is over: the line no longer says it is busy
    first, second = (float(sent.headers["x-stainless-read-timeout"]) for sent in api.requests)
    assert 29 < first <= 30
    assert second <= first - 0.95  # the second try says what is left of the call


def test_the_wait_is_neither_capped_nor_counted_as_a_retry(
    api: FakeImagesAPI, client: OpenAIClient, sleeps: list[float]
) -> None:
    """A busy room may say so several times, each time for longer than the 60 s cap of other waits."""
    api.reply(busy(120), busy(150), images())
    messages: list[str] = []

    result = client.run(request(), told(messages))

    assert len(result.data) == 1 and len(api.requests) == 3
    assert sum(sleeps) == pytest.approx(270.0) and max(sleeps) <= 1.0  # told again every second
    at_clock = [
        text
        for text in messages
        if re.fullmatch(re.escape(BUSY_TEXT) + r" Trying again at \d\d:\d\d\.", text)
    ]
    assert at_clock, messages
    assert f"{BUSY_TEXT} Trying again in 89 s." in messages  # the last minute and a half counts down
    assert f"{BUSY_TEXT} Trying again in 1 s." in messages
    assert messages[-1] == ""


def test_a_busy_answer_with_no_sound_wait_still_waits_a_second(
    api: FakeImagesAPI, client: OpenAIClient, sleeps: list[float]
) -> None:
    api.reply(busy(0), images())

    client.run(request(), CallHooks())

    assert sleeps == [1.0] and len(api.requests) == 2


def test_the_queue_object_gives_the_wait_when_no_header_does(
    api: FakeImagesAPI, client: OpenAIClient, sleeps: list[float]
) -> None:
    api.reply(Reply(status=429, body=busy_body(retry_after_s=3.0)), images())

    client.run(request(), CallHooks())

    assert sum(sleeps) == pytest.approx(3.0) and len(api.requests) == 2


# -- when the call's time is too short ------------------------------------------------------------


def test_a_wait_past_the_call_timeout_fails_at_once_saying_when(
    api: FakeImagesAPI, sleeps: list[float]
) -> None:
    api.reply(busy(120))
    client = OpenAIClient(api_key="unused", base_url=api.base_url, timeout=60, sleep=sleeps.append)
    with client, pytest.raises(WorkshopBusyError) as caught:
        client.run(request(), CallHooks())

    error = caught.value
    assert isinstance(error, RateLimitError) and error.status_code == 429 and error.code == "workshop_busy"
    assert (error.position, error.ahead, error.wait_s, error.max_wait_s, error.retry_after) == (
        38,
        37,
        240.0,
        240.0,
        120.0,
    )
    assert error.retry_at is not None
    assert abs((error.retry_at - datetime.now(timezone.utc)).total_seconds() - 120) < 5
    assert error.message == (
        f"{BUSY_TEXT} Try again at {error.retry_at.astimezone():%H:%M} (in 2 min): "
        "this call waits 60 s at most."
    )
    assert describe_error(error).endswith("Many people are making images at once: try again then.")
    assert sleeps == [] and len(api.requests) == 1


def test_a_call_timeout_shorter_than_the_wait_fails_at_once(api: FakeImagesAPI, client: OpenAIClient) -> None:
    api.reply(busy(20))

    with pytest.raises(WorkshopBusyError, match=r"\(in 20 s\): this call waits 10 s at most\. \(HTTP 429"):
        client.run(request(), CallHooks(timeout=10))

    assert float(api.requests[0].headers["x-stainless-read-timeout"]) <= 10


def test_a_queue_longer_than_the_call_waits_fails_at_once_however_soon_it_says_to_come_back(
    api: FakeImagesAPI, sleeps: list[float]
) -> None:
    """After the wait the call would still be behind a queue longer than its time: no use waiting."""
    api.reply(busy(10, wait_s=240.0))
    client = OpenAIClient(api_key="unused", base_url=api.base_url, timeout=60, sleep=sleeps.append)
    with client, pytest.raises(WorkshopBusyError) as caught:
        client.run(request(), CallHooks())

    assert caught.value.message.endswith("(in 10 s): this call waits 60 s at most.")
    assert sleeps == [] and len(api.requests) == 1


# -- cancelling the wait --------------------------------------------------------------------------


def test_cancel_ends_the_wait_at_once(api: FakeImagesAPI) -> None:
    api.reply(busy(30), images())
    messages: list[str] = []
    cancel = threading.Event()
    outcome: list[BaseException] = []
    hooks = CallHooks(on_progress=lambda progress: messages.append(progress.message), cancel=cancel)

    def call() -> None:
        try:
            client.run(request(), hooks)
        except BaseException as exc:
            outcome.append(exc)

    with OpenAIClient(api_key="unused", base_url=api.base_url, max_retries=0) as client:
        worker = threading.Thread(target=call)
        worker.start()
        wait_until(lambda: any(text.startswith(BUSY_TEXT) for text in messages))
        cancel.set()
        cancelled_at = time.monotonic()
        worker.join(WAIT_S)
        stopped_after = time.monotonic() - cancelled_at

    assert not worker.is_alive()
    assert stopped_after < 2.0  # not the 30 s the server asked for
    assert len(outcome) == 1 and isinstance(outcome[0], CancelledError)
    assert len(api.requests) == 1 and api.pending_replies == 1  # never sent again


# -- what stays as it was -------------------------------------------------------------------------


def test_a_rate_limit_is_still_retried_as_before(
    api: FakeImagesAPI, client: OpenAIClient, sleeps: list[float]
) -> None:
    """``rate_limit_exceeded`` counts against ``max_retries`` (0 here) and is no busy workshop."""
    api.reply(rate_limited(1), images())

    with pytest.raises(RateLimitError) as caught:
        client.run(request(), CallHooks())

    assert type(caught.value) is RateLimitError and caught.value.retry_after == 1.0
    assert len(api.requests) == 1 and sleeps == []


def test_a_long_rate_limit_still_says_what_the_server_asked(api: FakeImagesAPI, client: OpenAIClient) -> None:
    api.reply(rate_limited(3600))

    with pytest.raises(RateLimitError) as caught:
        client.run(request(), CallHooks())

    assert type(caught.value) is RateLimitError
    assert caught.value.message.startswith("Slow down. The server asks to wait 60 min before another try")


def test_the_read_timeout_header_is_sent_with_the_call_timeout(api: FakeImagesAPI) -> None:
    api.reply(images(), images(), images())
    with OpenAIClient(api_key="unused", base_url=api.base_url, timeout=(5, 45)) as client:
        client.run(request(), CallHooks())
        client.run(request(), CallHooks(timeout=12.5))
    with OpenAIClient(
        api_key="unused", base_url=api.base_url, default_headers={"X-Stainless-Read-Timeout": "7"}
    ) as client:
        client.run(request(), CallHooks())

    first, second, third = (sent.headers["x-stainless-read-timeout"] for sent in api.requests)
    assert 44 < float(first) <= 45 and 12 < float(second) <= 12.5
    assert third == "7"  # the caller's own value is kept


def test_a_busy_answer_with_hostile_numbers_keeps_to_what_is_sound() -> None:
    body = busy_body(position="38", ahead=-1, wait_s=float("nan"), max_wait_s=True, retry_after_s=1e20)
    body["error"]["message"] = "Busy here. Come back later."

    error = error_from_response(429, json.dumps(body))

    assert isinstance(error, WorkshopBusyError)
    assert (error.position, error.ahead, error.wait_s, error.max_wait_s, error.retry_after) == (None,) * 5
    assert error.situation == "Busy here."
    assert describe_error(error).endswith("try again in a few minutes.")


# -- in the studio ----------------------------------------------------------------------------------


def _studio(api: FakeImagesAPI) -> Any:
    from ipyimagegen.widgets import Studio

    studio = Studio(OpenAIClient(api_key="unused", base_url=api.base_url, max_retries=0), gallery=False)
    tab = studio.generate_tab
    tab.params.model, tab.params.size, tab.params.n = "dall-e-2", "256x256", 1
    tab.prompt_box.value = "a fox in a busy room"
    return studio


def test_the_studio_says_the_workshop_is_busy_and_when_it_tries_again(api: FakeImagesAPI) -> None:
    api.reply(busy(2), images())
    studio = _studio(api)
    tab = studio.generate_tab

    tab.controls.run_button.click()
    shown = wait_until(lambda: BUSY_TEXT in tab.controls.progress.value and tab.controls.progress.value)
    assert studio.runner.wait(WAIT_S)

    assert re.search(re.escape(BUSY_TEXT) + r" Trying again in [12] s\.", shown)
    assert "1 image in" in tab.status.value and "busy" not in tab.controls.progress.value
    assert len(api.requests) == 2
    studio.close()


def test_cancel_in_the_studio_stops_the_wait_for_room(api: FakeImagesAPI) -> None:
    api.reply(busy(30), images())
    studio = _studio(api)
    tab = studio.generate_tab

    tab.controls.run_button.click()
    wait_until(lambda: BUSY_TEXT in tab.controls.progress.value)
    job = studio.runner.job
    assert job is not None and job.thread is not None
    tab.controls.cancel_button.click()
    job.thread.join(2.0)  # the worker itself stops waiting at once

    assert not job.thread.is_alive()
    assert "Cancelled." in tab.status.value
    assert len(api.requests) == 1 and api.pending_replies == 1
    studio.close()


# -- against ipyimagegen serve -------------------------------------------------------------------


class HeldEngine(PreviewEngine):
    """Each call takes ``hold_s`` and then waits at the gate until the test opens it."""

    def __init__(self, hold_s: float) -> None:
        super().__init__()
        self.hold_s = hold_s
        self.gate = threading.Event()
        self.started = threading.Semaphore(0)

    def _generate(self, request: GenerateRequest, hooks: CallHooks) -> ImagesResponse:
        self.started.release()
        time.sleep(self.hold_s)
        self.gate.wait(WAIT_S)
        return super()._generate(request, hooks)


def test_a_busy_workshop_server_is_waited_out_and_the_call_made(tmp_path: Path) -> None:
    """The server's only slot is taken and a call lasts longer than it lets one wait: busy. While the
    client waits, the slot's call ends; the call is then tried again and made."""
    engine = HeldEngine(hold_s=0.5)
    engine.gate.set()
    config = ServerConfig(max_concurrency=1, max_queue_wait=0.2)
    with ServerThread(make_app(engine, config)) as server:
        with OpenAIClient(api_key="unused", base_url=server.base_url) as other:
            other.run(request(), CallHooks())  # the server learns how long a call takes
            engine.gate.clear()
            blocker = threading.Thread(target=lambda: other.run(request(), CallHooks()))
            blocker.start()
            assert engine.started.acquire(timeout=WAIT_S) and engine.started.acquire(timeout=WAIT_S)

            waited: list[float] = []

            def wait(seconds: float) -> None:
                if not waited:  # while the client waits, the call in the slot ends
                    engine.gate.set()
                    blocker.join(WAIT_S)
                waited.append(seconds)

            messages: list[str] = []
            with OpenAIClient(api_key="unused", base_url=server.base_url, sleep=wait) as client:
                result = client.run(request(), told(messages))
        health = requests.get(server.url + "/health", timeout=5)

    assert len(result.data) == 1
    assert waited and sum(waited) >= 10.0  # the server's Retry-After, not a backoff
    busy_said = [text for text in messages if text.startswith("The workshop is busy: about")]
    assert busy_said and re.search(r"Trying again in \d+ s\.$", busy_said[0]), messages
    assert messages[-1] == ""
    assert health.status_code == 200


def test_a_workshop_server_answers_busy_at_once_for_the_time_the_client_says_it_waits() -> None:
    """The server reads the client's ``x-stainless-read-timeout``: a call that the server would queue
    for a minute (its own limit is 4) is answered busy at once for a client that waits 45 s, and the
    client does not wait for a queue longer than its time."""
    config = ServerConfig(upstream_rate="1/min")
    with ServerThread(make_app(PreviewEngine(), config)) as server:
        with OpenAIClient(api_key="unused", base_url=server.base_url, timeout=45) as client:
            client.run(request(), CallHooks())  # takes the minute's image
            started = time.monotonic()
            with pytest.raises(WorkshopBusyError) as caught:
                client.run(request(), CallHooks())
            took = time.monotonic() - started
        health = requests.get(server.url + "/health", timeout=5)

    error = caught.value
    assert took < 5.0  # answered at once, not queued
    assert error.max_wait_s is not None and error.max_wait_s <= 45.0  # the client's, not the server's 240
    assert error.wait_s is not None and error.wait_s > 45.0
    assert error.retry_after is not None and error.retry_after < 45.0  # sooner, but the queue is longer
    assert error.retry_at is not None and "Try again at" in error.message
    assert health.status_code == 200
