"""A token revoked or expired while its calls wait is honoured at once: the calls still waiting are
refused (401, with the reason) when their turn comes and their images are given back; only the call
already running is served. Checked on SQLite, through the proxy (where each call is money), and on
two servers sharing one PostgreSQL."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.server import ServerThread, TokenStore, make_app
from ipyimagegen.server.config import ServerConfig
from ipyimagegen.server.tokens import Refusal, open_store
from ipyimagegen.server.upstream import upstream_backend
from waiting import wait_until


class GatedEngine(PreviewEngine):
    """Each call waits at the gate until the test opens it; ``calls`` counts the calls that ran."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.started = threading.Semaphore(0)
        self.calls = 0

    def _generate(self, request, hooks):
        self.calls += 1
        self.started.release()
        self.gate.wait(30)
        return super()._generate(request, hooks)


def _post(base_url: str, token: str) -> requests.Response:
    return requests.post(
        base_url + "/images/generations",
        json={"model": "dall-e-2", "prompt": "a fox", "size": "256x256", "response_format": "b64_json"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )


def _queue_calls(base_urls: list[str], token: str, count: int, waiting: int) -> concurrent.futures.Future:
    """Send ``count`` calls (spread over the servers) and return once ``waiting`` of them wait in line."""
    pool = concurrent.futures.ThreadPoolExecutor(count)
    futures = [pool.submit(_post, base_urls[index % len(base_urls)], token) for index in range(count)]
    wait_until(
        lambda: sum(_waiting(url, token) for url in base_urls) >= waiting,
        timeout=20,
        interval=0.05,
        message=f"{waiting} calls to wait in line",
    )
    pool.shutdown(wait=False)
    everything: concurrent.futures.Future = concurrent.futures.Future()
    threading.Thread(
        target=lambda: everything.set_result([future.result() for future in futures]), daemon=True
    ).start()
    return everything


def _waiting(base_url: str, token: str) -> int:
    page = requests.get(base_url + "/queue", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    return len(page.json().get("positions", [])) if page.status_code == 200 else 0


def _outcomes(replies: list[requests.Response]) -> dict[str, int]:
    counted: dict[str, int] = {}
    for reply in replies:
        if reply.status_code == 200:
            key = "made"
        else:
            error = reply.json()["error"]
            key = f"{reply.status_code} {error['code']}: {error['message'].partition(': ask')[0]}"
        counted[key] = counted.get(key, 0) + 1
    return counted


def test_a_revoke_refuses_the_calls_still_waiting_and_gives_their_images_back(tmp_path) -> None:
    store = TokenStore.in_dir(tmp_path)
    token, _ = store.create("greedy", budget=100)
    engine = GatedEngine()
    with ServerThread(make_app(engine, ServerConfig(max_concurrency=1), tokens=store)) as server:
        replies = _queue_calls([server.base_url], token, 12, waiting=11)
        assert engine.started.acquire(timeout=10)
        store.revoke("greedy")
        engine.gate.set()
        outcomes = _outcomes(replies.result(timeout=60))
        assert requests.get(server.url + "/health", timeout=5).status_code == 200
    assert outcomes == {
        "made": 1,
        "401 invalid_api_key: This participant token was revoked": 11,
    }
    assert engine.calls == 1
    record = store.get("greedy")
    assert record.images == 1 and record.errors == 11  # the eleven refused calls' images are given back


def test_a_token_that_expires_while_its_calls_wait_is_refused_when_their_turn_comes(tmp_path) -> None:
    store = TokenStore.in_dir(tmp_path)
    token, _ = store.create("late", expires=time.time() + 3)
    engine = GatedEngine()
    with ServerThread(make_app(engine, ServerConfig(max_concurrency=1), tokens=store)) as server:
        replies = _queue_calls([server.base_url], token, 5, waiting=4)
        assert engine.started.acquire(timeout=10)
        time.sleep(max(0.0, store.get("late").expires - time.time()) + 0.2)
        engine.gate.set()
        outcomes = _outcomes(replies.result(timeout=60))
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(store.get("late").expires))
    assert outcomes == {"made": 1, f"401 invalid_api_key: This participant token expired at {when}": 4}
    assert engine.calls == 1 and store.get("late").images == 1


def test_a_revoke_stops_waiting_calls_before_they_reach_the_upstream(tmp_path) -> None:
    engine = GatedEngine()
    with ServerThread(make_app(engine)) as upstream:
        store = TokenStore.in_dir(tmp_path)
        token, _ = store.create("spender")
        proxy = make_app(upstream_backend(upstream.base_url), ServerConfig(max_concurrency=1), tokens=store)
        with ServerThread(proxy) as server:
            replies = _queue_calls([server.base_url], token, 8, waiting=7)
            assert engine.started.acquire(timeout=10)
            store.revoke("spender")
            engine.gate.set()
            outcomes = _outcomes(replies.result(timeout=60))
    assert outcomes == {"made": 1, "401 invalid_api_key: This participant token was revoked": 7}
    assert engine.calls == 1  # nothing more was sent upstream
    assert store.get("spender").images == 1


def test_reserving_for_a_revoked_or_expired_token_is_refused_in_the_same_statement(tmp_path) -> None:
    store = TokenStore.in_dir(tmp_path)
    store.create("gone")
    store.create("past", expires=time.time() - 1)
    gone = store.revoke("gone")
    with pytest.raises(Refusal) as revoked:
        store.reserve(gone.id, 1)
    with pytest.raises(Refusal) as expired:
        store.reserve(store.get("past").id, 1)
    assert (revoked.value.what, expired.value.what) == ("revoked", "expired")
    assert store.get("gone").images == 0 and store.get("past").images == 0
    assert store.workshop().images == 0


# -- two servers on one PostgreSQL ---------------------------------------------------------------


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    from postgres_helpers import postgres_cluster

    with postgres_cluster() as cluster:
        yield cluster.database()


def test_a_revoke_stops_the_waiting_calls_of_both_servers_on_postgres(database: str) -> None:
    host = open_store(database)
    token, _ = host.create("greedy")
    engines = [GatedEngine(), GatedEngine()]
    stores = [open_store(database), open_store(database)]
    servers = [
        ServerThread(make_app(engine, ServerConfig(max_concurrency=1), tokens=store)).start()
        for engine, store in zip(engines, stores, strict=True)
    ]
    try:
        replies = _queue_calls([server.base_url for server in servers], token, 30, waiting=28)
        for engine in engines:
            assert engine.started.acquire(timeout=10)
        host.revoke("greedy")
        for engine in engines:
            engine.gate.set()
        outcomes = _outcomes(replies.result(timeout=60))
        for server in servers:
            assert requests.get(server.url + "/health", timeout=5).status_code == 200
    finally:
        for server in servers:
            server.stop()
        for store in stores:
            store.close()
    assert outcomes == {"made": 2, "401 invalid_api_key: This participant token was revoked": 28}
    assert host.get("greedy").images == 2
    with pytest.raises(Refusal) as refused:
        host.reserve(host.get("greedy").id, 1)
    assert refused.value.what == "revoked"
    host.close()
