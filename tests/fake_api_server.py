"""A scripted Images API stand-in on 127.0.0.1 that records every request it gets.

Tests queue :class:`Reply` objects (answered in order, one per request) and read back
:class:`RecordedRequest` objects: method, path, headers and the raw body, with helpers to
parse JSON and multipart bodies. Paths registered with :meth:`FakeImagesAPI.serve_file`
are answered with fixed bytes (result URLs to download). ``GET .../models`` is answered from
:attr:`FakeImagesAPI.model_list` (404 while it is None) and counted apart, in ``model_list_calls``.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import json
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted answer.

    ``body`` may be bytes, text or a JSON-able object. ``delay`` waits before answering;
    ``cut_after`` announces the whole body but sends only that many bytes, then hangs up;
    ``events`` makes a ``text/event-stream`` of ``(event name, JSON payload)`` pairs, sent
    with chunked transfer encoding; ``stall_after`` events in, the stream stalls until the
    server closes. ``trickle`` sends the body one byte every that many seconds; ``hold_after``
    sends that many bytes of it, then nothing more while the connection stays open.
    """

    status: int = 200
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    cut_after: int | None = None
    events: list[tuple[str, dict[str, Any]]] | None = None
    stall_after: int | None = None
    trickle: float | None = None
    hold_after: int | None = None

    def encoded_body(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return json.dumps(self.body).encode(), "application/json"


@dataclass(frozen=True)
class FormPart:
    """One part of a multipart/form-data body."""

    name: str
    filename: str | None
    content_type: str
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode()


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> list[FormPart]:
        """The parts of a multipart/form-data body, in order, parsed by the stdlib email parser."""
        content_type = self.headers["content-type"]
        assert content_type.startswith("multipart/form-data"), content_type
        raw = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode() + self.body
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
        assert message.is_multipart(), "not a multipart body"
        parts = []
        for part in message.iter_parts():
            disposition = part.get("content-disposition", "")
            assert disposition.startswith("form-data"), disposition
            parts.append(
                FormPart(
                    name=str(part.get_param("name", header="content-disposition")),
                    filename=part.get_filename(),
                    content_type=part.get_content_type() if part.get("content-type") else "",
                    data=bytes(part.get_payload(decode=True) or b""),
                )
            )
        return parts

    def fields(self) -> dict[str, str]:
        """The text fields of a multipart body (no file parts)."""
        return {part.name: part.text for part in self.form() if part.filename is None}


class FakeImagesAPI:
    """The server: start it, queue replies, make calls, inspect ``requests``."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._replies: deque[Reply] = deque()
        self._files: dict[str, Reply] = {}
        self.model_list: list[dict[str, Any]] | None = None
        self.model_list_calls = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="fake-images-api",
            daemon=True,
        )

    @property
    def root(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def base_url(self) -> str:
        return f"{self.root}/v1"

    @property
    def host(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def start(self) -> FakeImagesAPI:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def reply(self, *replies: Reply) -> None:
        """Queue answers for the next requests, in order."""
        with self._lock:
            self._replies.extend(replies)

    def serve_file(
        self, path: str, data: bytes, content_type: str = "image/png", trickle: float | None = None
    ) -> str:
        """Answer GET ``path`` with ``data`` (a byte every ``trickle`` seconds); returns the full URL."""
        self._files[path] = Reply(body=data, headers={"Content-Type": content_type}, trickle=trickle)
        return f"{self.root}{path}"

    @property
    def pending_replies(self) -> int:
        with self._lock:
            return len(self._replies)

    def _next_reply(self) -> Reply:
        with self._lock:
            if self._replies:
                return self._replies.popleft()
        return Reply(status=599, body={"error": {"message": "the test scripted no reply for this request"}})


def _make_handler(api: FakeImagesAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {name.lower(): value for name, value in self.headers.items()}
            if self.command == "GET" and self.path.split("?")[0].endswith("/models"):
                api.model_list_calls += 1
                listed = api.model_list
                if listed is None:
                    self._send(Reply(status=404, body={"error": {"message": "no model list", "code": None}}))
                else:
                    self._send(Reply(body={"object": "list", "data": listed}))
                return
            with api._lock:
                api.requests.append(RecordedRequest(self.command, self.path, headers, body))
            if self.command == "GET" and self.path in api._files:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._send(api._files[self.path])
                return
            reply = api._next_reply()
            if reply.delay and api._stopping.wait(reply.delay):
                return
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up
                self._send(reply)

        def _send(self, reply: Reply) -> None:
            if reply.events is not None:
                self._send_events(reply)
                return
            data, content_type = reply.encoded_body()
            self.send_response(reply.status)
            headers = {"Content-Type": content_type, **reply.headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            if reply.cut_after is not None:
                self.send_header("Connection", "close")
            self.end_headers()
            if reply.hold_after is not None:
                self.wfile.write(data[: reply.hold_after])
                self.wfile.flush()
                api._stopping.wait(60)
                return
            if reply.trickle is not None:
                for index in range(len(data)):
                    self.wfile.write(data[index : index + 1])
                    self.wfile.flush()
                    if api._stopping.wait(reply.trickle):
                        return
                return
            if reply.cut_after is None:
                self.wfile.write(data)
                return
            self.wfile.write(data[: reply.cut_after])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True

        def _send_events(self, reply: Reply) -> None:
            self.send_response(reply.status)
            for name, value in {"Content-Type": "text/event-stream", **reply.headers}.items():
                self.send_header(name, value)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for sent, (event, payload) in enumerate(reply.events or []):
                if sent == reply.stall_after and api._stopping.wait(60):
                    return
                chunk = f"event: {event}\ndata: {json.dumps(payload)}\n\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")

    return Handler
