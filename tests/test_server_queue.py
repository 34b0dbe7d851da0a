"""Fair shares of the upstream: participants served in turn, images shared evenly, a rate kept,
positions told (``GET /v1/queue``) and shown in the studio while a call waits."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

import openai
import pytest

from ipyimagegen.api.client import OpenAIClient
from ipyimagegen.api.model_list import named_page_url
from ipyimagegen.api.types import CallHooks, GenerateRequest
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.server import ServerThread, TokenStore, make_app
from ipyimagegen.server.config import ServerConfig
from ipyimagegen.server.fair_queue import FairQueue, Ticket
from ipyimagegen.server.pacer import LocalPacer, burst_of
from ipyimagegen.server.tokens import Rate
from waiting import wait_until

T = TypeVar("T")


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


def test_who_sends_again_as_each_answer_comes_keeps_their_place_in_the_round() -> None:
    """One keeping three calls waiting, two sending the next call as soon as an answer comes: the two
    are not sent behind the first each time their call runs."""

    async def scenario() -> list[str]:
        queue = FairQueue(1)
        served: list[str] = []
        enough = asyncio.Event()

        async def caller(key: str) -> None:
            while not enough.is_set():
                async with queue.turn(key, 1):
                    served.append(key)
                    if len(served) == 30:
                        enough.set()
                    await asyncio.sleep(0)

        callers = [caller("greedy") for _ in range(3)]
        await asyncio.gather(*callers, caller("p1"), caller("p2"))
        return served[:30]

    served = asyncio.run(scenario())
    assert served[2:] == ["p1", "p2", "greedy"] * 9 + ["p1"]  # after the first round, each in turn


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


class FakeClock:
    """Seconds that pass only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run_on(clock: FakeClock, scenario: Callable[[], Awaitable[T]]) -> T:
    """``scenario()`` in an event loop whose timers follow ``clock`` (so the queue's wake-ups fire as
    soon as the fake time passes them; the scenario only ever awaits ``settle()``)."""
    loop = asyncio.new_event_loop()
    loop.time = clock  # type: ignore[method-assign]
    try:
        return loop.run_until_complete(scenario())
    finally:
        loop.close()


async def settle() -> None:
    """Let every task that can run, run (timers due included)."""
    for _ in range(20):
        await asyncio.sleep(0)


async def advance(clock: FakeClock, seconds: float) -> None:
    clock.now += seconds
    await settle()


def start_calls(queue: FairQueue, keys: list[str], started: list[str]) -> list[asyncio.Future[None]]:
    """One call a key, each holding its slot until cancelled; ``started`` lists them as they start."""

    async def one(key: str) -> None:
        async with queue.turn(key, 1):
            started.append(key)
            await asyncio.Event().wait()

    return [asyncio.ensure_future(one(key)) for key in keys]


def test_the_rate_starts_with_a_seconds_burst_never_a_minutes() -> None:
    clock = FakeClock()

    async def scenario() -> list[int]:
        queue = FairQueue(32, Rate(60, 60.0), clock=clock)  # 60 a minute: one a second
        started: list[str] = []
        calls = start_calls(queue, [f"p{i}" for i in range(20)], started)
        counts = []
        await settle()
        counts.append(len(started))  # at once: a second's worth, not the minute's 60
        await advance(clock, 0.5)
        counts.append(len(started))
        await advance(clock, 0.5)
        counts.append(len(started))
        await advance(clock, 10.0)  # idle time banks no more than the burst
        counts.append(len(started))
        for _ in range(3):
            await advance(clock, 1.0)
            counts.append(len(started))
        for call in calls:
            call.cancel()
        await settle()
        return counts

    assert run_on(clock, scenario) == [1, 1, 2, 3, 4, 5, 6]


def test_the_burst_is_a_sixtieth_of_the_period_within_two_seconds_and_at_least_one_image() -> None:
    assert burst_of(Rate(60, 60.0)) == 1.0
    assert burst_of(Rate(300, 60.0)) == 5.0
    assert burst_of(Rate(60, 1.2)) == 1.0  # a compressed minute: a compressed second
    assert burst_of(Rate(7200, 3600.0)) == 4.0  # an hour's rate: two seconds of it
    assert burst_of(Rate(10, 1.0)) == 1.0


def test_a_call_larger_than_the_burst_waits_for_a_full_bucket_and_the_pace_holds() -> None:
    clock = FakeClock()
    pacer = LocalPacer(Rate(60, 60.0), clock)
    assert pacer.start(10) == 0.0  # the bucket is full: it goes, leaving ten seconds of debt
    assert pacer.start(1) == pytest.approx(10.0)
    clock.now += 9.5
    assert pacer.start(1) == pytest.approx(0.5)
    clock.now += 0.5
    assert pacer.start(1) == 0.0


def test_a_refusal_pauses_as_asked_halves_the_pace_and_the_pace_climbs_back_over_a_period() -> None:
    clock = FakeClock()
    pacer = LocalPacer(Rate(60, 60.0), clock)
    started_at = clock()
    assert pacer.start(1) == 0.0
    pacer.slow_down(5.0, started_at)
    assert pacer.start(1) == pytest.approx(5.0)  # paused as the upstream asked
    clock.now += 5.0
    assert pacer.share() == pytest.approx(0.5 + 0.5 * 5 / 60)
    assert pacer.start(1) == 0.0  # the upstream said when: one goes then
    assert pacer.start(1) == pytest.approx(1 / pacer.share())  # the next at about half the pace
    assert 1.0 / pacer.share() > 1.8
    clock.now += 60.0
    assert pacer.share() == 1.0
    assert pacer.start(1) == 0.0
    assert pacer.start(1) == pytest.approx(1.0)  # the full pace again


def test_a_burst_of_refusals_cuts_the_pace_once_and_a_later_refusal_again() -> None:
    clock = FakeClock()
    pacer = LocalPacer(Rate(600, 60.0), clock)  # ten a second, a burst of ten
    sent = clock()
    for _ in range(5):
        assert pacer.start(1) == 0.0
    for _ in range(5):  # the five were sent together: one cut
        pacer.slow_down(None, sent)
    assert pacer.share() == 0.5
    assert pacer.start(1) == pytest.approx(1.0)  # no Retry-After: a second's pause
    clock.now += 1.0
    later = clock()
    pacer.slow_down(None, later)  # sent after the cut: it cuts again
    assert pacer.share() == pytest.approx(0.5 * (0.5 + 0.5 * 1 / 60))


def test_without_a_rate_a_refusal_pauses_and_nothing_else() -> None:
    clock = FakeClock()
    pacer = LocalPacer(None, clock)
    assert all(pacer.start(10) == 0.0 for _ in range(100))
    pacer.slow_down(3.0, clock())
    assert pacer.start(1) == pytest.approx(3.0)
    clock.now += 3.0
    assert pacer.start(1) == 0.0


def test_the_queue_holds_every_participant_while_the_upstream_asked_to_wait() -> None:
    clock = FakeClock()

    async def scenario() -> list[list[str]]:
        queue = FairQueue(8, Rate(60, 60.0), clock=clock)
        refused: list[Ticket] = []

        async def refused_call() -> None:
            async with queue.turn("alice", 1) as ticket:
                refused.append(ticket)

        await asyncio.ensure_future(refused_call())
        queue.slow_down(refused[0], 4.0)
        started: list[str] = []
        calls = start_calls(queue, ["bob", "carol", "dave"], started)
        seen = []
        for step in (0.0, 3.9, 0.1, 1.0, 1.0, 1.0):
            await advance(clock, step)
            seen.append(list(started))
        for call in calls:
            call.cancel()
        await settle()
        return seen

    # nobody while the upstream asked to wait (4 s), one then, and the next ones at about half the pace
    assert run_on(clock, scenario) == [[], [], ["bob"], ["bob"], ["bob", "carol"], ["bob", "carol"]]


def test_a_call_sent_again_goes_first_in_its_participants_line() -> None:
    async def scenario() -> list[str]:
        queue = FairQueue(1)
        served: list[str] = []
        release = asyncio.Event()

        async def holder() -> None:
            async with queue.turn("holder", 1):
                await release.wait()

        async def one(key: str, name: str, again: bool = False) -> None:
            async with queue.turn(key, 1, again=again):
                served.append(name)

        hold = asyncio.ensure_future(holder())
        await asyncio.sleep(0)
        calls = [asyncio.ensure_future(one("alice", "a1")), asyncio.ensure_future(one("alice", "a2"))]
        calls.append(asyncio.ensure_future(one("bob", "b1")))
        await asyncio.sleep(0)
        calls.append(asyncio.ensure_future(one("alice", "a0 again", again=True)))
        await asyncio.sleep(0)
        release.set()
        await asyncio.gather(hold, *calls)
        return served

    assert asyncio.run(scenario()) == ["a0 again", "b1", "a1", "a2"]


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
    with ServerThread(make_app(engine, ServerConfig(max_concurrency=1), tokens=store)) as server:
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

        def second_page() -> dict:
            return requests.get(
                server.base_url + "/queue", headers={"Authorization": f"Bearer {second}"}, timeout=5
            ).json()

        page = wait_until(lambda: (found := second_page())["waiting"] == 2 and found, interval=0.05)
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
    with ServerThread(make_app(engine, ServerConfig(max_concurrency=1))) as server:
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
        wait_until(lambda: "waiting in the workshop queue (position 1)" in told, interval=0.05)
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
    assert client.workshop.queue_url is None
    client.close()


@pytest.mark.parametrize("upstream_rate", ["300/min", Rate(300, 60.0)])
def test_the_server_takes_an_upstream_rate(upstream_rate) -> None:
    import requests

    with ServerThread(
        make_app(PreviewEngine(), ServerConfig(upstream_rate=upstream_rate, max_concurrency=3))
    ) as server:
        health = requests.get(server.url + "/health", timeout=5).json()
    assert health["queue"] == {"running": 0, "waiting": 0, "at_once": 3, "rate": "300/min", "shared": False}


def test_the_studio_says_it_is_waiting_in_the_workshop_queue() -> None:
    from ipyimagegen.widgets import Studio

    engine = GatedEngine()
    with ServerThread(make_app(engine, ServerConfig(max_concurrency=1))) as server:
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
        wait_until(lambda: "waiting in the workshop queue" in tab.controls.progress.value, interval=0.05)
        shown = tab.controls.progress.value
        engine.gate.set()
        assert tab.runner.wait(20)
        blocker.join(20)
        other.close()
        client.close()
    assert "waiting in the workshop queue (position 1)" in shown
    assert "1 image in" in tab.status.value
