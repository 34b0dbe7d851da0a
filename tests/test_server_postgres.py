"""One state for several servers: tokens, budgets, usage and rate windows in a real PostgreSQL
(a throwaway cluster), and two ``ipyimagegen serve`` processes that agree exactly."""

from __future__ import annotations

import concurrent.futures
import contextlib
import io
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import openai
import pytest
import requests
from PIL import Image

from ipyimagegen.cli import main
from ipyimagegen.server.tokens import PostgresTokenStore, Refusal, open_store
from ipyimagegen.server.wall import WallStore
from postgres_helpers import Cluster, postgres_cluster
from waiting import wait_for_health


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with postgres_cluster() as running:
        yield running


@pytest.fixture
def database(cluster: Cluster) -> str:
    return cluster.database()


def test_the_store_keeps_tokens_budgets_and_usage_in_postgres(database: str) -> None:
    store = open_store(database)
    assert isinstance(store, PostgresTokenStore) and store.shared
    token, info = store.create("alice", budget=3, budget_usd=1.0, rate="10/min", expires=time.time() + 3600)
    assert store.authenticate(token).name == "alice" and store.authenticate("igt-nope") is None
    store.reserve(info.id, 2, 0.1)
    with pytest.raises(Refusal) as refused:
        store.reserve(info.id, 2, 0.1)
    assert refused.value.what == "images"
    store.record_failure(info.id, 2, 0.1)
    store.reserve(info.id, 3, 0.2)
    store.settle(info.id, 0.2, 0.05)
    again = open_store(database)  # another server's view: the same records
    record = again.get("alice")
    assert (record.images, record.requests, record.errors, record.rejected) == (3, 2, 1, 1)
    assert record.spent_usd == pytest.approx(0.05) and record.expires is not None
    with pytest.raises(ValueError, match="already an active token"):
        again.create("alice")
    again.set_workshop_budget(images=10)
    assert store.workshop().budget_images == 10 and store.workshop().images == 3
    picture = io.BytesIO()
    Image.new("RGB", (96, 64), (200, 60, 20)).save(picture, "JPEG")
    post = WallStore(store).add(info, "a fox", picture.getvalue(), "image/jpeg")  # the class wall, shared too
    assert [(p.name, p.width, p.height) for p in WallStore(again).posts()] == [("alice", 96, 64)]
    assert WallStore(again).picture(post.id) == (picture.getvalue(), "image/jpeg")
    assert WallStore(again).remove(post.id) and WallStore(store).posts() == []
    again.revoke("alice")
    assert not store.authenticate(token).active
    assert "***" in repr(open_store(database.replace("ipyimagegen@", "ipyimagegen:secret@")))
    for opened in (store, again):
        opened.close()


def test_a_rate_window_in_the_database_is_one_for_every_server(database: str) -> None:
    first, second = open_store(database), open_store(database)
    _token, info = first.create("bob", rate="3/min")
    assert info.rate is not None
    waits = [store.take_rate(info.id, info.rate) for store in (first, second, first, second)]
    assert waits[:3] == [0.0, 0.0, 0.0] and 0 < waits[3] <= 20.5
    first.close()
    second.close()


def test_the_commands_take_a_database(capsys, database: str, tmp_path) -> None:
    assert main(["tokens", "create", "--count", "3", "--prefix", "room-", "-q", "--database", database]) == 0
    assert len(capsys.readouterr().out.split()) == 3
    assert main(["tokens", "list", "--database", database]) == 0
    assert "room-03" in capsys.readouterr().out
    bad = database.rsplit(":", 1)[0] + ":1/nowhere"
    assert main(["tokens", "list", "--database", bad.replace("ipyimagegen@", "ipyimagegen:hunter2@")]) == 2
    err = capsys.readouterr().err
    assert "Could not open the database" in err and "hunter2" not in err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server(database: str, tmp_path, name: str, *arguments: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, "IPYIMAGEGEN_SERVER_DIR": str(tmp_path / name)}
    env.pop("OPENAI_API_KEY", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "ipyimagegen", "serve", "--port", str(port), "--database", database,
         "--concurrency", "16", *arguments],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    assert wait_for_health(base, process)["auth"] == "tokens"
    return process, base + "/v1"


@contextlib.contextmanager
def _two_servers_on(
    database: str, tmp_path, names: tuple[str, str], *arguments: str
) -> Iterator[tuple[str, str]]:
    """Two ``serve`` processes on one database (their API addresses), stopped after."""
    started = [_start_server(database, tmp_path, name, *arguments) for name in names]
    try:
        yield started[0][1], started[1][1]
    finally:
        for process, _url in started:
            process.terminate()
        for process, _url in started:
            process.wait(timeout=20)


@pytest.fixture
def two_servers(database: str, tmp_path) -> Iterator[tuple[str, str]]:
    with _two_servers_on(database, tmp_path, ("one", "two")) as urls:
        yield urls


def _call(base_url: str, token: str) -> str:
    sdk = openai.OpenAI(base_url=base_url, api_key=token, max_retries=0)
    try:
        sdk.images.generate(model="dall-e-2", prompt="a fox", size="256x256")
    except openai.RateLimitError:
        return "refused"
    except openai.AuthenticationError:
        return "unauthorised"
    return "made"


def test_two_servers_serve_a_budget_of_5_exactly_under_40_concurrent_calls(
    database: str, two_servers
) -> None:
    store = open_store(database)
    token, _ = store.create("carol", budget=5)
    urls = two_servers
    start = threading.Barrier(40)

    def one(index: int) -> str:
        start.wait(20)
        return _call(urls[index % 2], token)

    with concurrent.futures.ThreadPoolExecutor(40) as pool:
        outcomes = list(pool.map(one, range(40)))
    assert outcomes.count("made") == 5 and outcomes.count("refused") == 35
    record = store.get("carol")
    assert record.images == 5 and record.rejected == 35
    store.close()


def test_a_revoke_is_honoured_by_both_servers_at_once(database: str, two_servers) -> None:
    store = open_store(database)
    token, _ = store.create("dan")
    assert [_call(url, token) for url in two_servers] == ["made", "made"]
    store.revoke("dan")
    assert [_call(url, token) for url in two_servers] == ["unauthorised", "unauthorised"]
    store.close()


def test_a_rate_of_3_a_minute_holds_across_both_servers(database: str, two_servers) -> None:
    store = open_store(database)
    token, _ = store.create("eve", rate="3/min")
    outcomes = [_call(two_servers[index % 2], token) for index in range(6)]
    assert outcomes == ["made", "made", "made", "refused", "refused", "refused"]
    store.close()


@pytest.fixture
def two_walls(database: str, tmp_path) -> Iterator[tuple[str, str]]:
    """Two servers with the class wall on one database, each participant sharing at most 40 an hour."""
    with _two_servers_on(database, tmp_path, ("a", "b"), "--class-wall", "--wall-rate", "40/hour") as urls:
        yield urls


def _share(base_url: str, token: str) -> int:
    picture = io.BytesIO()
    Image.new("RGB", (96, 64), (200, 60, 20)).save(picture, "PNG")
    answer = requests.post(
        f"{base_url}/wall",
        headers={"Authorization": f"Bearer {token}"},
        files={"image": ("fox.png", picture.getvalue(), "image/png")},
        data={"prompt": "a fox"},
        timeout=60,
    )
    return answer.status_code


def test_two_servers_keep_5_pictures_of_a_participant_under_30_concurrent_posts(
    database: str, two_walls
) -> None:
    store = open_store(database)
    token, _ = store.create("frank")
    start = threading.Barrier(30)

    def one(index: int) -> int:
        start.wait(20)
        return _share(two_walls[index % 2], token)

    with concurrent.futures.ThreadPoolExecutor(30) as pool:
        statuses = list(pool.map(one, range(30)))
    assert statuses == [201] * 30
    assert [post.name for post in WallStore(store).posts()] == ["frank"] * 5
    store.close()


def test_the_wall_rate_holds_across_both_servers(database: str, two_walls) -> None:
    store = open_store(database)
    token, _ = store.create("gina")
    statuses = [_share(two_walls[index % 2], token) for index in range(42)]
    assert statuses == [201] * 40 + [429, 429]
    assert store.get("gina").rejected == 2
    store.close()
