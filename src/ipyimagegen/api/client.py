"""The HTTP client for the OpenAI Images API, Azure OpenAI and any server that speaks the same API.

One :class:`requests.Session`, a timeout on every call, retries with backoff, typed errors
made from the API's error JSON, and streamed partial images for gpt-image models. Every
result holds the image bytes: URL results are downloaded at once.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, Literal

import requests
import urllib3.exceptions
from urllib3.exceptions import ReadTimeoutError

from .._version import __version__
from ..models import (
    EDITS,
    GENERATIONS,
    GPT_IMAGE,
    VARIATIONS,
    ModelChoice,
    ModelSpec,
    is_image_model_name,
    live_models,
    model_spec,
    recommended_model,
)
from ..models import today as _today
from .backend import BaseBackend
from .class_wall import MAX_SHARED_PROMPT, WALL_HEADER, shared_file
from .config import (
    DEFAULT_TIMEOUT,
    AzureSettings,
    OpenAISettings,
    Secret,
    Timeout,
    TokenProvider,
    as_secret,
    as_timeout,
    call_seconds,
    host_of,
    safe_url,
)
from .deadline import Deadline, DeadlinePassed, iter_body, read_body
from .errors import (
    CONTENT_POLICY_CODES,
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    ConfigurationError,
    ContentPolicyError,
    ResultExpiredError,
    UnsupportedError,
    error_from_response,
    parse_error_body,
    redact,
)
from .queue_watch import QUEUE_HEADER, QueueWatch
from .retry import RetryPolicy, come_back_later, parse_retry_after, rate_limit_reset
from .sse import iter_events
from .types import (
    MIME_BY_FORMAT,
    CallHooks,
    EditRequest,
    GeneratedImage,
    GenerateRequest,
    ImageRequest,
    ImagesResponse,
    PartialImage,
    VariationRequest,
    sniff_mime_type,
)

__all__ = ["AzureOpenAIClient", "OpenAIClient"]

log = logging.getLogger("ipyimagegen.api")

_REQUEST_ID_HEADERS = ("x-request-id", "apim-request-id")
_OUTPUT_FIELDS = ("output_format", "background", "size", "quality", "safety_identifier")
_TRANSFER_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, DeadlinePassed)
"""What moving a request or its answer can raise: requests' own errors, urllib3's from a body read
as it arrives, and the call's deadline passing."""
MODEL_LIST_SECONDS = 10.0
"""``GET /models`` is asked once per client, briefly: a slow list must not hold up the studio."""
SHARE_SECONDS = 30.0
"""How long sharing a picture on a class wall may take."""


def _user_agent() -> str:
    return f"ipyimagegen/{__version__}"


def _form_value(value: Any) -> str:
    """A parameter as a multipart form field."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return json.dumps(value)
    return str(value)


def form_fields(name: str, value: Any) -> list[tuple[str, str]]:
    """A parameter as multipart fields: an object becomes ``name[key]`` fields (``svg[model]``)."""
    if isinstance(value, dict):
        return [
            pair
            for key, item in value.items()
            if item is not None
            for pair in form_fields(f"{name}[{key}]", item)
        ]
    return [(name, _form_value(value))]


class _CredentialHeaders(requests.auth.AuthBase):
    """Puts the credential headers on a request as it is sent, so that no frame of the client holds them
    (a traceback that prints locals, as ``%xmode Verbose`` does, shows only this object's redacted repr)."""

    def __init__(self, make_headers: Callable[[], dict[str, str]]) -> None:
        self._make_headers = make_headers

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.update(self._make_headers())
        return request

    def __repr__(self) -> str:
        return "<credentials: redacted>"


def _shutdown_dates(payload: Any) -> dict[str, date | None] | None:
    """``{model id: shutdown date or None}`` from a ``GET /models`` answer (None if it is not one)."""
    items = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(items, list):
        return None
    found: dict[str, date | None] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            continue
        when = item.get("shutdown_date")
        try:
            found[item["id"]] = date.fromisoformat(when) if isinstance(when, str) and when else None
        except ValueError:
            found[item["id"]] = None
    return found


def named_page_url(base_url: str, named: str | None) -> str | None:
    """The page (queue, wall) a workshop server names, under the API's own address; None for anything else."""
    if not named or not re.fullmatch(r"[a-z][a-z0-9_-]*", named):
        return None
    return f"{base_url.rstrip('/')}/{named}"


def _request_id(response: requests.Response) -> str | None:
    for name in _REQUEST_ID_HEADERS:
        if response.headers.get(name):
            return response.headers[name]
    return None


def _succeeded(response: requests.Response) -> bool:
    return 200 <= response.status_code < 300


def _is_event_stream(response: requests.Response) -> bool:
    return response.headers.get("content-type", "").startswith("text/event-stream")


def _root_reason(exc: BaseException) -> str:
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


@dataclass
class Forwarded:
    """A successful answer passed on as it came: its content type, and its body or, for a stream,
    its chunks as they arrive."""

    content_type: str
    body: bytes = b""
    chunks: Iterator[bytes] | None = None


def _mime_type(data: bytes, output_format: Any) -> str:
    sniffed = sniff_mime_type(data)
    if sniffed != "application/octet-stream":
        return sniffed
    return MIME_BY_FORMAT.get(str(output_format or "").lower(), "image/png")


class OpenAIClient(BaseBackend):
    """The Images API over HTTP: OpenAI itself, or any server that speaks the same API.

    Settings come from the arguments, else from ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``,
    ``OPENAI_ORG_ID`` and ``OPENAI_PROJECT_ID``. A key is required for OpenAI's own API;
    a local or workshop server (another ``base_url``) may need none.

    ``timeout`` is the seconds a whole call may take (every try, the waits between them and
    any download), or a ``(connect, call)`` pair (default 10 s to connect, 600 s a call: a
    high-quality gpt-image call can take minutes); a call's own ``timeout=`` replaces the
    second. Failed calls that may succeed on another try are retried ``max_retries`` times
    with backoff, while time is left. ``sleep`` replaces the wait
    between tries (for tests).
    """

    offline = False

    def __init__(
        self,
        *,
        api_key: str | Secret | None = None,
        base_url: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        timeout: float | tuple[float, float] | None = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        session: requests.Session | None = None,
        default_headers: dict[str, str] | None = None,
        default_model: str | None = None,
        sleep: Callable[[float], None] | None = None,
        follow_shutdowns: bool | None = None,
        _settings: OpenAISettings | None = None,
        _secrets: tuple[Secret | None, ...] = (),
    ) -> None:
        key = as_secret(api_key)  # from here on no frame holds the key in plain text
        del api_key
        settings = _settings or OpenAISettings.resolve(
            api_key=key, base_url=base_url, organization=organization, project=project
        )
        self._settings = settings
        self.base_url = settings.base_url
        self._secrets = [secret.reveal() for secret in (settings.api_key, *_secrets) if secret]
        self.timeout: Timeout = as_timeout(timeout)
        self.retry = RetryPolicy(max_retries=max_retries, sleep=sleep)
        self._owns_session = session is None
        self.session = session if session is not None else requests.Session()
        self.default_headers = dict(default_headers or {})
        self._auth = _CredentialHeaders(self._auth_headers)
        self._follow_shutdowns = settings.is_public_api if follow_shutdowns is None else follow_shutdowns
        self.default_model = default_model or recommended_model("openai")
        self._listed: dict[str, date | None] | None = None
        self._listed_asked = False
        self._list_lock = threading.Lock()
        self._queue_url: str | None = None  # a workshop server's queue page, once GET /models names it
        self._wall_url: str | None = None  # and its class wall
        host = host_of(self.base_url)
        self.name = f"OpenAI ({host})" if settings.is_public_api else f"Images API at {host}"

    # -- what subclasses change --------------------------------------------------------------

    @property
    def sends_seed(self) -> bool:
        """Compatible and local servers honour ``seed``; OpenAI's own API rejects it."""
        return not self._settings.is_public_api

    @property
    def enforces_shutdowns(self) -> bool:  # type: ignore[override]
        """OpenAI's own models shut down on the catalogue's dates; a compatible server decides for itself."""
        return self._follow_shutdowns

    # -- which models, and until when -------------------------------------------------------

    def listed_models(self) -> dict[str, date | None] | None:
        """``GET /models``, asked once: model ids and their ``shutdown_date`` (None if it did not answer)."""
        with self._list_lock:
            if not self._listed_asked:
                self._listed_asked = True
                self._listed = self._fetch_model_list()
            return self._listed

    def refresh_models(self) -> None:
        """Ask ``GET /models`` again on the next look-up (models come and go)."""
        with self._list_lock:
            self._listed_asked = False
            self._listed = None

    def _fetch_model_list(self) -> dict[str, date | None] | None:
        deadline = Deadline(MODEL_LIST_SECONDS)
        try:
            response = self.session.get(
                self.models_url(),
                headers=self._api_headers(),
                auth=self._auth,
                timeout=deadline.timeout(MODEL_LIST_SECONDS / 2),
                allow_redirects=False,
                stream=True,
            )
            with response:
                if not _succeeded(response):
                    log.debug("GET models answered HTTP %d", response.status_code)
                    return None
                self._queue_url = named_page_url(self.base_url, response.headers.get(QUEUE_HEADER))
                self._wall_url = named_page_url(self.base_url, response.headers.get(WALL_HEADER))
                return _shutdown_dates(json.loads(read_body(response, deadline)))
        except _TRANSFER_ERRORS as exc:
            log.debug("GET models failed: %s", self._redact(_root_reason(exc)))
            return None
        except ValueError:
            return None

    def models_url(self) -> str:
        return f"{self.base_url}/models"

    def models(self, endpoint: str = GENERATIONS) -> list[str]:
        """The image models to offer: OpenAI's live ones that ``GET /models`` lists (with its shutdown dates),
        or a compatible server's own list; the catalogue's live models where there is no list."""
        listed = self.listed_models()
        if listed is None:
            return live_models(endpoint) if self._follow_shutdowns else super().models(endpoint)
        alive = {
            name
            for name, end in listed.items()
            if is_image_model_name(name) and not (end and end <= _today())
        }
        if self._follow_shutdowns:
            known = [name for name in live_models(endpoint) if name in alive]
            new = [
                name
                for name in listed
                if name in alive and not model_spec(name).known and model_spec(name).serves(endpoint)
            ]
            return known + new or live_models(endpoint)
        return [name for name in listed if name in alive and self.spec_for(name).serves(endpoint)]

    def serves_model(self, model: str) -> bool:
        """Any name: the server this client calls decides (and answers its own error)."""
        return True

    def shutdown_date(self, model: str) -> date | None:
        """``GET /models``'s shutdown date where it gives one (it overrides the catalogue's), else the catalogue's."""
        listed = self._listed  # only what was asked already: a call never waits for the list
        if listed is not None and listed.get(model) is not None:
            return listed[model]
        return super().shutdown_date(model)

    def endpoint_url(self, endpoint: str) -> str:
        """The URL of ``generations``, ``edits`` or ``variations``."""
        return f"{self.base_url}/images/{endpoint}"

    def _auth_headers(self) -> dict[str, str]:
        headers = {}
        if self._settings.api_key:
            headers["Authorization"] = f"Bearer {self._settings.api_key.reveal()}"
        if self._settings.organization:
            headers["OpenAI-Organization"] = self._settings.organization
        if self._settings.project:
            headers["OpenAI-Project"] = self._settings.project
        return headers

    def _describe_settings(self) -> str:
        key = "set" if self._settings.api_key else "not set"
        return f"base_url={safe_url(self.base_url)!r}, api_key {key}"

    # -- the Backend protocol ----------------------------------------------------------------

    def supports_streaming(self, model: str) -> bool:
        """GPT image models can stream partial images while they work."""
        return self.spec_for(model).streams

    def _generate(self, request: GenerateRequest, hooks: CallHooks) -> ImagesResponse:
        return self._call(request, hooks, self._streams(request, hooks))

    def _edit(self, request: EditRequest, hooks: CallHooks) -> ImagesResponse:
        return self._call(request, hooks, self._streams(request, hooks))

    def _create_variation(self, request: VariationRequest, hooks: CallHooks) -> ImagesResponse:
        return self._call(request, hooks, False)

    @property
    def shares_pictures(self) -> bool:
        """Whether the server's ``GET /models`` named a class wall (asked when the models are listed)."""
        return self._wall_url is not None

    def share_picture(self, image: bytes, prompt: str = "") -> None:
        """Put a picture, with its prompt, on the workshop server's class wall (made smaller first)."""
        self.listed_models()  # the wall is named there
        if self._wall_url is None:
            super().share_picture(image, prompt)
        assert self._wall_url is not None
        self._send(
            "POST",
            self._wall_url,
            CallHooks(),
            Deadline(SHARE_SECONDS),
            headers=self._api_headers(),
            auth=self._auth,
            files=[("image", shared_file(image))],
            data=[("prompt", prompt[:MAX_SHARED_PROMPT])],
        )

    def forward(
        self, request: ImageRequest, *, stream: bool = False, hooks: CallHooks | None = None
    ) -> Forwarded:
        """Send ``request`` as :meth:`run` does, and hand back the answer as the server gave it: nothing
        decoded or encoded again (what a proxy passes on). ``stream``: ask for server-sent events (GPT
        image models). Errors raise as they do for :meth:`run`, but a refusal for the server's rate
        (429) raises at once, never retried here: the proxy's queue paces its calls and sends it again.
        Its ``retry_after`` is the server's ``Retry-After``, else when its exhausted limit resets
        (``x-ratelimit-reset-*``)."""
        hooks = hooks or CallHooks()
        self.check_request(request)
        streaming = stream and self.supports_streaming(request.model)
        deadline = self._deadline(hooks)
        response = self._post(request, hooks, deadline, streaming, retry_rate_limits=False)
        content_type = response.headers.get("content-type", "application/json")
        if streaming and _is_event_stream(response):
            return Forwarded(content_type, chunks=self._relay(response, deadline))
        return Forwarded(content_type, body=response.content)

    def _relay(self, response: requests.Response, deadline: Deadline) -> Iterator[bytes]:
        try:
            yield from iter_body(response, deadline)
        except _TRANSFER_ERRORS as exc:
            raise self._connection_error(exc, response.url, deadline) from None
        finally:
            response.close()

    # -- building requests -------------------------------------------------------------------

    def _streams(self, request: GenerateRequest | EditRequest, hooks: CallHooks) -> bool:
        return (
            bool(request.partial_images)
            and hooks.on_partial is not None
            and self.supports_streaming(request.model)
        )

    def _parameters(self, request: ImageRequest, streaming: bool) -> dict[str, Any]:
        """The body parameters of a request, as this service wants them."""
        params = request.options()
        partial_images = params.pop("partial_images", None)
        if not self.sends_seed:
            params.pop("seed", None)
        if self.spec_for(request.model).family == GPT_IMAGE:
            params.pop("response_format", None)  # GPT image models always answer base64 and refuse the field
        else:
            params["response_format"] = request.response_format or "b64_json"
        if streaming:
            if partial_images is not None:
                params["partial_images"] = partial_images
            params["stream"] = True
        return params

    def _body(self, request: ImageRequest, streaming: bool) -> tuple[str, dict[str, Any]]:
        """The URL and the body (JSON, or multipart fields and files) of a request."""
        parameters = self._parameters(request, streaming)
        if isinstance(request, GenerateRequest):
            return self.endpoint_url(GENERATIONS), {"json": parameters}
        files: list[tuple[str, tuple[str, bytes, str]]] = []
        if isinstance(request, EditRequest):
            field = "image" if len(request.images) == 1 else "image[]"
            files = [(field, image.as_file_tuple()) for image in request.images]
            for name in ("mask", "markup"):
                extra = getattr(request, name)
                if extra is not None:
                    files.append((name, extra.as_file_tuple()))
            endpoint = EDITS
        else:
            assert request.image is not None  # validation makes sure
            files = [("image", request.image.as_file_tuple())]
            endpoint = VARIATIONS
        fields = [pair for name, value in parameters.items() for pair in form_fields(name, value)]
        return self.endpoint_url(endpoint), {"data": fields, "files": files}

    def _post(
        self,
        request: ImageRequest,
        hooks: CallHooks,
        deadline: Deadline,
        streaming: bool,
        *,
        retry_rate_limits: bool = True,
    ) -> requests.Response:
        url, body = self._body(request, streaming)
        return self._send(
            "POST",
            url,
            hooks,
            deadline,
            headers=self._api_headers(),
            auth=self._auth,
            stream=streaming,
            retry_rate_limits=retry_rate_limits,
            **body,
        )

    def _deadline(self, hooks: CallHooks) -> Deadline:
        """When the whole call must be over: the call's ``timeout``, else the client's."""
        return Deadline(call_seconds(self.timeout, hooks.timeout))

    def _call(self, request: ImageRequest, hooks: CallHooks, streaming: bool) -> ImagesResponse:
        deadline = self._deadline(hooks)
        if self._queue_url is not None and hooks.on_progress is not None:  # a workshop server's queue
            watch = QueueWatch(
                self.session, self._queue_url, hooks, auth=self._auth, headers=self._api_headers()
            )
            with watch:
                response = self._post(request, hooks, deadline, streaming)
        else:
            response = self._post(request, hooks, deadline, streaming)
        if streaming and _is_event_stream(response):
            return self._read_stream(response, hooks, deadline)
        return self._read_images(response, hooks, deadline)

    def _api_headers(self) -> dict[str, str]:
        """The headers of an API call but its credentials (those go on at the last moment: ``self._auth``)."""
        return {"User-Agent": _user_agent(), **self.default_headers}

    # -- sending, with retries ---------------------------------------------------------------

    def _send(
        self,
        method: str,
        url: str,
        hooks: CallHooks,
        deadline: Deadline,
        *,
        stream: bool = False,
        retry_rate_limits: bool = True,
        **kwargs: Any,
    ) -> requests.Response:
        """One call, retried while the failure may pass and time is left; returns a 2xx response or raises.
        ``retry_rate_limits=False``: a 429 raises at once (its caller paces the calls)."""
        kwargs.setdefault("headers", {"User-Agent": _user_agent()})
        retries_done = 0
        while True:
            hooks.check_cancelled()
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
                if not (stream and _succeeded(response) and _is_event_stream(response)):
                    read_body(response, deadline)  # the body is read here, so a broken one is retried
            except _TRANSFER_ERRORS as exc:
                error: APIError = self._connection_error(exc, url, deadline)
                retryable = not deadline.passed()
            else:
                log.debug(
                    "HTTP %d in %.2f s (request id %s)",
                    response.status_code,
                    time.perf_counter() - started,
                    self._redact(_request_id(response) or "-"),
                )
                if _succeeded(response):
                    return response
                retry_after = parse_retry_after(response.headers)
                if response.status_code == 429 and not retry_rate_limits:
                    reset = retry_after if retry_after is not None else rate_limit_reset(response.headers)
                    error = self._status_error(response, reset)
                    response.close()
                    raise error
                error = self._status_error(response, retry_after)
                retryable = self.retry.should_retry(response.status_code, response.headers, error)
                response.close()
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

    def _status_error(self, response: requests.Response, retry_after: float | None) -> APIError:
        error = error_from_response(
            response.status_code,
            response.content,
            request_id=_request_id(response),
            retry_after=retry_after,
        )
        if 300 <= response.status_code < 400:
            error.message = (
                f"The server redirected the call (HTTP {response.status_code}) to "
                f"{safe_url(response.headers.get('location', '?'))}: use that address as the base URL."
            )
        return self._redacted(error)

    def _redacted(self, error: APIError) -> APIError:
        """``error`` with every secret this client holds taken out of its message, param, code, type,
        request id and body (a server may echo a key back)."""
        error.message = self._redact(error.message)
        for name in ("param", "code", "type", "request_id"):
            value = getattr(error, name)
            if isinstance(value, str):
                setattr(error, name, self._redact(value))
        error.body = self._redact_value(error.body)
        error.args = (error.message,)
        return error

    def _redact_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._redact(value)
        if isinstance(value, dict):
            return {self._redact(str(k)): self._redact_value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._redact_value(item) for item in value]
        return value

    def _connection_error(self, exc: Exception, url: str, deadline: Deadline) -> APIError:
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
        reason = self._redact(_root_reason(exc))
        if len(reason) > 300:
            reason = reason[:300] + "..."
        return APIConnectionError(f"The connection to {where} failed ({reason}).")

    def _redact(self, text: str) -> str:
        """``text`` with every secret this client holds replaced by ``***``."""
        return redact(text, self._secrets)

    # -- reading answers ---------------------------------------------------------------------

    def _read_images(
        self, response: requests.Response, hooks: CallHooks, deadline: Deadline
    ) -> ImagesResponse:
        """An ImagesResponse from the API's JSON answer (URL results downloaded)."""
        request_id = _request_id(response)
        payload = self._json(response, request_id)
        items = payload.get("data")
        if not isinstance(items, list):
            raise APIError(
                "The server's answer has no 'data' list of images: is the base URL an Images API?",
                status_code=response.status_code,
                request_id=request_id,
            )
        details = {name: payload[name] for name in _OUTPUT_FIELDS if payload.get(name) is not None}
        images = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise APIError(f"Image {index} of the answer is not an object.", request_id=request_id)
            url = item.get("url")
            if item.get("b64_json"):
                data = self._decode(item["b64_json"], request_id)
            elif url:
                data = self._download(url, hooks, deadline)
            else:
                raise APIError(
                    f"Image {index} of the answer has neither b64_json nor url.", request_id=request_id
                )
            images.append(
                GeneratedImage(
                    data=data,
                    mime_type=_mime_type(data, payload.get("output_format")),
                    index=index,
                    revised_prompt=item.get("revised_prompt") or None,
                    url=url,
                    metadata=dict(details),
                )
            )
        return ImagesResponse(
            data=images,
            created=payload.get("created") or int(time.time()),
            request_id=request_id,
            usage=payload.get("usage"),
        )

    def _json(self, response: requests.Response, request_id: str | None) -> dict[str, Any]:
        try:
            payload = response.json()
        except ValueError:
            raise APIError(
                f"The server answered HTTP {response.status_code} with something that is not JSON "
                f"({response.headers.get('content-type', 'no content type')}): is the base URL an Images API?",
                status_code=response.status_code,
                request_id=request_id,
            ) from None
        if not isinstance(payload, dict):
            raise APIError("The server's answer is not a JSON object.", request_id=request_id)
        return payload

    @staticmethod
    def _decode(b64: Any, request_id: str | None) -> bytes:
        try:
            return base64.b64decode(b64, validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise APIError(
                "The server sent an image that is not valid base64.", request_id=request_id
            ) from None

    def _download(self, url: str, hooks: CallHooks, deadline: Deadline) -> bytes:
        """The bytes behind a result URL (sent without the API's credentials)."""
        log.debug("downloading %s", safe_url(url))
        try:
            response = self._send("GET", url, hooks, deadline)
        except APIStatusError as exc:
            if exc.status_code in (403, 404, 410):  # OpenAI's links are signed and end after an hour
                raise ResultExpiredError(
                    f"The image's link has expired or is gone (HTTP {exc.status_code} for {safe_url(url)}): "
                    "result links last about an hour.",
                    status_code=exc.status_code,
                    request_id=exc.request_id,
                ) from None
            raise
        return response.content

    def _read_stream(
        self, response: requests.Response, hooks: CallHooks, deadline: Deadline
    ) -> ImagesResponse:
        """Read a stream of partial and completed image events; partials go to ``hooks``."""
        request_id = _request_id(response)
        images: list[GeneratedImage] = []
        usage = None
        try:
            for payload in self._stream_payloads(response, request_id, deadline):
                kind = str(payload.get("type", ""))
                if kind.endswith(".partial_image"):
                    data = self._decode(payload.get("b64_json"), request_id)
                    hooks.partial(
                        PartialImage(
                            index=len(images),
                            partial_index=int(payload.get("partial_image_index", 0)),
                            data=data,
                            mime_type=_mime_type(data, payload.get("output_format")),
                        )
                    )
                elif kind.endswith(".completed"):
                    data = self._decode(payload.get("b64_json"), request_id)
                    details = {
                        name: payload[name] for name in _OUTPUT_FIELDS if payload.get(name) is not None
                    }
                    images.append(
                        GeneratedImage(
                            data=data,
                            mime_type=_mime_type(data, payload.get("output_format")),
                            index=len(images),
                            metadata=details,
                        )
                    )
                    usage = payload.get("usage") or usage
                hooks.check_cancelled()  # stop reading at once: the rest of the stream may take minutes
        except _TRANSFER_ERRORS as exc:
            raise self._connection_error(exc, response.url, deadline) from None
        finally:
            response.close()
        hooks.check_cancelled()
        if not images:
            raise APIConnectionError(
                "The stream ended before the image was complete: try again.", request_id=request_id
            )
        return ImagesResponse(data=images, request_id=request_id, usage=usage)

    def _stream_payloads(
        self, response: requests.Response, request_id: str | None, deadline: Deadline
    ) -> Iterator[dict[str, Any]]:
        """The JSON payloads of a stream's events; an error event raises."""
        for event in iter_events(iter_body(response, deadline)):
            if event.data.strip() == "[DONE]":
                return
            try:
                payload = json.loads(event.data)
            except ValueError:
                raise APIError(
                    "The server streamed an event that is not JSON.", request_id=request_id
                ) from None
            if not isinstance(payload, dict):
                continue
            if event.event == "error" or payload.get("type") == "error" or "error" in payload:
                raise self._stream_error(payload, request_id)
            yield payload

    def _stream_error(self, payload: dict[str, Any], request_id: str | None) -> APIError:
        error, body = parse_error_body(json.dumps(payload))
        if not error:
            error = payload
        message = self._redact(str(error.get("message") or "The server reported an error while streaming."))
        code = str(error["code"]) if error.get("code") is not None else None
        cls = ContentPolicyError if code in CONTENT_POLICY_CODES else APIError
        return self._redacted(
            cls(
                message,
                code=code,
                param=error.get("param"),
                type=error.get("type"),
                request_id=request_id,
                body=body,
            )
        )

    # -- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the HTTP session (unless it was passed in: then its owner closes it)."""
        if self._owns_session:
            self.session.close()

    def __enter__(self) -> OpenAIClient:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._describe_settings()})"


class AzureOpenAIClient(OpenAIClient):
    """The Images API of one Azure OpenAI deployment.

    Settings come from the arguments, else ``AZURE_OPENAI_ENDPOINT``, ``AZURE_OPENAI_DEPLOYMENT``,
    ``OPENAI_API_VERSION``, ``AZURE_OPENAI_API_KEY`` and ``AZURE_OPENAI_AD_TOKEN``. Instead of a
    key, ``azure_ad_token`` may be a Microsoft Entra ID token, or a function that returns a fresh
    one. ``default_model`` names the model the deployment runs when the deployment's name is not
    that model's name.

    ``route``: ``"v1"`` calls ``{endpoint}/openai/v1/images/...`` with the deployment as the
    model; ``"deployments"`` calls ``{endpoint}/openai/deployments/{deployment}/images/...?api-version=``.
    By default an API version (argument or ``OPENAI_API_VERSION``) chooses the deployments route,
    and none the v1 route.
    """

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        deployment: str | None = None,
        api_version: str | None = None,
        api_key: str | Secret | None = None,
        azure_ad_token: str | Secret | TokenProvider | None = None,
        route: Literal["v1", "deployments"] | None = None,
        timeout: float | tuple[float, float] | None = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        session: requests.Session | None = None,
        default_headers: dict[str, str] | None = None,
        default_model: str | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        key = as_secret(api_key)  # from here on no frame holds the key in plain text
        token = azure_ad_token if callable(azure_ad_token) else as_secret(azure_ad_token)
        del api_key, azure_ad_token
        settings = AzureSettings.resolve(
            endpoint=endpoint,
            deployment=deployment,
            api_version=api_version,
            api_key=key,
            azure_ad_token=token,
        )
        if route is None:
            route = "deployments" if settings.api_version_given else "v1"
        if route not in ("v1", "deployments"):
            raise ConfigurationError(f"route must be 'v1' or 'deployments', got {route!r}.")
        self._azure = settings
        self.route = route
        if route == "v1":
            self.base_url = f"{settings.endpoint}/openai/v1"
        else:
            self.base_url = f"{settings.endpoint}/openai/deployments/{settings.deployment}"
        secret = settings.azure_ad_token if isinstance(settings.azure_ad_token, Secret) else None
        super().__init__(
            timeout=timeout,
            max_retries=max_retries,
            session=session,
            default_headers=default_headers,
            default_model=default_model or settings.deployment,
            sleep=sleep,
            follow_shutdowns=True,
            _settings=OpenAISettings(base_url=self.base_url, api_key=settings.api_key),
            _secrets=(secret,),
        )
        self.name = f"Azure OpenAI ({host_of(settings.endpoint)}, deployment {settings.deployment})"

    @property
    def sends_seed(self) -> bool:
        return False

    def spec_for(self, model: str) -> ModelSpec:
        """A deployment named other than its model runs a GPT image model (Azure serves no other now)."""
        spec = model_spec(model)
        if spec.known or spec.is_gpt_image:
            return spec
        return replace(model_spec("gpt-image-deployment"), name=model)

    def models(self, endpoint: str = GENERATIONS) -> list[str]:
        """A deployment runs one model: offered while it serves the endpoint and is not shut down."""
        spec = self.spec_for(self.default_model)
        if not spec.serves(endpoint) or spec.lifecycle.is_shut_down():
            return []
        return [self.default_model]

    def model_for(self, endpoint: str, size: str | None = None) -> str:
        """The deployment's model (a shut-down one is refused with its replacement when the call is made)."""
        if not self.spec_for(self.default_model).serves(endpoint):
            raise UnsupportedError(f"{self.name} does not do {endpoint}.")
        return self.default_model

    def choose_model(self, endpoint: str, given: dict[str, Any]) -> ModelChoice:
        """A deployment runs one model: a call that names none means it, whatever its parameters."""
        model = self.model_for(endpoint)
        return ModelChoice(model, f"no model given, so {model}, this deployment's model")

    def listed_models(self) -> dict[str, date | None] | None:
        return None  # a deployment's model is named by its owner; there is no list to ask

    def _parameters(self, request: ImageRequest, streaming: bool) -> dict[str, Any]:
        params = super()._parameters(request, streaming)
        if self.route == "v1":
            params["model"] = self._azure.deployment  # the v1 route takes the deployment as the model
        return params

    def endpoint_url(self, endpoint: str) -> str:
        if self.route == "v1":
            return f"{self.base_url}/images/{endpoint}"
        return f"{self.base_url}/images/{endpoint}?api-version={self._azure.api_version}"

    def _auth_headers(self) -> dict[str, str]:
        if self._azure.api_key:
            return {"api-key": self._azure.api_key.reveal()}
        token = self._azure.ad_token()
        if token and token not in self._secrets:
            self._secrets.append(token)
        return {"Authorization": f"Bearer {token}"}

    def _describe_settings(self) -> str:
        credential = "api_key set" if self._azure.api_key else "azure_ad_token set"
        version = f", api_version={self._azure.api_version!r}" if self.route == "deployments" else ""
        return (
            f"endpoint={safe_url(self._azure.endpoint)!r}, deployment={self._azure.deployment!r}, "
            f"route={self.route!r}{version}, {credential}"
        )
