"""A room of servers on one key: reservations as leases (settled, refunded, given back after a crash),
calls nobody waits for never sent, a bound on the wait (429 ``workshop_busy``), and one pace for
servers that share a database."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import io
import threading
import time
from collections.abc import Iterator

import openai
import pytest
import requests
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ipyimagegen.api.client import OpenAIClient
from ipyimagegen.server import ServerThread, TokenStore, make_app
from ipyimagegen.server.config import ServerConfig
from ipyimagegen.server.leases import Holder, reserved_images
from ipyimagegen.server.replicas import Replicas
from ipyimagegen.server.shared_pace import SharedPacer
from ipyimagegen.server.tokens import PostgresTokenStore, Rate
from postgres_helpers import Cluster, postgres_cluster
from waiting import wait_until


def _png() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


ANSWER = {"created": 1767225600, "data": [{"b64_json": _png()}]}


class SlowUpstream:
    """An upstream whose calls take ``delay`` seconds; it counts the calls it got and finished."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.arrived: list[str] = []
        self.finished = 0

    def app(self) -> Starlette:
        async def images(request: Request) -> JSONResponse:
            body = await request.json()
            self.arrived.append(body["prompt"])
            await asyncio.sleep(self.delay)
            self.finished += 1
            return JSONResponse(ANSWER)

        return Starlette(routes=[Route("/v1/images/generations", images, methods=["POST"])])


@pytest.fixture
def store(tmp_path) -> TokenStore:
    return TokenStore.in_dir(tmp_path)


def _images(store: TokenStore, name: str) -> int:
    return store.get(name).images


def _proxy(upstream: ServerThread, store: TokenStore, **config) -> ServerThread:
    client = OpenAIClient(base_url=upstream.base_url, api_key="sk-upstream-key-000000", max_retries=0)
    return ServerThread(make_app(client, ServerConfig(**config), tokens=store)).start()


def _post(proxy: ServerThread, token: str, prompt: str, **kwargs) -> requests.Response:
    return requests.post(
        f"{proxy.base_url}/images/generations",
        json={"model": "gpt-image-2", "prompt": prompt},
        headers={"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})},
        timeout=kwargs.pop("timeout", 30),
    )


# -- leases ------------------------------------------------------------------------------------------


def test_a_reservation_is_a_lease_settled_once_or_refunded_once(store: TokenStore) -> None:
    _, info = store.create("ada", budget=10)
    holder = Holder.new("server-a")
    lease = store.reserve(info.id, 3, 0.3, holder)
    with store.database.transaction() as db:
        assert reserved_images(db) == 3
    store.settle(info.id, 0.3, 0.2, lease, images=3)
    with store.database.transaction() as db:
        assert reserved_images(db) == 0
    assert _images(store, "ada") == 3  # delivered: charged
    second = store.reserve(info.id, 2, 0.2, holder)
    store.record_failure(info.id, 2, 0.2, second)
    store.record_failure(info.id, 2, 0.2, second)  # a second refund of the same lease gives nothing back
    assert _images(store, "ada") == 3
    assert store.get("ada").errors == 2


def test_a_restarted_server_gives_back_what_its_last_run_reserved(store: TokenStore) -> None:
    _, info = store.create("ada", budget=10)
    killed = Holder.new("server-a")
    Replicas(store.database, killed).join()
    store.reserve(info.id, 4, 0.0, killed)  # then kill -9: never settled, never refunded
    other = Holder.new("server-b")
    Replicas(store.database, other).join()
    store.reserve(info.id, 1, 0.0, other)  # a live server's reservation stays
    assert _images(store, "ada") == 5
    assert Replicas(store.database, Holder.new("server-a")).join() == 4  # the same name, a new run
    assert _images(store, "ada") == 1


def test_any_server_gives_back_what_a_server_not_seen_for_a_while_reserved(store: TokenStore) -> None:
    _, info = store.create("ada")
    dead = Replicas(store.database, Holder.new("server-a"), lost_after=30.0)
    dead.join()
    lease = store.reserve(info.id, 2, 0.0, dead.holder)
    alive = Replicas(store.database, Holder.new("server-b"), lost_after=30.0)
    alive.join()
    assert alive.reconcile() == 0  # seen a moment ago: alive
    with store.database.transaction() as db:  # 40 s without a beat
        db.execute("UPDATE replicas SET seen = seen - 40 WHERE name = 'server-a'")
        db.execute("UPDATE leases SET created = created - 40")
    assert alive.reconcile() == 2
    assert [replica.name for replica in alive.alive()] == ["server-b"]
    assert _images(store, "ada") == 0
    # the server was only slow: it delivers after all, and what was delivered is charged
    store.settle(info.id, 0.0, 0.0, lease, images=2)
    assert _images(store, "ada") == 2


# -- calls nobody waits for ------------------------------------------------------------------------


def test_a_queued_call_whose_client_left_is_never_sent_and_is_refunded(store: TokenStore) -> None:
    upstream = SlowUpstream(delay=1.5)
    first, _ = store.create("first")
    second, _ = store.create("second")
    with ServerThread(upstream.app()) as up, _proxy(up, store, max_concurrency=1) as proxy:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            running = pool.submit(_post, proxy, first, "runs")
            wait_until(lambda: upstream.arrived == ["runs"], timeout=5)
            with pytest.raises(requests.Timeout):  # the client gives up while its call waits
                _post(proxy, second, "gives up", timeout=0.5)
            assert running.result().status_code == 200
        time.sleep(0.5)
        assert upstream.arrived == ["runs"]  # the call nobody waits for was never sent
        wait_until(lambda: _images(store, "second") == 0, timeout=5)
        assert _images(store, "first") == 1
        assert store.get("second").errors == 1


def test_a_queued_call_whose_turn_comes_too_late_for_its_client_is_told_and_never_sent(
    store: TokenStore,
) -> None:
    upstream = SlowUpstream(delay=2.0)
    first, _ = store.create("first")
    second, _ = store.create("second")
    with ServerThread(upstream.app()) as up, _proxy(up, store, max_concurrency=1) as proxy:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            running = pool.submit(_post, proxy, first, "runs")
            wait_until(lambda: upstream.arrived == ["runs"], timeout=5)
            # the connection stays open (a proxy in between holds it), but the client said it waits 0.5 s
            late = _post(proxy, second, "too late", headers={"x-stainless-read-timeout": "0.5"})
            assert running.result().status_code == 200
        assert late.status_code == 429 and late.json()["error"]["code"] == "workshop_busy"
        assert int(late.headers["retry-after"]) >= 1
        assert upstream.arrived == ["runs"]
        assert _images(store, "second") == 0


def test_a_running_call_whose_client_left_is_cancelled_and_refunded(store: TokenStore) -> None:
    upstream = SlowUpstream(delay=1.5)
    token, _ = store.create("ada")
    with ServerThread(upstream.app()) as up, _proxy(up, store) as proxy:
        with pytest.raises(requests.Timeout):
            _post(proxy, token, "gives up", timeout=0.5)
        wait_until(lambda: _images(store, "ada") == 0 and store.get("ada").errors == 1, timeout=5)
        with store.database.transaction() as db:
            assert reserved_images(db) == 0


# -- a bound on the wait -----------------------------------------------------------------------------


def test_a_call_that_would_wait_too_long_is_told_at_once_with_its_place_and_when_to_come_back(
    store: TokenStore,
) -> None:
    upstream = SlowUpstream(delay=0.05)
    tokens = [store.create(f"p{index}")[0] for index in range(4)]
    # one image every 10 s: the first goes at once, the second waits 10 s, the third 20 s
    with (
        ServerThread(upstream.app()) as up,
        _proxy(up, store, upstream_rate=Rate(6, 60.0), max_queue_wait=15.0) as proxy,
    ):
        assert _post(proxy, tokens[0], "first").status_code == 200
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            waiting = pool.submit(_post, proxy, tokens[1], "second")
            wait_until(lambda: requests.get(proxy.url + "/health", timeout=5).json()["queue"]["waiting"] == 1)
            began = time.monotonic()
            busy = _post(proxy, tokens[2], "third")
            assert time.monotonic() - began < 2  # answered at once, not after the wait
            error = busy.json()["error"]
            assert (
                busy.status_code == 429 and error["code"] == "workshop_busy" and error["type"] == "requests"
            )
            assert error["queue"]["ahead"] == 1 and error["queue"]["position"] == 2
            assert 15 < error["queue"]["wait_s"] <= 21 and error["queue"]["max_wait_s"] == 15.0
            retry_after = int(busy.headers["retry-after"])
            assert 10 <= retry_after <= 10 + 1 and busy.headers["x-should-retry"] == "true"
            assert "1 call ahead of you" in error["message"] and "Try again in" in error["message"]
            assert _images(store, "p2") == 0  # nothing reserved for it
            # an official SDK sees the API's error
            sdk = openai.OpenAI(base_url=proxy.base_url, api_key=tokens[3], max_retries=0)
            with pytest.raises(openai.RateLimitError) as raised:
                sdk.images.generate(model="gpt-image-2", prompt="fourth")
            assert raised.value.code == "workshop_busy"
            waiting.cancel()


def test_a_client_that_waits_less_than_the_queue_is_told_at_once(store: TokenStore) -> None:
    upstream = SlowUpstream(delay=0.05)
    first, _ = store.create("first")
    second, _ = store.create("second")
    with ServerThread(upstream.app()) as up, _proxy(up, store, upstream_rate=Rate(6, 60.0)) as proxy:
        assert _post(proxy, first, "first").status_code == 200
        busy = _post(proxy, second, "second", headers={"x-stainless-read-timeout": "5"})
        assert busy.status_code == 429 and busy.json()["error"]["code"] == "workshop_busy"
        assert busy.json()["error"]["queue"]["max_wait_s"] <= 5


# -- one pace for the room -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with postgres_cluster() as running:
        yield running


def _shared_pacers(url: str, rate: Rate, count: int) -> tuple[PostgresTokenStore, list[SharedPacer]]:
    store = PostgresTokenStore(url)
    pacers = []
    for index in range(count):
        holder = Holder.new(f"server-{index}")
        Replicas(store.database, holder).join()
        pacers.append(SharedPacer(store.database, holder, rate))
    return store, pacers


def _drive(pacers: list[SharedPacer], lines: list[int], seconds: float) -> list[list[float]]:
    """Each pacer asks for one image after another for ``seconds``, saying it has ``lines`` participants
    waiting; the times (monotonic) each got one."""
    started: list[list[float]] = [[] for _ in pacers]
    stop = time.monotonic() + seconds

    def run(index: int) -> None:
        while time.monotonic() < stop:
            wait = pacers[index].start(1, waiting=lines[index])
            if wait == 0:
                started[index].append(time.monotonic())
            else:
                time.sleep(min(wait, 0.05))

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(pacers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return started


def test_servers_sharing_a_database_start_no_more_than_the_rooms_rate_together(cluster: Cluster) -> None:
    store, pacers = _shared_pacers(cluster.database(), Rate(120, 60.0), 3)
    try:
        started = _drive(pacers, [1, 1, 1], 6.0)
    finally:
        for pacer in pacers:
            pacer.close()
        store.close()
    times = sorted(moment for each in started for moment in each)
    # two a second for the room, never three servers' worth; a bucket of one image (the upstream's 2 less one)
    assert 10 <= len(times) <= 1 + 2 * 6.0 + 1
    assert all(len([t for t in times if start <= t < start + 1.0]) <= 3 for start in times)
    assert all(each for each in started)  # every server got its turns


def test_servers_share_the_rate_by_the_participants_each_has_waiting(cluster: Cluster) -> None:
    store, pacers = _shared_pacers(cluster.database(), Rate(600, 60.0), 2)
    try:
        started = _drive(pacers, [9, 1], 5.0)
    finally:
        for pacer in pacers:
            pacer.close()
        store.close()
    busy, quiet = len(started[0]), len(started[1])
    assert 0.8 <= busy / (busy + quiet) <= 0.95  # nine shares to one


def test_a_refusal_one_server_gets_pauses_the_whole_room(cluster: Cluster) -> None:
    store, (first, second) = _shared_pacers(cluster.database(), Rate(600, 60.0), 2)
    try:
        assert wait_until(lambda: first.start(1) == 0.0, timeout=5)
        first.slow_down(3.0, time.monotonic())
        time.sleep(0.3)  # the pause reaches the database
        began = time.monotonic()
        wait_until(lambda: second.start(1) == 0.0, timeout=10, interval=0.02)
        assert time.monotonic() - began >= 2.0
    finally:
        first.close()
        second.close()
        store.close()


def test_the_rooms_rate_is_written_once_and_read_by_a_server_started_without_it(cluster: Cluster) -> None:
    store, (first,) = _shared_pacers(cluster.database(), Rate(90, 60.0), 1)
    try:
        later = SharedPacer(store.database, Holder.new("later"), None)
        assert later.rate == Rate(90, 60.0)
        later.close()
    finally:
        first.close()
        store.close()


def test_the_hosts_page_shows_the_servers_of_the_room_and_what_is_reserved(store: TokenStore) -> None:
    upstream = SlowUpstream(delay=1.0)
    host, _ = store.create("host", admin=True)
    token, _ = store.create("ada")
    with ServerThread(upstream.app()) as up, _proxy(up, store, replica_name="room-a") as proxy:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            running = pool.submit(_post, proxy, token, "runs")
            wait_until(lambda: upstream.arrived == ["runs"], timeout=5)
            room = requests.get(
                proxy.url + "/admin/api/room", headers={"Authorization": f"Bearer {host}"}, timeout=5
            ).json()
            assert room["reserved_images"] == 1
            assert running.result().status_code == 200
        wait_until(lambda: requests.get(proxy.url + "/health", timeout=5).status_code == 200)
        time.sleep(3.5)  # one beat: the server's row tells what it runs
        room = requests.get(
            proxy.url + "/admin/api/room", headers={"Authorization": f"Bearer {host}"}, timeout=5
        ).json()
        assert room["servers"] == [{"name": "room-a", "running": 0, "waiting": 0}]
        assert room["reserved_images"] == 0


def test_a_participant_told_to_come_back_later_gets_no_place_sooner_by_sending_more_calls(
    store: TokenStore,
) -> None:
    upstream = SlowUpstream(delay=0.05)
    first, _ = store.create("first")
    greedy, _ = store.create("greedy")
    polite, _ = store.create("polite")
    with (
        ServerThread(upstream.app()) as up,
        _proxy(up, store, upstream_rate=Rate(6, 60.0), max_queue_wait=5.0) as proxy,
    ):
        assert _post(proxy, first, "first").status_code == 200  # the next image in 10 s
        refused = _post(proxy, greedy, "greedy 1")
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "workshop_busy"
        told = int(refused.headers["retry-after"])
        assert 5 <= told <= 11
        time.sleep(6.0)  # the queue could take a call of five seconds' wait now
        again = _post(proxy, greedy, "greedy 2")  # another lane of the same participant: still told to wait
        assert again.status_code == 429 and again.json()["error"]["code"] == "workshop_busy"
        assert int(again.headers["retry-after"]) <= told - 3
        fresh = _post(proxy, polite, "polite", timeout=30)  # somebody not told to wait gets the place
        assert fresh.status_code == 200
        assert upstream.arrived == ["first", "polite"]


def test_giving_back_a_dead_servers_leases_while_others_reserve_never_deadlocks(cluster: Cluster) -> None:
    store = PostgresTokenStore(cluster.database())
    try:
        ids = [store.create(f"p{index}")[1].id for index in range(12)]
        dead = Replicas(store.database, Holder.new("dead"))
        dead.join()
        for _ in range(3):
            for token_id in ids:
                store.reserve(token_id, 1, 0.01, dead.holder)
        live = Holder.new("live")
        Replicas(store.database, live).join()
        with store.database.transaction() as db:
            db.execute("UPDATE replicas SET seen = seen - 60 WHERE name = 'dead'")
            db.execute("UPDATE leases SET created = created - 60")
        errors: list[BaseException] = []

        def reserve_and_refund(offset: int) -> None:
            try:
                for step in range(30):  # tokens in the opposite order to the refunds'
                    token_id = ids[-1 - (offset + step) % len(ids)]
                    lease = store.reserve(token_id, 1, 0.01, live)
                    store.record_failure(token_id, 1, 0.01, lease)
            except BaseException as exc:  # noqa: BLE001 - the test reports it
                errors.append(exc)

        threads = [threading.Thread(target=reserve_and_refund, args=(offset,)) for offset in range(4)]
        for thread in threads:
            thread.start()
        given_back = Replicas(store.database, Holder.new("another"), lost_after=30.0).reconcile()
        for thread in threads:
            thread.join()
        assert not errors, errors
        assert given_back == 36
        assert sum(info.images for info in store.tokens()) == 0
        assert store.workshop().images == 0
    finally:
        store.close()


def test_a_server_with_no_free_slot_does_not_hold_back_the_others(cluster: Cluster) -> None:
    store, (free, full) = _shared_pacers(cluster.database(), Rate(600, 60.0), 2)
    try:
        assert wait_until(lambda: full.start(1, waiting=5) == 0.0, timeout=5)  # it wants, for five
        full.idle()  # then its slots are all taken: it wants no images until one frees
        time.sleep(0.2)
        started = _drive([free], [1], 2.0)[0]
        assert len(started) >= 12  # ten a second: about all of them, not a share
    finally:
        free.close()
        full.close()
        store.close()


def test_the_queue_says_it_wants_no_images_while_every_slot_is_taken() -> None:
    from ipyimagegen.server.fair_queue import FairQueue
    from ipyimagegen.server.pacer import LocalPacer

    class Recording(LocalPacer):
        idles = 0

        def idle(self) -> None:
            self.idles += 1

    async def scenario() -> int:
        pacer = Recording(Rate(600, 60.0))
        queue = FairQueue(1, pacer=pacer)
        release = asyncio.Event()

        async def call(key: str) -> None:
            async with queue.turn(key, 1):
                await release.wait()

        first = asyncio.ensure_future(call("a"))
        await asyncio.sleep(0.05)
        before = pacer.idles
        second = asyncio.ensure_future(call("b"))  # waits: the one slot is taken
        await asyncio.sleep(0.05)
        release.set()
        await asyncio.gather(first, second)
        return pacer.idles - before

    assert asyncio.run(scenario()) >= 1


def test_a_participant_told_to_come_back_keeps_a_place_at_the_front_of_the_round() -> None:
    from ipyimagegen.server.fair_queue import FairQueue

    async def scenario() -> list[str]:
        queue = FairQueue(1)
        release = asyncio.Event()
        order: list[str] = []

        async def call(key: str) -> None:
            async with queue.turn(key, 1):
                order.append(key)
                await release.wait()

        calls = [asyncio.ensure_future(call("running"))]
        await asyncio.sleep(0.01)
        calls += [asyncio.ensure_future(call(key)) for key in ("b", "c")]
        await asyncio.sleep(0.01)
        queue.hold_place("b", time.monotonic() + 60)  # b has a call here already: no place to hold
        queue.hold_place("outside", time.monotonic() + 60)  # refused a while ago, back now
        assert queue.estimate("outside", 1).ahead == 0 and queue.estimate("late", 1).ahead == 2
        calls += [asyncio.ensure_future(call(key)) for key in ("late", "outside")]
        await asyncio.sleep(0.01)
        for _ in range(4):
            release.set()
            await asyncio.sleep(0.01)
        await asyncio.gather(*calls)
        return order

    assert asyncio.run(scenario()) == ["running", "outside", "b", "c", "late"]
