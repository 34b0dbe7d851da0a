"""Slow clients: half-sent requests are cut at their deadlines, and the server keeps answering meanwhile."""

from __future__ import annotations

import json
import os
import resource
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import pytest
import requests

from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.server import make_app
from ipyimagegen.server.connections import ConnectionLimits
from ipyimagegen.server.runner import ServerThread
from waiting import wait_for_health, wait_until

GENERATE = b'{"model": "dall-e-2", "prompt": "a fox", "size": "256x256", "response_format": "b64_json"}'
HALF_HEADERS = b"POST /v1/images/generations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: appl"
HALF_BODY = (
    b"POST /v1/images/generations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Content-Length: 1000\r\n\r\n{"
)


def _connect(port: int, data: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    if data:
        sock.sendall(data)
    return sock


def _still_open(sock: socket.socket) -> bool:
    """Whether the server has neither closed ``sock`` nor answered on it."""
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


def _read_until_closed(socks: list[socket.socket], within: float) -> list[bytes | None]:
    """What the server sent on each socket before closing it (None: still open after ``within`` seconds)."""
    received = {sock: b"" for sock in socks}
    selector = selectors.DefaultSelector()
    for sock in socks:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    closed = set()
    deadline = time.monotonic() + within
    while len(closed) < len(socks) and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.1):
            sock = key.fileobj
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if chunk:
                received[sock] += chunk
            else:
                closed.add(sock)
                selector.unregister(sock)
    selector.close()
    return [received[sock] if sock in closed else None for sock in socks]


def _response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)
    }
    return int(status_line.split()[1]), headers, body


@contextmanager
def _closing(socks: list[socket.socket]) -> Iterator[list[socket.socket]]:
    try:
        yield socks
    finally:
        for sock in socks:
            sock.close()


def _assert_body_timeout_answer(raw: bytes, seconds: float) -> None:
    status, headers, body = _response(raw)
    assert status == 408
    assert headers["connection"] == "close"
    assert json.loads(body) == {
        "error": {
            "message": f"The request body stopped arriving: nothing came for {seconds:g} s. Send the request "
            "again (on a slow network, send smaller images).",
            "type": "invalid_request_error",
            "param": None,
            "code": "request_timeout",
        }
    }


def test_health_answers_while_300_clients_send_half_a_request_and_they_are_cut_at_the_deadlines() -> None:
    limits = ConnectionLimits(header_timeout=3.0, body_timeout=3.0)
    with ServerThread(make_app(PreviewEngine()), limits=limits) as server:
        with (
            _closing([_connect(server.port, HALF_HEADERS) for _ in range(150)]) as half_headers,
            _closing([_connect(server.port, HALF_BODY) for _ in range(150)]) as half_bodies,
        ):
            health = requests.get(f"{server.url}/health", timeout=1)
            assert health.status_code == 200 and health.json()["status"] == "ok"
            assert all(_still_open(sock) for sock in half_headers + half_bodies)

            answers = _read_until_closed(half_headers + half_bodies, within=20)

        assert answers[:150] == [b""] * 150  # headers never finished: closed without an answer
        for raw in answers[150:]:
            assert raw is not None, "a connection with half a body is still open"
            _assert_body_timeout_answer(raw, 3.0)
        after = requests.post(f"{server.base_url}/images/generations", data=GENERATE, timeout=30,
                              headers={"Content-Type": "application/json"})  # fmt: skip
        assert after.status_code == 200 and after.json()["data"][0]["b64_json"]


def test_headers_that_trickle_in_are_cut_at_the_deadline_however_steadily_they_come() -> None:
    with ServerThread(make_app(PreviewEngine()), limits=ConnectionLimits(header_timeout=1.0)) as server:
        with _closing([_connect(server.port, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")]) as (sock,):
            started = time.monotonic()
            closed = False
            for _ in range(50):  # one byte every 0.1 s: 5 s of headers if nothing cut them
                time.sleep(0.1)
                try:
                    sock.sendall(b"X-Slow: a\r\n"[:1])
                except OSError:
                    closed = True
                if closed or not _still_open(sock):
                    closed = True
                    break
            took = time.monotonic() - started
        assert closed and took < 4.0, f"the trickle was still served after {took:.1f} s"
        assert requests.get(f"{server.url}/health", timeout=5).status_code == 200


@pytest.mark.parametrize(
    "path, content_type, start",
    [
        ("generations", "application/json", b'{"prompt": "a fox'),
        ("edits", "multipart/form-data; boundary=xx", b'--xx\r\nContent-Disposition: form-data; name="image"; '
         b'filename="a.png"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n'),
        ("variations", "multipart/form-data; boundary=xx", b'--xx\r\nContent-Disposition: form-data; name="n"\r\n'),
    ],
)  # fmt: skip
def test_an_upload_that_stops_is_a_408_and_the_server_stays_healthy(
    path: str, content_type: str, start: bytes
) -> None:
    with ServerThread(make_app(PreviewEngine()), limits=ConnectionLimits(body_timeout=1.0)) as server:
        head = (
            f"POST /v1/images/{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            "Content-Length: 100000\r\n\r\n"
        ).encode()
        with _closing([_connect(server.port, head + start)]) as (sock,):
            (raw,) = _read_until_closed([sock], within=15)
        assert raw is not None, "the stalled upload is still open"
        _assert_body_timeout_answer(raw, 1.0)
        assert requests.get(f"{server.url}/health", timeout=5).json()["status"] == "ok"


def test_a_slow_upload_that_keeps_coming_is_served() -> None:
    """The body's deadline is for a pause, not for the whole upload: 5 pieces 0.5 s apart, 1 s allowed."""
    with ServerThread(make_app(PreviewEngine()), limits=ConnectionLimits(body_timeout=1.0)) as server:
        head = (
            "POST /v1/images/generations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(GENERATE)}\r\nConnection: close\r\n\r\n"
        ).encode()
        with _closing([_connect(server.port, head)]) as (sock,):
            pieces = [GENERATE[i : i + 20] for i in range(0, len(GENERATE), 20)]
            assert len(pieces) >= 4
            for piece in pieces:
                time.sleep(0.5)
                sock.sendall(piece)
            (raw,) = _read_until_closed([sock], within=30)
        assert raw is not None
        status, _, body = _response(raw)
        assert status == 200 and json.loads(body)["data"][0]["b64_json"]


def test_a_kept_alive_connection_outlives_the_header_deadline() -> None:
    """Between two requests the keep-alive time applies, not the header deadline."""
    limits = ConnectionLimits(header_timeout=0.5, keep_alive=5.0)
    with ServerThread(make_app(PreviewEngine()), limits=limits) as server:
        request = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        with _closing([_connect(server.port, request)]) as (sock,):
            first = sock.recv(65536)
            time.sleep(1.5)
            sock.sendall(request)
            second = sock.recv(65536)
        assert _response(first)[0] == 200 and _response(second)[0] == 200


def test_waiting_for_the_client_after_its_body_has_no_deadline() -> None:
    """An answer that listens for the client's disconnect (as a streamed answer does) is not cut."""

    async def listens(scope, receive, send):
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        with anyio.move_on_after(1.0) as waited:  # the client stays: receive() waits past the body deadline
            await receive()
        told = b"waited" if waited.cancelled_caught else b"cut"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"%d" % len(told))],
            }
        )
        await send({"type": "http.response.body", "body": told})

    with ServerThread(listens, limits=ConnectionLimits(body_timeout=0.3)) as server:
        answer = requests.post(f"{server.url}/anything", data=b"x" * 100, timeout=10)
    assert answer.status_code == 200 and answer.text == "waited"


def test_connections_past_the_limit_are_refused_quickly() -> None:
    with ServerThread(make_app(PreviewEngine()), limits=ConnectionLimits(max_connections=5)) as server:
        with _closing([_connect(server.port) for _ in range(5)]):
            assert requests.get(f"{server.url}/health", timeout=5).status_code == 503
        wait_until(
            lambda: requests.get(f"{server.url}/health", timeout=5).status_code == 200,
            interval=0.1,
            message="the server to serve again once the connections closed",
        )


@pytest.mark.parametrize(
    "field, value",
    [("header_timeout", 0), ("body_timeout", -1.0), ("keep_alive", float("nan")), ("max_connections", 0)],
)
def test_limits_must_be_positive(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        ConnectionLimits(**{field: value})


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _few_open_files() -> None:
    """In the server's process: the open-file limit of a Mac (256), with room above it to raise."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))


def test_serve_answers_while_300_clients_send_half_a_request_on_a_low_open_file_limit(tmp_path) -> None:
    """``ipyimagegen serve`` as run: 300 half-sent requests would use up 256 open files (new connections,
    /health included, then wait in the backlog); the server raises its limit, serves on, and cuts them."""
    port = _free_port()
    env = {**os.environ, "IPYIMAGEGEN_SERVER_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "ipyimagegen", "serve", "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        preexec_fn=_few_open_files,
    )
    try:
        wait_for_health(f"http://127.0.0.1:{port}", process)
        with _closing(
            [_connect(port, HALF_HEADERS if i % 2 else HALF_BODY) for i in range(300)]
        ) as half_sent:
            health = requests.get(f"http://127.0.0.1:{port}/health", timeout=1)
            assert health.status_code == 200 and health.json()["status"] == "ok"
            answers = _read_until_closed(half_sent, within=20)  # the headers' deadline is 10 s
        assert answers[1::2] == [b""] * 150
        assert all(raw is None or _response(raw)[0] == 408 for raw in answers[::2])  # the body's: 30 s
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=60)
    assert "out of system resource" not in output and "Too many open files" not in output
