"""Fair shares of the upstream: participants served in turn, images shared evenly, a rate kept,
positions told (``GET /v1/queue``) and shown in the studio while a call waits."""

from __future__ import annotations

import asyncio
import threading
import time

import openai
import pytest

from ipyimagegen.api.client import OpenAIClient, named_page_url
from ipyimagegen.api.types import CallHooks, GenerateRequest
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.server import ServerThread, TokenStore, make_app
from ipyimagegen.server.fair_queue import FairQueue
from ipyimagegen.server.tokens import Rate


def _serve_order(queue: FairQueue, calls: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Start every call at once (in this order) and return the order they got their turn in."""
    served: list[tuple[str, int]] = []

    async def one(key: str, images: int) -> None:
        async with queue.turn(key, images):
            served.append((key, images))
            await asyncio.sleep(0)

    async def everything() -> None:
        release = asyncio.Event()

        async def holder() -> None:  # holds every slot until all the calls are in line
            async with queue.turn("holder", 1):
                await release.wait()

        holders = [asyncio.ensure_future(holder()) for _ in range(queue.concurrency)]
        await asyncio.sleep(0)
        callers = [asyncio.ensure_future(one(key, images)) for key, images in calls]
        await asyncio.sleep(0.01)
        release.set()
        await asyncio.gather(*holders, *callers)

    asyncio.run(everything())
    return served


def test_participants_are_served_in_turn_not_first_come_first_served() -> None:
    calls = [("alice", 1)] * 6 + [("bob", 1)] * 2 + [("carol", 1)] * 2
    served = [key for key, _ in _serve_order(FairQueue(1), calls)]
    assert served[:6] == ["alice", "bob", "carol", "alice", "bob", "carol"]
    assert served[6:] == ["alice"] * 4


def test_a_participant_asking_ten_at_a_time_gets_no_more_images_a_round() -> None:
    calls = [("greedy", 10)] * 3 + [("modest", 1)] * 30
    served = _serve_order(FairQueue(1), calls)
    modest_before_first_greedy = 0
    for key, _images in served:
        if key == "greedy":
            break
        modest_before_first_greedy += 1
    assert modest_before_first_greedy >= 9  # ten images' worth of turns for the others first
    images_by_turn = [key for key, images in served for _ in range(images)]
    first_half = images_by_turn[: len(images_by_turn) // 2]
    assert abs(first_half.count("greedy") - first_half.count("modest")) <= 10


def test_positions_follow_the_turns() -> None:
    async def scenario() -> tuple[list[int], list[int]]:
        queue = FairQueue(1)
        hold = asyncio.Event()

        async def one(key: str) -> None:
            async with queue.turn(key, 1):
                await hold.wait()

        tasks = [asyncio.ensure_future(one("runner"))]
        await asyncio.sleep(0)
        tasks += [asyncio.ensure_future(one(k)) for k in ("alice", "alice", "alice", "bob")]
        await asyncio.sleep(0.01)
        found = queue.positions("alice"), queue.positions("bob")
        hold.set()
        await asyncio.gather(*tasks)
        return found

    alice, bob = asyncio.run(scenario())
    assert alice == [1, 3, 4] and bob == [2]


def test_a_call_cancelled_while_waiting_leaves_the_line() -> None:
    async def scenario() -> tuple[int, int, int]:
        queue = FairQueue(1)
        hold = asyncio.Event()

        async def one(key: str) -> None:
            async with queue.turn(key, 1):
                await hold.wait()

        first = asyncio.ensure_future(one("a"))
        await asyncio.sleep(0)
        waiting = asyncio.ensure_future(one("b"))
        await asyncio.sleep(0.01)
        before = queue.waiting
        waiting.cancel()
        await asyncio.sleep(0.01)
        after = queue.waiting
        hold.set()
        await first
        return before, after, queue.running

    assert asyncio.run(scenario()) == (1, 0, 0)


def test_the_rate_bounds_the_images_started() -> None:
    async def scenario() -> list[float]:
        queue = FairQueue(10, Rate(2, 0.5))  # 2 images a half second: a burst of 2, then one each 0.25 s
        started: list[float] = []
        begin = time.monotonic()

        async def one(key: str) -> None:
            async with queue.turn(key, 1):
                started.append(time.monotonic() - begin)

        await asyncio.gather(*(one(f"p{i}") for i in range(5)))
        return started

    started = asyncio.run(scenario())
    assert started[1] < 0.1 and started[2] > 0.2 and started[4] > 0.7


# -- the server's queue page and the client that reads it -------------------------------------


class GatedEngine(PreviewEngine):
    """Each call waits at the gate until the test opens it."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.started = threading.Semaphore(0)

    def _generate(self, request, hooks):
        self.started.release()
        self.gate.wait(20)
        return super()._generate(request, hooks)


def test_the_queue_page_tells_a_participant_where_their_calls_stand(tmp_path) -> None:
    import requests

    store = TokenStore.in_dir(tmp_path)
    first, _ = store.create("first")
    second, _ = store.create("second")
    engine = GatedEngine()
    with ServerThread(make_app(engine, tokens=store, max_concurrency=1)) as server:
        calls = [
            threading.Thread(
                target=lambda token=token: openai.OpenAI(
                    base_url=server.base_url, api_key=token
                ).images.generate(model="dall-e-2", prompt="a fox", size="256x256")
            )
            for token in (first, second, second)
        ]
        calls[0].start()
        assert engine.started.acquire(timeout=10)
        for call in calls[1:]:
            call.start()
        deadline = time.monotonic() + 10
        while True:
            page = requests.get(
                server.base_url + "/queue", headers={"Authorization": f"Bearer {second}"}, timeout=5
            ).json()
            if page["waiting"] == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        mine = requests.get(
            server.base_url + "/queue", headers={"Authorization": f"Bearer {first}"}, timeout=5
        ).json()
        assert requests.get(server.base_url + "/queue", timeout=5).status_code == 401
        models = requests.get(
            server.base_url + "/models", headers={"Authorization": f"Bearer {first}"}, timeout=5
        )
        engine.gate.set()
        for call in calls:
            call.join(20)
    assert page == {"object": "queue", "running": 1, "waiting": 2, "positions": [1, 2]}
    assert mine["positions"] == []
    assert models.headers["x-ipyimagegen-queue"] == "queue"


def test_the_client_reports_its_place_in_the_queue_while_it_waits() -> None:
    engine = GatedEngine()
    with ServerThread(make_app(engine, max_concurrency=1)) as server:
        client = OpenAIClient(api_key="unused", base_url=server.base_url)
        assert client.models()  # GET /models names the queue page
        blocker = threading.Thread(
            target=lambda: client.generate(prompt="first", model="dall-e-2", size="256x256")
        )
        blocker.start()
        assert engine.started.acquire(timeout=10)
        told: list[str] = []
        hooks = CallHooks(on_progress=lambda progress: told.append(progress.message))
        waiter = threading.Thread(
            target=lambda: client.run(
                GenerateRequest(prompt="second", model="dall-e-2", size="256x256"), hooks
            )
        )
        waiter.start()
        deadline = time.monotonic() + 10
        while "waiting in the workshop queue (position 1)" not in told and time.monotonic() < deadline:
            time.sleep(0.05)
        engine.gate.set()
        blocker.join(20)
        waiter.join(20)
        client.close()
    assert "waiting in the workshop queue (position 1)" in told
    assert told[-1] == ""  # cleared once it ran


def test_only_a_plain_queue_name_under_the_api_is_followed() -> None:
    base = "https://workshop.example/v1"
    assert named_page_url(base, "queue") == "https://workshop.example/v1/queue"
    for hostile in (
        "https://evil.example/steal",
        "//evil.example/x",
        "../admin",
        "queue?x=1",
        "",
        None,
        "a b",
    ):
        assert named_page_url(base, hostile) is None


def test_the_public_api_is_never_asked_for_a_queue() -> None:
    client = OpenAIClient(api_key="sk-test")
    assert client._queue_url is None
    client.close()


@pytest.mark.parametrize("upstream_rate", ["300/min", Rate(300, 60.0)])
def test_the_server_takes_an_upstream_rate(upstream_rate) -> None:
    import requests

    with ServerThread(make_app(PreviewEngine(), upstream_rate=upstream_rate, max_concurrency=3)) as server:
        health = requests.get(server.url + "/health", timeout=5).json()
    assert health["queue"] == {"running": 0, "waiting": 0, "at_once": 3, "rate": "300/min"}


def test_the_studio_says_it_is_waiting_in_the_workshop_queue() -> None:
    from ipyimagegen.widgets import Studio

    engine = GatedEngine()
    with ServerThread(make_app(engine, max_concurrency=1)) as server:
        other = OpenAIClient(api_key="unused", base_url=server.base_url)
        blocker = threading.Thread(
            target=lambda: other.generate(prompt="first", model="dall-e-2", size="256x256")
        )
        blocker.start()
        assert engine.started.acquire(timeout=10)
        client = OpenAIClient(api_key="unused", base_url=server.base_url)
        studio = Studio(client, gallery=False)
        tab = studio.generate_tab
        tab.params.model, tab.params.size, tab.params.n = "dall-e-2", "256x256", 1
        tab.prompt_box.value = "a fox in the queue"
        tab.controls.run_button.click()
        deadline = time.monotonic() + 10
        while (
            "waiting in the workshop queue" not in tab.controls.progress.value and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        shown = tab.controls.progress.value
        engine.gate.set()
        assert tab.runner.wait(20)
        blocker.join(20)
        other.close()
        client.close()
    assert "waiting in the workshop queue (position 1)" in shown
    assert "1 image in" in tab.status.value
