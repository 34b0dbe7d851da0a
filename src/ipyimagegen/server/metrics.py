"""What the server counts, for Prometheus (``GET /metrics``, the text format of ``prometheus-client``).

Labels are routes, endpoints, statuses and error codes, never a participant: a room of 500 is
500 series nobody asked for, and a participant's name is theirs. Per-participant figures are on
the ``/admin`` page (an admin token) and in ``ipyimagegen tokens usage``.

- ``ipyimagegen_requests_total{route, status}``: every answer.
- ``ipyimagegen_images_total{endpoint}``: images sent back.
- ``ipyimagegen_rejected_total{reason}``: calls refused before they ran, by the error code
  answered (``invalid_api_key``, ``rate_limit_exceeded``, ``insufficient_quota``,
  ``request_too_large``, ``invalid_value``...).
- ``ipyimagegen_upstream_seconds{endpoint}`` and ``ipyimagegen_upstream_errors_total{code}``:
  the engine's or upstream's time per call once it runs, and its failures.
- ``ipyimagegen_queue_wait_seconds``: how long calls waited for a free slot;
  ``ipyimagegen_queue_running`` and ``ipyimagegen_queue_waiting``: the queue now.

:class:`CallRecord` counts each route's answers and logs one line per call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .replies import ErrorReply

log = logging.getLogger("ipyimagegen.server")

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
"""Seconds: an offline engine answers in milliseconds, a gpt-image model at high quality in a minute or two."""


class ServerMetrics:
    """The server's counters, in a registry of their own (two servers in one process never mix)."""

    def __init__(self, queue: Callable[[], tuple[int, int]]) -> None:
        """``queue()`` gives the calls running and waiting now."""
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ipyimagegen_requests", "Answers sent, by route and HTTP status.", ["route", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.images = Counter(
            "ipyimagegen_images", "Images sent back, by endpoint.", ["endpoint"], registry=self.registry
        )
        self.rejected = Counter(
            "ipyimagegen_rejected", "Calls refused before they ran, by the error code answered.", ["reason"],
            registry=self.registry,
        )  # fmt: skip
        self.upstream_seconds = Histogram(
            "ipyimagegen_upstream_seconds", "Time the engine or upstream took per call, once it ran.",
            ["endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.upstream_errors = Counter(
            "ipyimagegen_upstream_errors", "Calls the engine or upstream failed, by error code.", ["code"],
            registry=self.registry,
        )  # fmt: skip
        self.queue_wait = Histogram(
            "ipyimagegen_queue_wait_seconds", "Time a call waited for a free slot before it ran.",
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        running = Gauge("ipyimagegen_queue_running", "Calls running now.", registry=self.registry)
        waiting = Gauge("ipyimagegen_queue_waiting", "Calls waiting for a slot now.", registry=self.registry)
        running.set_function(lambda: queue()[0])
        waiting.set_function(lambda: queue()[1])

    def answered(self, route: str, status: int, code: str | None) -> None:
        """One answer; a 4xx with an error code before the call ran counts as a rejection."""
        self.requests.labels(route=route, status=str(status)).inc()
        if 400 <= status < 500 and code:
            self.rejected.labels(reason=code).inc()

    def ran(self, endpoint: str, waited_s: float, took_s: float) -> None:
        self.queue_wait.observe(max(0.0, waited_s))
        self.upstream_seconds.labels(endpoint=endpoint).observe(max(0.0, took_s))

    def failed(self, code: str) -> None:
        self.upstream_errors.labels(code=code).inc()

    def sent(self, endpoint: str, images: int) -> None:
        if images:
            self.images.labels(endpoint=endpoint).inc(images)

    def render(self) -> tuple[bytes, str]:
        """The text exposition and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class CallRecord:
    """ASGI middleware for one route: its answer counted under ``route`` as its status goes out (a 4xx
    before the call ran, as a rejection by its error code), and one log line per call: request id,
    caller, method, path, status, error code and param, seconds taken.

    It reads what the request's handling left in ``request.state``: ``caller`` (the token's name),
    ``ran`` (the engine or upstream was called) and ``error`` (the error answered, set by
    :class:`~ipyimagegen.server.replies.ErrorAnswers`).
    """

    def __init__(self, app: ASGIApp, *, route: str, metrics: ServerMetrics) -> None:
        self.app = app
        self.route = route
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        state: dict[str, object] = scope.setdefault("state", {})
        status = 0

        async def counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                self.metrics.answered(self.route, status, None if state.get("ran") else _code(state))
            await send(message)

        try:
            await self.app(scope, receive, counted)
        finally:
            reply = _reply(state)
            told = ""
            if reply is not None:
                param = f", param={reply.param[:64]!r}" if reply.param else ""  # a caller's name, quoted
                told = f" ({reply.code or reply.type}{param})"
            log.info(
                "%s %s %s %s -> %d%s in %.2f s",
                state.get("request_id", "-"),
                state.get("caller", "-"),
                scope["method"],
                scope["path"],
                status,
                told,
                time.perf_counter() - started,
            )


def _reply(state: dict[str, object]) -> ErrorReply | None:
    """The error answered, as :class:`~ipyimagegen.server.replies.ErrorAnswers` left it in the request's state."""
    error = state.get("error")
    return error if isinstance(error, ErrorReply) else None


def _code(state: dict[str, object]) -> str | None:
    reply = _reply(state)
    return (reply.code or reply.type) if reply is not None else None
