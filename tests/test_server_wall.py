"""The class wall: participants share pictures (through the client, or any HTTP caller), the server
keeps its own small copies in the tokens' database, and only the host sees and takes them down."""

from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
from PIL import Image

from ipyimagegen.api.client import OpenAIClient
from ipyimagegen.cli import main
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.errors import UnsupportedError
from ipyimagegen.server import ServerThread, TokenStore, make_app
from ipyimagegen.server import wall as wall_module
from ipyimagegen.server.config import DEFAULTS, ServerConfig
from ipyimagegen.server.wall import KEEP, PER_PARTICIPANT, WALL_SIDE, WallStore


def _png(width: int = 1536, height: int = 1024, colour: tuple[int, int, int] = (200, 60, 20)) -> bytes:
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[...] = colour
    pixels[: height // 2, : width // 2] = (20, 120, 220)  # a corner to tell the picture by
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def room(tmp_path):
    store = TokenStore.in_dir(tmp_path)
    tokens = {name: store.create(name, admin=name == "host")[0] for name in ("host", "alice", "bob")}
    with ServerThread(make_app(PreviewEngine(), ServerConfig(class_wall=True), tokens=store)) as server:
        yield server, tokens, store


def _wall(server: ServerThread, token: str) -> requests.Response:
    return requests.get(
        f"{server.url}/admin/api/wall", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def test_a_shared_picture_reaches_the_hosts_wall_smaller_with_its_name_and_prompt(room) -> None:
    server, tokens, _ = room
    client = OpenAIClient(base_url=server.base_url, api_key=tokens["alice"], max_retries=0)
    assert not client.shares_pictures  # not known before the models are listed
    client.models()
    assert client.shares_pictures
    client.share_picture(_png(), "a red fox\x00 in the snow\x1b[31m")
    posts = _wall(server, tokens["host"]).json()["posts"]
    assert [(p["name"], p["prompt"]) for p in posts] == [("alice", "a red fox in the snow[31m")]
    post = posts[0]
    assert (post["width"], post["height"]) == (WALL_SIDE, WALL_SIDE * 2 // 3)
    picture = requests.get(
        f"{server.url}/admin/api/wall/{post['id']}",
        headers={"Authorization": f"Bearer {tokens['host']}"},
        timeout=10,
    )
    assert picture.headers["content-type"] == "image/jpeg"
    shown = np.asarray(Image.open(io.BytesIO(picture.content)).convert("RGB")).astype(int)
    assert (
        np.abs(shown[10, 10] - (20, 120, 220)).max() < 12
        and np.abs(shown[-10, -10] - (200, 60, 20)).max() < 12
    )


def test_only_the_host_sees_the_wall_and_takes_pictures_down(room) -> None:
    server, tokens, _ = room
    client = OpenAIClient(base_url=server.base_url, api_key=tokens["bob"], max_retries=0)
    client.share_picture(_png(256, 256), "mine")
    assert _wall(server, tokens["bob"]).status_code == 403
    post = _wall(server, tokens["host"]).json()["posts"][0]
    as_bob = requests.get(
        f"{server.url}/admin/api/wall/{post['id']}",
        headers={"Authorization": f"Bearer {tokens['bob']}"},
        timeout=10,
    )
    assert as_bob.status_code == 403
    host = {"Authorization": f"Bearer {tokens['host']}"}
    removed = requests.post(f"{server.url}/admin/api/wall/{post['id']}/remove", headers=host, timeout=10)
    assert removed.status_code == 200
    assert _wall(server, tokens["host"]).json()["posts"] == []
    again = requests.post(f"{server.url}/admin/api/wall/{post['id']}/remove", headers=host, timeout=10)
    assert again.status_code == 404


def test_the_wall_keeps_the_newest_and_a_few_of_each_participant(tmp_path) -> None:
    store = TokenStore.in_dir(tmp_path)
    wall = WallStore(store)
    _, alice = store.create("alice")
    _, bob = store.create("bob")
    picture = _png(64, 64)
    for number in range(PER_PARTICIPANT + 3):
        wall.add(alice, f"alice {number}", picture, "image/png")
    assert [post.prompt for post in wall.posts()] == [
        f"alice {number}" for number in reversed(range(3, PER_PARTICIPANT + 3))
    ]
    others = [store.create(f"p{number}")[1] for number in range(KEEP + 5)]
    for info in others:
        wall.add(info, info.name, picture, "image/png")
    names = [post.name for post in wall.posts()]
    assert len(names) == KEEP and names[0] == others[-1].name and "alice" not in names
    assert WallStore(store).posts()[0].name == others[-1].name  # another server's view of the file


def test_what_is_not_a_picture_is_refused_with_a_reason(room) -> None:
    server, tokens, _ = room
    alice = {"Authorization": f"Bearer {tokens['alice']}"}
    url = f"{server.base_url}/wall"
    text = requests.post(url, headers=alice, files={"image": ("x.png", b"hello", "image/png")}, timeout=10)
    assert text.status_code == 400 and text.json()["error"]["code"] == "invalid_image_format"
    broken = _png(64, 64)[:80]
    cut = requests.post(url, headers=alice, files={"image": ("x.png", broken, "image/png")}, timeout=10)
    assert cut.status_code == 400 and "cannot be shown" in cut.json()["error"]["message"]
    huge = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(huge, "PNG")  # small file, 400 million pixels
    big = requests.post(
        url, headers=alice, files={"image": ("x.png", huge.getvalue(), "image/png")}, timeout=30
    )
    assert big.status_code == 400 and big.json()["error"]["code"] == "image_too_large"
    assert "at most 16,777,216 pixels (4096x4096)" in big.json()["error"]["message"]
    json_body = requests.post(url, headers=alice, json={"image": "..."}, timeout=10)
    assert json_body.status_code == 415
    nobody = requests.post(url, files={"image": ("x.png", _png(64, 64), "image/png")}, timeout=10)
    assert nobody.status_code == 401
    unknown = requests.post(
        url,
        headers=alice,
        data={"prompt": "x", "seed": "1"},
        files={"image": ("x.png", _png(64, 64), "image/png")},
        timeout=10,
    )
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "unknown_parameter"
    assert _wall(server, tokens["host"]).json()["posts"] == []


def test_a_server_without_a_wall_does_not_name_one(tmp_path) -> None:
    store = TokenStore.in_dir(tmp_path)
    alice, _ = store.create("alice")
    host, _ = store.create("host", admin=True)
    with ServerThread(make_app(PreviewEngine(), tokens=store)) as server:
        client = OpenAIClient(base_url=server.base_url, api_key=alice, max_retries=0)
        client.models()
        assert not client.shares_pictures
        with pytest.raises(UnsupportedError, match="--class-wall"):
            client.share_picture(_png(64, 64), "a fox")
        wall = _wall(server, host).json()
        assert wall == {"enabled": False, "posts": []}
        posted = requests.post(
            f"{server.base_url}/wall",
            headers={"Authorization": f"Bearer {alice}"},
            files={"image": ("x.png", _png(64, 64), "image/png")},
            timeout=10,
        )
        assert posted.status_code == 404 and "--class-wall" in posted.json()["error"]["message"]
    with pytest.raises(UnsupportedError):
        PreviewEngine().share_picture(_png(64, 64))


def test_the_wall_needs_tokens(tmp_path, capsys) -> None:
    with pytest.raises(ValueError, match="tokens"):
        make_app(PreviewEngine(), ServerConfig(class_wall=True))
    code = main(["serve", "--class-wall", "--state-dir", str(tmp_path)])
    assert code != 0 and "tokens create" in capsys.readouterr().err


def test_a_paused_room_shares_nothing_on_the_wall(room) -> None:
    server, tokens, _ = room
    paused = requests.post(
        f"{server.url}/admin/api/pause", headers={"Authorization": f"Bearer {tokens['host']}"}, timeout=10
    )
    assert paused.status_code == 200, paused.text
    shared = requests.post(
        f"{server.base_url}/wall",
        headers={"Authorization": f"Bearer {tokens['alice']}"},
        files={"image": ("fox.png", _png(), "image/png")},
        data={"prompt": "a fox"},
        timeout=10,
    )
    assert shared.status_code == 503 and shared.json()["error"]["code"] == "workshop_paused"
    assert _wall(server, tokens["host"]).json()["posts"] == []


def _share(server: ServerThread, token: str, picture: bytes, name: str = "fox.png") -> requests.Response:
    kind = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}[name.rsplit(".", 1)[1]]
    return requests.post(
        f"{server.base_url}/wall",
        headers={"Authorization": f"Bearer {token}"},
        files={"image": (name, picture, kind)},
        data={"prompt": "a fox"},
        timeout=30,
    )


def _error(answer: requests.Response) -> dict[str, object]:
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return dict(error)


def _healthy(server: ServerThread, token: str) -> None:
    assert requests.get(f"{server.url}/health", timeout=10).json()["status"] == "ok"
    assert _share(server, token, _png(64, 64)).status_code == 201


def _flat(width: int, height: int, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 60, 20)).save(
        out, fmt, **({"lossless": True} if fmt == "WEBP" else {})
    )
    return out.getvalue()


def _jpeg_claiming(width: int, height: int) -> bytes:
    """A small JPEG whose header says it is ``width`` x ``height`` (its frame header rewritten)."""
    data = bytearray(_flat(16, 16, "JPEG"))
    frame = data.index(b"\xff\xc0")  # SOF0: marker, length, precision, height, width
    data[frame + 5 : frame + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def test_a_picture_over_the_walls_pixels_is_refused_from_its_header(room) -> None:
    server, tokens, _ = room
    assert _share(server, tokens["alice"], _flat(4096, 4096)).status_code == 201  # the most it takes
    for name, picture, size in (
        ("wide.png", _flat(4097, 4096), "4097x4096"),
        ("wide.webp", _flat(4097, 4096, "WEBP"), "4097x4096"),
        ("huge.jpg", _jpeg_claiming(10_000, 8_000), "10000x8000"),  # more than any image is opened at
    ):
        refused = _share(server, tokens["bob"] if "jpg" in name else tokens["alice"], picture, name)
        error = _error(refused)
        assert refused.status_code == 400, name
        assert (error["type"], error["param"], error["code"]) == (
            "invalid_request_error",
            "image",
            "image_too_large",
        )
        assert f"The picture is {size}" in str(error["message"])
        assert "at most 16,777,216 pixels (4096x4096)" in str(error["message"])
    assert len(_wall(server, tokens["host"]).json()["posts"]) == 1
    _healthy(server, tokens["bob"])


def test_a_participant_shares_a_few_pictures_a_minute_and_the_host_any_number(room) -> None:
    server, tokens, store = room
    picture = _png(64, 64)
    made = [_share(server, tokens["alice"], picture).status_code for _ in range(DEFAULTS.wall_rate.count)]
    assert made == [201] * DEFAULTS.wall_rate.count
    refused = _share(server, tokens["alice"], picture)
    assert refused.status_code == 429
    error = _error(refused)
    assert (error["type"], error["param"], error["code"]) == ("requests", None, "rate_limit_exceeded")
    assert "The class wall takes 6 pictures per minute from each participant" in str(error["message"])
    assert 1 <= int(refused.headers["Retry-After"]) <= 60 / DEFAULTS.wall_rate.count
    assert store.get("alice").rejected == 1
    host = [_share(server, tokens["host"], picture).status_code for _ in range(DEFAULTS.wall_rate.count + 2)]
    assert host == [201] * (DEFAULTS.wall_rate.count + 2)  # the host's token has no wall limit
    client = OpenAIClient(base_url=server.base_url, api_key=tokens["alice"], max_retries=0)
    assert client.generate(prompt="a fox", model="dall-e-2", size="256x256").data  # the wall's rate only
    _healthy(server, tokens["bob"])


def test_the_wall_rate_is_the_hosts_to_choose(tmp_path, capsys) -> None:
    store = TokenStore.in_dir(tmp_path)
    alice, _ = store.create("alice")
    with ServerThread(
        make_app(PreviewEngine(), ServerConfig(class_wall=True, wall_rate="2/hour"), tokens=store)
    ) as server:
        assert [_share(server, alice, _png(64, 64)).status_code for _ in range(3)] == [201, 201, 429]
        refused = _share(server, alice, _png(64, 64))
        assert "2 pictures per hour" in str(_error(refused)["message"])
        assert 1700 < int(refused.headers["Retry-After"]) <= 1800
    with pytest.raises(SystemExit):
        main(["serve", "--class-wall", "--wall-rate", "often", "--state-dir", str(tmp_path)])
    assert "--wall-rate: A rate looks like '10/min'" in capsys.readouterr().err


def test_the_wall_decodes_one_picture_at_a_time_in_its_own_thread(room, monkeypatch) -> None:
    server, tokens, _ = room
    decoding, most, threads = 0, 0, set()
    lock = threading.Lock()
    decode = wall_module.thumbnail

    def watched(data: bytes, side: int) -> tuple[bytes, str]:
        nonlocal decoding, most
        with lock:
            decoding += 1
            most = max(most, decoding)
            threads.add(threading.current_thread().name)
        try:
            return decode(data, side)
        finally:
            with lock:
                decoding -= 1

    monkeypatch.setattr(wall_module, "thumbnail", watched)
    picture = _png(2048, 2048)
    who = [tokens["alice"], tokens["bob"]] * 4
    with ThreadPoolExecutor(len(who)) as pool:
        statuses = [
            answer.status_code for answer in pool.map(lambda token: _share(server, token, picture), who)
        ]
    assert statuses == [201] * len(who)
    assert most == 1 and len(threads) == 1, (most, threads)
    assert len(_wall(server, tokens["host"]).json()["posts"]) == len(who)
