"""Errors as the Images API reports them: ``{"error": {"message", "type", "param", "code"}}``.

:func:`error_reply_for` turns any exception from parsing or from an engine into the status
code and error JSON the public API would send. Messages from an upstream server pass through
:func:`redact` first, so the server's own key never reaches a participant. :class:`ErrorAnswers`
is the app's exception handler that sends them; :class:`LastResort` answers what no handler took.
"""

from __future__ import annotations

import json
import logging
import math
import traceback
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import (
    CONTENT_POLICY_VIOLATION,
    MODERATION_BLOCKED,
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    CancelledError,
    ConfigurationError,
    ContentPolicyError,
    EngineUnavailableError,
    ImageInputError,
    ImagesError,
    PermissionDeniedError,
    RateLimitError,
    UnsupportedError,
    ValidationError,
    redact,
)

if TYPE_CHECKING:
    from .fair_queue import QueueEstimate

log = logging.getLogger("ipyimagegen.server")

INVALID_REQUEST = "invalid_request_error"
SERVER_ERROR = "server_error"


class ErrorReply(Exception):
    """An error answer: raise it anywhere in a request's handling to send it."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        type: str = INVALID_REQUEST,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """``details``: more fields of the error object, after the four every error has (a refusal's
        ``moderation_details``)."""
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = dict(headers or {})
        self.details = dict(details or {})

    def body(self) -> dict[str, Any]:
        error = {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        error.update((key, value) for key, value in self.details.items() if key not in error)
        return {"error": error}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status_code, headers=self.headers)


def bad_request(message: str, param: str | None = None, code: str | None = "invalid_value") -> ErrorReply:
    return ErrorReply(400, message, param=param, code=code)


def retry_after_headers(seconds: float, *, should_retry: bool = True) -> dict[str, str]:
    """``Retry-After`` (whole seconds, at least 1) and ``retry-after-ms``, as the official clients read them."""
    headers = {
        "Retry-After": str(max(1, math.ceil(seconds))),
        "retry-after-ms": str(max(1, math.ceil(seconds * 1000))),
    }
    if not should_retry:
        headers["x-should-retry"] = "false"
    return headers


MIN_BUSY_RETRY_S = 10.0
"""The shortest wait a busy room asks for before a call comes back."""
SDK_RETRY_AFTER_S = 60.0
"""The longest ``Retry-After`` the official SDKs wait before retrying by themselves."""


def busy_reply(
    estimate: QueueEstimate, allowed_s: float, retry_after: float, *, told_before: bool = False
) -> ErrorReply:
    """429 ``workshop_busy``: the call would wait ``estimate.wait_s``, more than the ``allowed_s`` it may
    (or its participant was told to come back later: ``told_before``); its place, the wait and when to
    come back (``Retry-After``; the SDKs retry by themselves only when that is within a minute, else they
    are told not to)."""
    ahead = estimate.ahead
    place = f"about {_minutes(estimate.wait_s)}, {ahead} {'call' if ahead == 1 else 'calls'} ahead of you"
    if told_before:
        message = (
            f"The workshop is busy ({place}), and you were asked to come back later: "
            f"try again in {_minutes(retry_after)}."
        )
    else:
        message = (
            f"The workshop is busy: {place}, longer than a call may wait here ({_minutes(allowed_s)}). "
            f"Try again in {_minutes(retry_after)}."
        )
    headers = retry_after_headers(retry_after, should_retry=retry_after <= SDK_RETRY_AFTER_S)
    if retry_after <= SDK_RETRY_AFTER_S:
        headers["x-should-retry"] = "true"
    return ErrorReply(
        429,
        message,
        type="requests",
        code="workshop_busy",
        headers=headers,
        details={
            "queue": {
                "position": ahead + 1,
                "ahead": ahead,
                "wait_s": round(estimate.wait_s, 1),
                "max_wait_s": round(allowed_s, 1),
                "retry_after_s": float(max(1, math.ceil(retry_after))),
            }
        },
    )


def _minutes(seconds: float) -> str:
    if seconds < 90:
        return f"{round(seconds)} s"
    return f"{round(seconds / 60)} min"


def _upstream_reply(exc: APIError, secrets: Iterable[str]) -> ErrorReply:
    """An error from the upstream server in proxy mode, told without the server's key."""
    if isinstance(exc, APITimeoutError):
        return ErrorReply(
            504,
            "The upstream image server did not answer in time: try again.",
            type=SERVER_ERROR,
            code="timeout",
        )
    if isinstance(exc, APIConnectionError):
        return ErrorReply(
            502,
            "The upstream image server could not be reached: try again later.",
            type=SERVER_ERROR,
            code="bad_gateway",
        )
    if isinstance(exc, (AuthenticationError, PermissionDeniedError)):
        return ErrorReply(
            502,
            f"The upstream image server refused this server's credentials (HTTP {exc.status_code}): "
            "tell the workshop host.",
            type=SERVER_ERROR,
            code="upstream_auth_failed",
        )
    message = redact(exc.message, secrets)
    if isinstance(exc, RateLimitError):
        if exc.code == "insufficient_quota":
            return ErrorReply(
                429,
                "The upstream account's quota is used up: tell the workshop host.",
                type="insufficient_quota",
                code="insufficient_quota",
                headers={"x-should-retry": "false"},
                details={"budget": {"kind": "upstream"}},
            )
        headers = retry_after_headers(exc.retry_after) if exc.retry_after else {}
        code = redact(exc.code, secrets) if exc.code else "rate_limit_exceeded"
        return ErrorReply(429, message, type="requests", code=code, headers=headers)
    if isinstance(exc, APIStatusError) and exc.status_code is not None and 400 <= exc.status_code < 500:
        return ErrorReply(
            exc.status_code,
            message,
            type=redact(exc.type or INVALID_REQUEST, secrets),
            param=redact(exc.param, secrets) if exc.param else None,
            code=redact(exc.code, secrets) if exc.code else None,
        )
    status = f" (HTTP {exc.status_code})" if exc.status_code else ""
    return ErrorReply(
        502, f"The upstream image server failed{status}: {message}", type=SERVER_ERROR, code="bad_gateway"
    )


def _refusal_reply(exc: ContentPolicyError, secrets: Iterable[str]) -> ErrorReply:
    """A safety system's refusal, a local engine's or the upstream's, as the refuser worded it: its
    code (``moderation_blocked`` for GPT image models, ``content_policy_violation`` for DALL-E), type,
    param and any more fields of its error object (``moderation_details``), without the server's key."""
    code = exc.code or CONTENT_POLICY_VIOLATION
    kind = exc.type or ("image_generation_user_error" if code == MODERATION_BLOCKED else INVALID_REQUEST)
    error = exc.body.get("error") if isinstance(exc.body, dict) else None
    details = {k: v for k, v in error.items() if k not in _ERROR_FIELDS} if isinstance(error, dict) else {}
    return ErrorReply(
        400,
        redact(exc.message, secrets),
        type=redact(kind, secrets),
        param=redact(exc.param, secrets) if exc.param else None,
        code=redact(code, secrets),
        details=json.loads(redact(json.dumps(details), secrets)) if details else None,
    )


_ERROR_FIELDS = ("message", "type", "param", "code")


def _http_reply(exc: HTTPException) -> ErrorReply:
    """Starlette's own refusals (a malformed form, an unknown route, a wrong method) as the API's JSON."""
    if exc.status_code == 404:
        return ErrorReply(
            404, "Unknown endpoint: this server speaks the OpenAI Images API under /v1.", code="not_found"
        )
    if exc.status_code == 405:
        return ErrorReply(
            405,
            "This endpoint does not take that HTTP method.",
            code="method_not_allowed",
            headers=exc.headers,
        )
    if exc.status_code >= 500:
        return ErrorReply(exc.status_code, str(exc.detail), type=SERVER_ERROR, headers=exc.headers)
    return ErrorReply(
        exc.status_code, f"The request could not be read: {exc.detail}.", code=None, headers=exc.headers
    )


def error_reply_for(exc: BaseException, secrets: Iterable[str] = ()) -> ErrorReply:
    """The API's answer to an exception raised while serving a request."""
    if isinstance(exc, ErrorReply):
        return exc
    if isinstance(exc, HTTPException):
        return _http_reply(exc)
    if isinstance(exc, ClientDisconnect):
        return bad_request(
            "The request body ended early (the upload was interrupted): send it again.", None, code=None
        )
    if isinstance(exc, ContentPolicyError):
        return _refusal_reply(exc, secrets)
    if isinstance(exc, ValidationError):
        return bad_request(exc.message, exc.param)
    if isinstance(exc, ImageInputError):
        return bad_request(exc.message, "image", code="invalid_image")
    if isinstance(exc, UnsupportedError):
        return bad_request(exc.message, None, code="unsupported")
    if isinstance(exc, APIError):
        return _upstream_reply(exc, secrets)
    if isinstance(exc, EngineUnavailableError):
        return ErrorReply(
            503,
            exc.message,
            type=SERVER_ERROR,
            code="engine_unavailable",
            headers=retry_after_headers(exc.retry_after),
        )
    if isinstance(exc, CancelledError):
        return ErrorReply(503, "The request was cancelled: try again.", type=SERVER_ERROR, code="cancelled")
    if isinstance(exc, ConfigurationError):
        log.error("server misconfigured: %s", redact(exc.message, secrets))
        return ErrorReply(
            500, "The image server is misconfigured: tell the workshop host.", type=SERVER_ERROR
        )
    if isinstance(exc, ImagesError):
        return bad_request(redact(exc.message, secrets), None, code=None)
    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    log.error("error while serving an image request:\n%s", redact(trace, secrets))
    return ErrorReply(
        500,
        "The server had an error while processing your request. Try again; if it persists, tell the host.",
        type=SERVER_ERROR,
    )


def redact_bytes(data: bytes, secrets: Iterable[str]) -> bytes:
    """``data`` with every secret replaced by ``***`` (an upstream's answer passed on as bytes)."""
    for secret in secrets:
        if secret:
            data = data.replace(secret.encode(), b"***")
    return data


class ErrorAnswers:
    """Starlette's exception handler for every error the API names: the answer is the error's JSON
    (:func:`error_reply_for`, ``secrets`` taken out), and the reply is kept in ``request.state.error``
    for the call's log line and counters (:class:`~ipyimagegen.server.metrics.CallRecord`)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = tuple(secret for secret in secrets if secret)

    async def __call__(self, request: Request, exc: Exception) -> Response:
        reply = error_reply_for(exc, self.secrets)
        request.state.error = reply
        return reply.response()

    def handlers(self) -> dict[Any, Callable[[Request, Exception], Awaitable[Response]]]:
        """The app's ``exception_handlers``: the errors a request's handling raises on purpose."""
        return {ErrorReply: self, HTTPException: self, ImagesError: self, ClientDisconnect: self}


class LastResort:
    """ASGI middleware for a route: an exception no handler took (a bug, an engine's own error) is a 500
    with the API's JSON, logged with its traceback, secrets taken out; never a bare ASGI error."""

    def __init__(self, app: ASGIApp, answers: ErrorAnswers) -> None:
        self.app = app
        self.answers = answers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            if started:  # the status is sent already: nothing left to answer with
                raise
            response = await self.answers(Request(scope, receive), exc)
            await response(scope, receive, send)
