"""Moving one HTTP call and its answer: send, retry, the whole call's deadline, and redaction.

:class:`Transport` knows nothing of images: it sends what it is given over one
:class:`requests.Session`, with the credentials put on at the last moment, retries what may
pass within the call's deadline, and turns every failure into a typed, redacted
:class:`~ipyimagegen.errors.APIError`. The Images API client and the workshop client
(:mod:`ipyimagegen.api.workshop`) send through one.

Each credentialed try says how long is left of the call (:data:`READ_TIMEOUT_HEADER`). A busy workshop
server's 429 is waited out for as long as it asks, telling the caller so, while the deadline allows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import requests
import urllib3.exceptions
from urllib3.exceptions import ReadTimeoutError

from .._version import __version__
from ..errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    WorkshopBusyError,
    error_from_response,
    redact,
)
from .config import Timeout, call_seconds, host_of, safe_url
from .deadline import Deadline, DeadlinePassed, iter_body, read_body
from .queue_watch import wait_for_room
from .retry import BUSY_MIN_WAIT_S, RetryPolicy, come_back_later, parse_retry_after, rate_limit_reset
from .types import CallHooks

log = logging.getLogger("ipyimagegen.api")

REQUEST_ID_HEADERS = ("x-request-id", "apim-request-id")
READ_TIMEOUT_HEADER = "x-stainless-read-timeout"
"""Seconds the client waits for the answer, sent with every credentialed call as the official OpenAI SDKs
send it; a workshop server answers at once (``workshop_busy``) rather than queue a call longer."""
TRANSFER_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, DeadlinePassed)
"""What moving a request or its answer can raise: requests' own errors, urllib3's from a body read
as it arrives, and the call's deadline passing."""


def user_agent() -> str:
    return f"ipyimagegen/{__version__}"


def request_id(response: requests.Response) -> str | None:
    for name in REQUEST_ID_HEADERS:
        if response.headers.get(name):
            return response.headers[name]
    return None


def succeeded(response: requests.Response) -> bool:
    return 200 <= response.status_code < 300


def is_event_stream(response: requests.Response) -> bool:
    return response.headers.get("content-type", "").startswith("text/event-stream")


def root_reason(exc: BaseException) -> str:
    """The innermost readable cause of a requests error, such as ``Connection refused``."""
    text = str(exc)
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        if current.args and isinstance(current.args[0], str):
            text = current.args[0]
        nested = getattr(current, "reason", None)  # urllib3's MaxRetryError
        if (
            not isinstance(nested, BaseException)
            and current.args
            and isinstance(current.args[0], BaseException)
        ):
            nested = current.args[0]  # requests wraps urllib3's errors
        current = nested if isinstance(nested, BaseException) else current.__cause__ or current.__context__
    return text


def _seconds_left(deadline: Deadline) -> str:
    """What is left of the call, in seconds, as the header's value (``"599.996"``)."""
    return str(round(max(deadline.remaining(), 0.001), 3))


class CredentialHeaders(requests.auth.AuthBase):
    """Puts the credential headers on a request as it is sent, so that no frame of the client holds them
    (a traceback that prints locals, as ``%xmode Verbose`` does, shows only this object's redacted repr)."""

    def __init__(self, make_headers: Callable[[], dict[str, str]]) -> None:
        self._make_headers = make_headers

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.update(self._make_headers())
        return request

    def __repr__(self) -> str:
        return "<credentials: redacted>"


@dataclass
class Reply:
    """A 2xx answer: the response (status, headers) and its whole body, read within the call's deadline;
    for an event stream the body is still to read (``body`` None: read it with :meth:`Transport.relay`)."""

    response: requests.Response
    body: bytes | None

    @property
    def request_id(self) -> str | None:
        return request_id(self.response)

    @property
    def content_type(self) -> str:
        return self.response.headers.get("content-type", "application/json")


class Transport:
    """Sends calls over one HTTP session: a timeout on each, retries with backoff, typed redacted errors.

    ``credentials`` makes the credential headers when a call that needs them is sent; ``secrets``
    are the texts taken out of every error and log line (more are added as they are learnt,
    such as a refreshed token). ``timeout`` is ``(connect, call)`` seconds; ``retry`` decides
    what is tried again.
    """

    def __init__(
        self,
        *,
        credentials: Callable[[], dict[str, str]],
        secrets: list[str],
        timeout: Timeout,
        retry: RetryPolicy,
        session: requests.Session | None = None,
        default_headers: dict[str, str] | None = None,
    ) -> None:
        self.timeout = timeout
        self.retry = retry
        self._owns_session = session is None
        self.session = session if session is not None else requests.Session()
        self.default_headers = dict(default_headers or {})
        self.auth = CredentialHeaders(credentials)
        self._secrets = secrets

    def add_secret(self, text: str | None) -> None:
        """Redact ``text`` from now on (a token fetched after the client was made)."""
        if text and text not in self._secrets:
            self._secrets.append(text)

    def api_headers(self) -> dict[str, str]:
        """The headers of an API call but its credentials (those go on at the last moment: :attr:`auth`)."""
        return {"User-Agent": user_agent(), **self.default_headers}

    def deadline(self, hooks: CallHooks) -> Deadline:
        """When the whole call must be over: the call's ``timeout``, else this transport's."""
        return Deadline(call_seconds(self.timeout, hooks.timeout))

    # -- sending -----------------------------------------------------------------------------

    def send(
        self,
        method: str,
        url: str,
        hooks: CallHooks,
        deadline: Deadline,
        *,
        credentials: bool = True,
        stream: bool = False,
        retry_rate_limits: bool = True,
        **kwargs: Any,
    ) -> Reply:
        """One call, retried while the failure may pass and time is left; a 2xx reply, else it raises.

        ``credentials=False`` sends neither the credentials nor the API's headers (a result's link).
        ``stream``: an event-stream answer is handed back unread. ``retry_rate_limits=False``: a 429
        raises at once (its caller paces the calls). A busy workshop's 429 is tried again after the wait
        it asks for, not counted as a retry, unless the deadline passes first: then it raises at once,
        saying when to come back."""
        if credentials:
            kwargs.update(headers=self.api_headers(), auth=self.auth)
        else:
            kwargs.setdefault("headers", {"User-Agent": user_agent()})
        says_timeout = credentials and not any(
            name.lower() == READ_TIMEOUT_HEADER for name in kwargs["headers"]
        )
        retries_done = 0
        while True:
            hooks.check_cancelled()
            if says_timeout:
                kwargs["headers"] = {**kwargs["headers"], READ_TIMEOUT_HEADER: _seconds_left(deadline)}
            log.debug(
                "%s %s (try %d of %d)", method, safe_url(url), retries_done + 1, self.retry.max_retries + 1
            )
            started = time.perf_counter()
            retry_after = None
            try:
                response = self.session.request(
                    method,
                    url,
                    timeout=deadline.timeout(self.timeout[0]),
                    stream=True,
                    allow_redirects=False,
                    **kwargs,
                )
                streamed = stream and succeeded(response) and is_event_stream(response)
                body = None if streamed else read_body(response, deadline)  # a broken body is retried
            except TRANSFER_ERRORS as exc:
                error: APIError = self.connection_error(exc, url, deadline)
                retryable = not deadline.passed()
            else:
                log.debug(
                    "HTTP %d in %.2f s (request id %s)",
                    response.status_code,
                    time.perf_counter() - started,
                    self.redact(request_id(response) or "-"),
                )
                if succeeded(response):
                    return Reply(response, body)
                retry_after = parse_retry_after(response.headers)
                if response.status_code == 429 and not retry_rate_limits:
                    reset = retry_after if retry_after is not None else rate_limit_reset(response.headers)
                    response.close()
                    raise self._status_error(response, body or b"", reset)
                error = self._status_error(response, body or b"", retry_after)
                response.close()
                if isinstance(error, WorkshopBusyError) and error.retry_after is not None:
                    self._wait_for_room(error, hooks, deadline)
                    continue
                retryable = self.retry.should_retry(response.status_code, response.headers, error)
                if retry_after is not None and retry_after > min(
                    self.retry.max_retry_after, deadline.remaining()
                ):
                    raise come_back_later(
                        error, retry_after, min(self.retry.max_retry_after, deadline.seconds)
                    )
            if not retryable or retries_done >= self.retry.max_retries:
                raise error
            delay = self.retry.delay(retries_done, retry_after)
            if delay >= deadline.remaining():
                raise error  # no time is left for another try
            log.debug("retrying in %.2f s after: %s", delay, error)  # error is redacted already
            self.retry.wait(delay, hooks.cancel)
            retries_done += 1

    def _wait_for_room(self, error: WorkshopBusyError, hooks: CallHooks, deadline: Deadline) -> None:
        """Wait as long as a busy workshop asks, telling the caller; raise ``error`` saying when to come
        back when the call's deadline would pass first: before the wait is over, or before the queue's
        estimated wait is (the server would only say it is busy again)."""
        wait = max(error.retry_after or 0.0, BUSY_MIN_WAIT_S)
        if max(wait, error.wait_s or 0.0) + BUSY_MIN_WAIT_S >= deadline.remaining():
            raise come_back_later(error, wait, deadline.seconds)
        log.info("the workshop server is busy: trying again in %.0f s", wait)
        wait_for_room(error, wait, hooks, lambda seconds: self.retry.wait(seconds, hooks.cancel))

    def get_once(self, url: str, seconds: float) -> tuple[requests.Response, bytes] | None:
        """One credentialed ``GET`` and its whole body within ``seconds``, never retried; None when it
        fails or answers other than 2xx (a question whose answer is optional, such as a model list)."""
        deadline = Deadline(seconds)
        try:
            response = self.session.get(
                url,
                headers=self.api_headers(),
                auth=self.auth,
                timeout=deadline.timeout(seconds / 2),
                allow_redirects=False,
                stream=True,
            )
            with response:
                if not succeeded(response):
                    log.debug("GET %s answered HTTP %d", safe_url(url), response.status_code)
                    return None
                return response, read_body(response, deadline)
        except TRANSFER_ERRORS as exc:
            log.debug("GET %s failed: %s", safe_url(url), self.redact(root_reason(exc)))
            return None

    def relay(self, reply: Reply, deadline: Deadline) -> Generator[bytes, None, None]:
        """A streamed reply's body as it arrives; a broken transfer raises a typed error."""
        try:
            yield from iter_body(reply.response, deadline)
        except TRANSFER_ERRORS as exc:
            raise self.connection_error(exc, reply.response.url, deadline) from None
        finally:
            reply.response.close()

    # -- errors, with every secret taken out -------------------------------------------------

    def _status_error(self, response: requests.Response, body: bytes, retry_after: float | None) -> APIError:
        error = error_from_response(
            response.status_code,
            body,
            request_id=request_id(response),
            retry_after=retry_after,
            host=host_of(response.url or ""),
        )
        if 300 <= response.status_code < 400:
            error.message = (
                f"The server redirected the call (HTTP {response.status_code}) to "
                f"{safe_url(response.headers.get('location', '?'))}: use that address as the base URL."
            )
        return self.redacted(error)

    def connection_error(self, exc: Exception, url: str, deadline: Deadline) -> APIError:
        """The typed error (timeout or connection) for a failure to move a call or its answer."""
        where = host_of(url)
        if isinstance(exc, DeadlinePassed):
            return APITimeoutError(f"{where} did not finish its answer within {deadline.seconds:g} s.")
        if isinstance(exc, requests.ConnectTimeout):
            return APITimeoutError(
                f"Could not connect to {where} within {min(self.timeout[0], deadline.seconds):g} s."
            )
        # requests reports a read timeout inside a streamed body as a ConnectionError
        if isinstance(exc, (requests.Timeout, ReadTimeoutError)) or (
            exc.args and isinstance(exc.args[0], ReadTimeoutError)
        ):
            return APITimeoutError(f"{where} did not answer within {deadline.seconds:g} s.")
        reason = self.redact(root_reason(exc))
        if len(reason) > 300:
            reason = reason[:300] + "..."
        return APIConnectionError(f"The connection to {where} failed ({reason}).")

    def redact(self, text: str) -> str:
        """``text`` with every secret this transport holds replaced by ``***``."""
        return redact(text, self._secrets)

    def redacted(self, error: APIError) -> APIError:
        """``error`` with every secret taken out of its message, param, code, type, request id and body
        (a server may echo a key back)."""
        error.message = self.redact(error.message)
        error.param, error.code = self._redact_text(error.param), self._redact_text(error.code)
        error.type, error.request_id = self._redact_text(error.type), self._redact_text(error.request_id)
        error.body = self._redact_value(error.body)
        error.args = (error.message,)
        return error

    def _redact_text(self, value: str | None) -> str | None:
        return self.redact(value) if isinstance(value, str) else value

    def _redact_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {self.redact(str(k)): self._redact_value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._redact_value(item) for item in value]
        return value

    def close(self) -> None:
        """Close the HTTP session (unless it was passed in: then its owner closes it)."""
        if self._owns_session:
            self.session.close()
