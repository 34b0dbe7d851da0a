"""The workshop room in CI: 60 participants for 60 s on one organisation's key, through two
``ipyimagegen serve --upstream`` replicas (real subprocesses) sharing one PostgreSQL, in front of a
stand-in upstream that allows 120 images a minute AND 2 a second; one replica is killed (SIGKILL) at
20 s and restarted 10 s later. It is ``python -m bench --only room`` made small (``bench/room.py``):
the goals that hold at this size are asserted here, the rest are the benchmark's figures.
"""

from __future__ import annotations

import base64

import pytest
import requests
from bench.room import RoomPlan, RoomReport, run_room
from bench.upstream_standin import MODEL, ImageCounts, ShortWindowUpstream, gpt_image_app

from fake_openai import sample_png
from ipyimagegen.server import ServerThread
from postgres_helpers import postgres_cluster

PLAN = RoomPlan(
    participants=60,
    greedy=6,
    duration_s=60.0,
    kill_at_s=20.0,
    down_s=10.0,
    call_s=(1.0, 3.0),
    think_s=(1.0, 4.0),
    join_s=5.0,
    settle_s=15.0,
)
BACK_WITHIN_S = 30.0


def test_the_stand_in_upstream_refuses_past_its_limits_as_openai_does() -> None:
    counts = ImageCounts()
    png = sample_png((8, 8))
    limited = ShortWindowUpstream(gpt_image_app(png, (0.0, 0.0), counts), [(120, 60.0), (2, 1.0)])
    with ServerThread(limited) as upstream, requests.Session() as session:
        url = upstream.base_url + "/images/generations"
        answers = [session.post(url, json={"model": MODEL, "prompt": "a fox", "n": 1}) for _ in range(3)]
        again = session.post(url, json={"model": MODEL, "prompt": "a fox"})
    first, second, third = answers
    assert first.status_code == second.status_code == 200
    assert base64.b64decode(first.json()["data"][0]["b64_json"]) == png
    assert first.json()["usage"]["output_tokens"] > 0
    assert third.status_code == 429
    assert third.json() == {
        "error": {
            "message": "Rate limit reached for images per min: try again later.",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    assert 0 < int(third.headers["retry-after-ms"]) <= 1000 and third.headers["retry-after"] == "1"
    assert again.status_code == 429  # within the same second: the bucket holds no image yet
    assert (limited.served, limited.refused, counts.images) == (2, 2, 2)


@pytest.fixture(scope="module")
def room() -> RoomReport:
    """One run of the room, shared by this module's tests (each asserts one goal of it)."""
    with postgres_cluster() as cluster:
        return run_room(PLAN, cluster.database())


@pytest.mark.slow
def test_the_room_ran_with_its_kill(room: RoomReport) -> None:
    assert room.restarted_at is not None
    assert room.failovers > 0, "no participant met the killed replica: the kill did not happen"
    assert room.upstream_served > 0 and room.images_received > 0


@pytest.mark.slow
def test_no_upstream_429_reaches_a_participant(room: RoomReport) -> None:
    assert room.rate_limited == 0, room.outcomes


@pytest.mark.slow
def test_images_charged_are_the_images_received_once_drained(room: RoomReport) -> None:
    reserved = room.reserved or 0
    assert abs(room.charged - room.images_received) <= reserved, (
        f"charged {room.charged}, received {room.images_received}, reserved {room.reserved}"
    )


@pytest.mark.slow
def test_no_call_is_lost_in_the_kill(room: RoomReport) -> None:
    assert not room.lost, f"calls that ended in an error after the client's retries: {dict(room.lost)}"


@pytest.mark.slow
def test_every_participant_gets_an_image(room: RoomReport) -> None:
    empty = sorted(index for index, images in room.received.items() if images == 0)
    assert not empty, f"participants without an image: {empty}; answers {room.outcomes}"


@pytest.mark.slow
def test_the_restarted_replica_serves_again_within_30_s(room: RoomReport) -> None:
    assert room.back_after_s is not None, "the restarted replica answered no call with an image"
    assert room.back_after_s <= BACK_WITHIN_S
