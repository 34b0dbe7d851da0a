"""The Starlette app: any Backend behind the routes and answers of the OpenAI Images API.

Routes (under ``/v1``): ``POST images/generations`` (JSON), ``POST images/edits`` and
``POST images/variations`` (multipart), ``GET models``, ``GET files/<name>`` (results asked
for with ``response_format=url``), ``GET usage``; and ``GET /health`` and ``GET /metrics``
(Prometheus). Each image call runs in a worker thread under a time limit. With a
:class:`TokenStore` every call needs a participant token (``Authorization: Bearer ...``) and
counts against its budget and rate.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..api.backend import Backend
from ..api.class_wall import WALL_HEADER
from ..api.errors import RateLimitError
from ..api.queue_watch import QUEUE_HEADER
from ..api.types import CallHooks, GeneratedImage, ImageRequest, ImagesResponse, PartialImage
from ..models import DALL_E, ENDPOINTS, model_spec, parse_size
from .admin import AdminPage
from .costs import cost_bound, cost_of, forwarded_cost
from .crosssite import LOOPBACK_NAMES, CrossSiteGuard
from .errors import SERVER_ERROR, ErrorReply, bad_request, error_reply_for, redact_bytes, retry_after_headers
from .fair_queue import FairQueue
from .files import ResultStore
from .limits import BodySizeLimit, PixelBudget, pixel_cost, read_json
from .metrics import ServerMetrics
from .params import (
    EDIT_FILES,
    EDIT_PARAMS,
    VARIATION_FILES,
    VARIATION_PARAMS,
    ChooseModel,
    ParsedCall,
    check_upload_sizes,
    check_uploads_decode,
    parse_edit,
    parse_generation,
    parse_variation,
    read_form,
)
from .request_ids import RequestIds, request_id_of
from .serialize import completed_event, images_payload, partial_event, sse
from .tokens import Rate, Refusal, TokenInfo, TokenStore
from .wall import DEFAULT_RATE as DEFAULT_WALL_RATE
from .wall import ClassWall, WallStore

log = logging.getLogger("ipyimagegen.server")

MB = 1024 * 1024
DEFAULT_MAX_UPLOAD_BYTES = 25 * MB
DEFAULT_REQUEST_TIMEOUT_S = 300.0
DEFAULT_URL_TTL_S = 3600.0
DEFAULT_MAX_PIXELS = 8_294_400
"""The most pixels of one image by default: 3840x2160, the largest any live OpenAI model makes."""
DEFAULT_PIXELS_AT_ONCE = 64_000_000
"""Pixels the engine works on at once by default, inputs and outputs of all calls together."""

Handler = Callable[[Request], Awaitable[Response]]


class ImagesServer:
    """The request handlers, and what they share: the backend, the tokens, the limits, the stored results."""

    def __init__(
        self,
        backend: Backend,
        *,
        tokens: TokenStore | None,
        request_timeout: float,
        url_ttl: float,
        max_concurrency: int,
        secrets: Sequence[str],
        max_pixels: int = DEFAULT_MAX_PIXELS,
        pixels_at_once: int = DEFAULT_PIXELS_AT_ONCE,
        any_model: bool = False,
        upstream_rate: Rate | None = None,
        wall: WallStore | None = None,
    ) -> None:
        self.backend = backend
        self.max_pixels = max_pixels
        self.pixels = PixelBudget(pixels_at_once)
        self.any_model = any_model
        self.tokens = tokens
        self.request_timeout = request_timeout
        self.results = ResultStore(ttl_s=url_ttl)
        self.max_concurrency = max_concurrency
        self.upstream_rate = upstream_rate
        self._queue: FairQueue | None = None
        self._threads: anyio.CapacityLimiter | None = None
        self._secrets = tuple(s for s in secrets if s)
        self.metrics = ServerMetrics(self._queue_now)
        self.wall = wall  # the class wall, when there is one (GET /models names it)

    # -- plumbing ------------------------------------------------------------------------------

    def endpoint(self, handler: Handler, route: str) -> Handler:
        """``handler`` with every exception answered as the API's error JSON, one log line per call,
        and the answer counted (a 4xx before the call ran, as a rejection by its code)."""

        async def answer(request: Request) -> Response:
            started = time.perf_counter()
            code = None
            told = ""
            try:
                response = await handler(request)
            except Exception as exc:  # every failure becomes an error answer
                reply = error_reply_for(exc, self._secrets)
                code = reply.code or reply.type
                param = f", param={reply.param[:64]!r}" if reply.param else ""  # a caller's name, quoted
                told = f" ({code}{param})"
                response = reply.response()
            ran = getattr(request.state, "ran", False)
            self.metrics.answered(route, response.status_code, None if ran else code)
            log.info(
                "%s %s %s %s -> %d%s in %.2f s",
                request_id_of(request),
                getattr(request.state, "caller", "-"),
                request.method,
                request.url.path,
                response.status_code,
                told,
                time.perf_counter() - started,
            )
            return response

        return answer

    async def _in_thread(self, func: Callable[..., Any], *args: Any) -> Any:
        return await anyio.to_thread.run_sync(func, *args)

    # -- who is calling ---------------------------------------------------------------------

    async def _authenticate(self, request: Request) -> TokenInfo | None:
        """The caller's token (None on an open server); 401 without a valid one."""
        if self.tokens is None:
            request.state.caller = "open"
            return None
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise ErrorReply(
                401,
                "You didn't provide an API key. Send your participant token as 'Authorization: Bearer TOKEN' "
                "(with the OpenAI client: api_key=TOKEN); the workshop host gives out tokens.",
                code="invalid_api_key",
            )
        info = await self._in_thread(self.tokens.authenticate, value.strip())
        if info is None:
            raise ErrorReply(
                401,
                "Incorrect API key provided: use the participant token the workshop host gave you.",
                code="invalid_api_key",
            )
        _refuse_inactive(info)
        request.state.caller = info.name
        return info

    async def _check_still_active(self, token: TokenInfo | None) -> None:
        """401 when the token was revoked or expired while its call waited for its turn."""
        if token is None or self.tokens is None:
            return
        _refuse_inactive(await self._in_thread(self.tokens.get, token.id))

    async def _check_rate(self, token: TokenInfo | None) -> None:
        if token is None or token.rate is None:
            return
        assert self.tokens is not None
        wait = await self._in_thread(self.tokens.take_rate, token.id, token.rate)
        if wait > 0:
            await self._in_thread(self.tokens.record_rejected, token.id)
            raise ErrorReply(
                429,
                f"Rate limit reached for token {token.name!r}: {token.rate.describe()}. "
                f"Try again in {max(1, round(wait))} s.",
                type="requests",
                code="rate_limit_exceeded",
                headers=retry_after_headers(wait),
            )

    async def _reserve(self, token: TokenInfo | None, image_request: ImageRequest) -> float:
        """Count the call's images, and the most it can cost in estimated dollars, against the token's
        budgets and the workshop's; 429 when they do not fit. Returns the dollars reserved."""
        if token is None:
            return 0.0
        assert self.tokens is not None
        images = image_request.n
        usd = await self._in_thread(cost_bound, image_request)
        try:
            await self._in_thread(self.tokens.reserve, token.id, images, usd)
            return usd
        except Refusal as refused:
            why = refused.what
        current = await self._in_thread(self.tokens.get, token.id)
        if why in ("revoked", "expired"):  # since the call was authenticated
            _refuse_inactive(current)
        room = await self._in_thread(self.tokens.workshop)
        if why == "images":
            told = f"Token {token.name!r} has used {current.images} of its {current.budget} images"
            told += f" (this request asks for {images})"
        elif why == "usd":
            told = (
                f"Token {token.name!r} has spent about ${current.spent_usd:.2f} of its ${current.budget_usd:.2f}, "
                f"and this request could cost up to ${usd:.2f} (choose a quality and size, or fewer images, "
                "to ask for less)"
            )
        elif why == "workshop_images":
            told = f"The workshop has used {room.images} of its {room.budget_images} images"
        else:
            told = f"The workshop has spent about ${room.spent_usd:.2f} of its ${room.budget_usd:.2f}"
        raise ErrorReply(
            429,
            f"{told}: ask the workshop host for a bigger budget.",
            type="insufficient_quota",
            code="insufficient_quota",
            headers={"x-should-retry": "false"},
        )

    async def _check_open(self, token: TokenInfo | None) -> None:
        """503 while the workshop host has paused every call (an admin token still gets through)."""
        if token is None or token.admin or self.tokens is None:
            return
        room = await self._in_thread(self.tokens.workshop)
        if room.paused:
            raise ErrorReply(
                503,
                "The workshop host has paused all calls for a moment: try again shortly.",
                type=SERVER_ERROR,
                code="workshop_paused",
                headers=retry_after_headers(30.0),
            )

    async def _refund(self, token: TokenInfo | None, images: int, usd: float = 0.0) -> None:
        if token is not None and self.tokens is not None:
            await self._in_thread(self.tokens.record_failure, token.id, images, usd)

    async def _settle(self, token: TokenInfo | None, reserved: float, spent: float) -> None:
        if token is not None and self.tokens is not None:
            await self._in_thread(self.tokens.settle, token.id, reserved, spent)

    # -- reading requests --------------------------------------------------------------------

    @staticmethod
    async def _json_body(request: Request) -> Any:
        if not request.headers.get("content-type", "").lower().startswith("application/json"):
            raise ErrorReply(
                415,
                "Send this endpoint's parameters as a JSON object with 'Content-Type: application/json'.",
                code="unsupported_content_type",
            )
        try:
            return await read_json(request)
        except RecursionError:
            raise bad_request(
                "The JSON body is nested too deeply to read: send a flat object of parameters.",
                None,
                code=None,
            ) from None
        except ValueError:
            raise bad_request(
                "We could not parse the JSON body of your request: send a JSON object of parameters "
                "with 'Content-Type: application/json'.",
                None,
                code=None,
            ) from None

    async def _form_call(
        self,
        request: Request,
        files: tuple[str, ...],
        params: dict[str, type],
        parse: Callable[..., ParsedCall],
        choose: ChooseModel,
    ) -> ParsedCall:
        if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
            raise ErrorReply(
                415,
                "Send this endpoint's parameters and image files as multipart/form-data.",
                code="unsupported_content_type",
            )
        async with request.form(max_files=len(files) * 16 + 1, max_fields=len(params) + 4) as form:
            parts = await read_form(form, files, params)
        return await self._in_thread(parse, parts, choose)  # the choice may ask the backend's model list

    # -- the image endpoints ---------------------------------------------------------------------

    async def generations(self, request: Request) -> Response:
        token = await self._authenticate(request)
        await self._check_rate(token)
        body = await self._json_body(request)
        call = await self._in_thread(parse_generation, body, self.backend.choose_model)
        return await self._answer(request, token, call)

    async def edits(self, request: Request) -> Response:
        token = await self._authenticate(request)
        await self._check_rate(token)
        call = await self._form_call(request, EDIT_FILES, EDIT_PARAMS, parse_edit, self.backend.choose_model)
        return await self._answer(request, token, call)

    async def variations(self, request: Request) -> Response:
        token = await self._authenticate(request)
        await self._check_rate(token)
        call = await self._form_call(
            request, VARIATION_FILES, VARIATION_PARAMS, parse_variation, self.backend.choose_model
        )
        return await self._answer(request, token, call)

    async def _answer(self, request: Request, token: TokenInfo | None, call: ParsedCall) -> Response:
        """Check the call from its parameters and the uploads' headers, count it against the token's
        budget, and only then decode the uploads and run it (a spent token costs no decoding)."""
        image_request = call.request
        self._check_served(image_request.model)
        check_upload_sizes(image_request)
        await self._in_thread(self.backend.check_request, image_request)  # refused before any answer starts
        self._check_pixels(image_request)
        if call.stream and not (
            model_spec(image_request.model).is_gpt_image
            or self.backend.supports_streaming(image_request.model)
        ):
            raise bad_request(f"{image_request.model} does not stream: leave 'stream' unset.", "stream")
        await self._check_open(token)
        reserved = await self._reserve(token, image_request)
        request.state.ran = True  # from here on a failure is the engine's or upstream's, not a refusal
        forward = getattr(self.backend, "forward", None)
        answers_url = _answers_url(image_request)
        if (
            callable(forward) and not answers_url
        ):  # links are this server's own: made from the upstream's bytes
            return await self._forwarded(token, call, forward, reserved)
        if call.stream:
            return StreamingResponse(
                self._events(token, image_request, reserved),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )
        queue = self._queue_headers()
        try:
            response = await self._run(image_request, CallHooks(), token)
        except Exception:
            await self._refund(token, image_request.n, reserved)
            raise
        await self._settle(token, reserved, cost_of(image_request, response))
        url_for = self._url_maker(request) if answers_url else None
        self.metrics.sent(image_request.endpoint, len(response.data))
        return JSONResponse(images_payload(response, image_request, url_for), headers=queue)

    def _check_served(self, model: str) -> None:
        """404 ``model_not_found`` for a model this server does not serve (unless it takes any name)."""
        if self.any_model or not isinstance(model, str):
            return
        serves = getattr(self.backend, "serves_model", None)
        served = serves(model) if callable(serves) else model in self._model_names()
        if not served:
            offered = ", ".join(self._model_names()[:8])
            raise ErrorReply(
                404,
                f"The model '{model}' does not exist on this server. It serves: {offered}.",
                param="model",
                code="model_not_found",
            )

    def _check_pixels(self, image_request: ImageRequest) -> None:
        size = image_request.size
        if size in (None, "auto"):
            return
        width, height = parse_size(size)
        if width * height > self.max_pixels:
            raise bad_request(
                f"size {size} is {width * height:,} pixels; this server makes at most {self.max_pixels:,} "
                "pixels per image: ask for a smaller size.",
                "size",
                code="invalid_value",
            )

    @property
    def queue(self) -> FairQueue:
        """Calls the backend runs at once, by participant in turn (more wait); made in the event loop."""
        if self._queue is None:
            self._queue = FairQueue(self.max_concurrency, self.upstream_rate)
            self._threads = anyio.CapacityLimiter(self.max_concurrency)
        return self._queue

    async def _in_turn(self, token: TokenInfo | None, images: int, work: Callable[[], Any]) -> Any:
        """``work()`` in a worker thread, when the queue gives the caller its turn. The upstream refusing
        it for its rate (429) slows the queue down; while the call has time left for the wait the upstream
        asked, it gives back its slot and waits its turn again, first in the caller's line."""
        deadline = time.monotonic() + self.request_timeout
        again = False
        while True:
            async with self.queue.turn(self._queue_key(token), images, again=again) as ticket:
                # revoked or expired while it waited: not run (refunded)
                await self._check_still_active(token)
                try:
                    return await anyio.to_thread.run_sync(work, abandon_on_cancel=True, limiter=self._threads)
                except RateLimitError as exc:
                    if not _upstream_busy(exc):
                        raise
                    self.queue.slow_down(ticket, exc.retry_after)
                    log.info("the upstream refused a call for its rate (429): the queue slows down")
                    if (exc.retry_after or 0.0) >= deadline - time.monotonic():
                        raise  # no time left to wait for the upstream: the participant is told
            again = True

    @staticmethod
    def _queue_key(token: TokenInfo | None) -> str:
        return token.id if token is not None else "open"

    def _queue_now(self) -> tuple[int, int]:
        if self._queue is None:
            return 0, 0
        return self._queue.running, self._queue.waiting

    def _measured(self, endpoint: str, work: Callable[[], Any]) -> Any:
        """``work()`` in a worker thread, with how long it waited for its slot and how long it took."""
        queued = time.perf_counter()

        def run() -> Any:
            started = time.perf_counter()
            try:
                return work()
            except Exception as exc:
                reply = error_reply_for(exc, self._secrets)
                self.metrics.failed(reply.code or reply.type)
                raise
            finally:
                self.metrics.ran(endpoint, started - queued, time.perf_counter() - started)

        return run

    def _queue_headers(self) -> dict[str, str]:
        """Where a call stands as it arrives: how many calls run and how many wait before it."""
        running, waiting = self._queue_now()
        return {"x-queue-running": str(running), "x-queue-ahead": str(waiting)}

    async def _forwarded(
        self, token: TokenInfo | None, call: ParsedCall, forward: Callable[..., Any], reserved: float
    ) -> Response:
        """Proxy mode: the upstream's answer passed on as it came (its base64 never decoded), secrets taken out."""
        image_request = call.request
        queue = self._queue_headers()
        try:
            forwarded = await self._forward_in_turn(token, call, forward)
        except Exception:
            await self._refund(token, image_request.n, reserved)
            raise
        self.metrics.sent(image_request.endpoint, image_request.n)  # as asked: the body is passed on unread
        if forwarded.chunks is None:
            if token is not None:
                spent = await self._in_thread(forwarded_cost, image_request, forwarded.body)
                if spent is not None:
                    await self._settle(token, reserved, spent)
            body = redact_bytes(forwarded.body, self._secrets)
            return Response(body, media_type=forwarded.content_type, headers=queue)
        return StreamingResponse(
            self._relay(token, image_request.n, reserved, forwarded.chunks),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", **queue},
        )

    async def _forward_in_turn(
        self, token: TokenInfo | None, call: ParsedCall, forward: Callable[..., Any]
    ) -> Any:
        """``forward`` in the caller's turn (or turns: see :meth:`_in_turn`), each try given the time the
        call has left; a 504 past the time limit, waiting included."""
        image_request = call.request
        cancel = threading.Event()
        deadline = time.monotonic() + self.request_timeout

        def attempt() -> Any:
            hooks = CallHooks(cancel=cancel, timeout=max(0.001, deadline - time.monotonic()))
            return forward(image_request, stream=call.stream, hooks=hooks)

        work = self._measured(image_request.endpoint, attempt)
        with anyio.move_on_after(self.request_timeout):
            return await self._in_turn(token, image_request.n, work)
        cancel.set()
        raise ErrorReply(
            504,
            f"The images were not ready within {self.request_timeout:g} s: try again later.",
            type=SERVER_ERROR,
            code="timeout",
        )

    def _relay(
        self, token: TokenInfo | None, images: int, reserved: float, chunks: Iterator[bytes]
    ) -> Iterator[bytes]:
        """A stream passed on as it arrives (Starlette iterates it in a worker thread), secrets taken out
        even where one falls across two chunks; a broken upstream ends it with an error event."""
        keep = max((len(secret) for secret in self._secrets), default=1) - 1
        held = b""
        try:
            for chunk in chunks:
                held = redact_bytes(held + chunk, self._secrets)
                if len(held) > keep:
                    cut = len(held) - keep
                    yield held[:cut]
                    held = held[cut:]
            yield held
        except Exception as exc:  # the status is sent already: the error goes in the stream
            if token is not None and self.tokens is not None:
                self.tokens.record_failure(token.id, images, reserved)
            yield sse("error", error_reply_for(exc, self._secrets).body())

    def _decode_and_run(self, image_request: ImageRequest, hooks: CallHooks) -> ImagesResponse:
        check_uploads_decode(image_request)
        return self.backend.run(image_request, hooks)

    async def _run(
        self, image_request: ImageRequest, hooks: CallHooks, token: TokenInfo | None = None
    ) -> ImagesResponse:
        """The call in a worker thread, in the caller's turn and once its pixels fit in the engine's
        budget; a 504 (and the call cancelled) past the time limit, waiting included."""
        hooks.cancel = hooks.cancel or threading.Event()
        hooks.timeout = self.request_timeout
        cost = pixel_cost(image_request, self.max_pixels)
        work = self._measured(
            image_request.endpoint, functools.partial(self._decode_and_run, image_request, hooks)
        )
        with anyio.move_on_after(self.request_timeout):
            async with self.pixels.hold(cost):
                result: ImagesResponse = await self._in_turn(token, image_request.n, work)
                return result
        hooks.cancel.set()
        raise ErrorReply(
            504,
            f"The images were not ready within {self.request_timeout:g} s: ask for fewer or smaller images, "
            "or try again later.",
            type=SERVER_ERROR,
            code="timeout",
        )

    async def _events(
        self, token: TokenInfo | None, image_request: ImageRequest, reserved: float
    ) -> AsyncIterator[bytes]:
        """The server-sent events of a streamed call: partial images as they come, then each image."""
        loop = asyncio.get_running_loop()
        partials: asyncio.Queue[PartialImage] = asyncio.Queue()

        def on_partial(partial: PartialImage) -> None:  # called in the worker thread
            loop.call_soon_threadsafe(partials.put_nowait, partial)

        hooks = CallHooks(on_partial=on_partial, cancel=threading.Event())
        task = asyncio.ensure_future(self._run(image_request, hooks, token))
        try:
            while True:
                next_partial = asyncio.ensure_future(partials.get())
                await asyncio.wait({task, next_partial}, return_when=asyncio.FIRST_COMPLETED)
                if not next_partial.done():
                    next_partial.cancel()
                    break
                event = partial_event(image_request, next_partial.result())
                yield sse(event["type"], event)
            while not partials.empty():
                event = partial_event(image_request, partials.get_nowait())
                yield sse(event["type"], event)
            try:
                response = task.result()
            except Exception as exc:  # reported in the stream: its status is already sent
                await self._refund(token, image_request.n, reserved)
                yield sse("error", error_reply_for(exc, self._secrets).body())
                return
            await self._settle(token, reserved, cost_of(image_request, response))
            for image in response.data:
                event = completed_event(image_request, image, response.usage)
                yield sse(event["type"], event)
            self.metrics.sent(image_request.endpoint, len(response.data))
        finally:
            if not task.done():
                assert hooks.cancel is not None
                hooks.cancel.set()
                task.cancel()

    def _url_maker(self, request: Request) -> Callable[[GeneratedImage], str]:
        def url_for(image: GeneratedImage) -> str:
            name = self.results.put(image.data, image.mime_type)
            return str(request.url_for("result_file", name=name))

        return url_for

    # -- the other endpoints ---------------------------------------------------------------------

    async def result_file(self, request: Request) -> Response:
        stored = self.results.get(request.path_params["name"])
        if stored is None:
            raise ErrorReply(
                404,
                f"This image URL has expired (they last {self.results.ttl_s / 60:g} min) or never existed.",
                code="not_found",
            )
        max_age = max(0, int(stored.expires - time.monotonic()))
        headers = {
            "Cache-Control": f"private, max-age={max_age}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox; default-src 'none'; style-src 'unsafe-inline'",  # an SVG runs nothing
        }
        return Response(stored.data, media_type=stored.mime_type, headers=headers)

    def _model_names(self) -> list[str]:
        names: list[str] = []
        for endpoint in ENDPOINTS:
            names += [name for name in self.backend.models(endpoint) if name not in names]
        return names

    def _model_object(self, name: str) -> dict[str, Any]:
        when = getattr(self.backend, "shutdown_date", None)
        end = when(name) if callable(when) else None
        return {
            "id": name,
            "object": "model",
            "created": 0,
            "owned_by": "ipyimagegen",
            "shutdown_date": end.isoformat() if end is not None else None,
        }

    async def list_models(self, request: Request) -> Response:
        await self._authenticate(request)
        return JSONResponse(
            {"object": "list", "data": [self._model_object(name) for name in self._model_names()]},
            headers=self._named_pages(),
        )

    def _named_pages(self) -> dict[str, str]:
        """The headers of ``GET /models`` that name this server's own pages, under the API's address."""
        pages = {QUEUE_HEADER: "queue"}  # where a client can see its calls wait (/v1/queue)
        if self.wall is not None:
            pages[WALL_HEADER] = "wall"  # where a participant shares a picture (/v1/wall)
        return pages

    async def get_model(self, request: Request) -> Response:
        await self._authenticate(request)
        name = request.path_params["model"]
        if name not in self._model_names():
            raise ErrorReply(
                404,
                f"The model '{name}' does not exist on this server.",
                param="model",
                code="model_not_found",
            )
        return JSONResponse(self._model_object(name))

    async def usage(self, request: Request) -> Response:
        """Usage per token: every token's for an admin token, the caller's own for a participant."""
        token = await self._authenticate(request)
        if token is None or self.tokens is None:
            raise ErrorReply(
                404, "This server has no participant tokens, so it keeps no usage record.", code="not_found"
            )
        records = (
            await self._in_thread(self.tokens.tokens)
            if token.admin
            else [await self._in_thread(self.tokens.get, token.id)]
        )
        return JSONResponse({"object": "list", "data": [info.to_dict() for info in records]})

    async def metrics_page(self, request: Request) -> Response:
        """The counters in Prometheus' text format; with tokens, for an admin token only."""
        if self.tokens is not None:
            token = await self._authenticate(request)
            if token is None or not token.admin:
                raise ErrorReply(
                    403,
                    "The metrics are for the workshop host: scrape them with an admin token "
                    "(Prometheus: authorization credentials).",
                    code="admin_only",
                )
        body, content_type = self.metrics.render()
        return Response(body, media_type=content_type)

    async def queue_page(self, request: Request) -> Response:
        """Where the caller's waiting calls stand (1: the next to run), and the queue as a whole."""
        token = await self._authenticate(request)
        running, waiting = self._queue_now()
        positions = self._queue.positions(self._queue_key(token)) if self._queue is not None else []
        return JSONResponse(
            {"object": "queue", "running": running, "waiting": waiting, "positions": positions},
            headers={"Cache-Control": "no-store"},
        )

    async def health(self, request: Request) -> Response:
        running, waiting = self._queue_now()
        return JSONResponse(
            {
                "status": "ok",
                "backend": self.backend.name,
                "offline": bool(self.backend.offline),
                "auth": "tokens" if self.tokens is not None else "open",
                "queue": {
                    "running": running,
                    "waiting": waiting,
                    "at_once": self.max_concurrency,
                    "rate": str(self.upstream_rate) if self.upstream_rate else None,
                },
            }
        )


def _refuse_inactive(info: TokenInfo) -> None:
    """401 ``invalid_api_key`` saying why, for a token revoked or past its expiry."""
    if info.revoked is not None:
        raise ErrorReply(
            401,
            "This participant token was revoked: ask the workshop host for a new one.",
            code="invalid_api_key",
        )
    if info.expired:
        assert info.expires is not None
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.expires))
        raise ErrorReply(
            401,
            f"This participant token expired at {when}: ask the workshop host for a new one.",
            code="invalid_api_key",
        )


def _answers_url(image_request: ImageRequest) -> bool:
    """Whether the answer gives links: asked for, or by default as the original API answered (the DALL-E
    models, and a call that named no model on a server whose default is not a GPT image model)."""
    if image_request.response_format is not None:
        return image_request.response_format == "url"
    spec = model_spec(image_request.model)
    return spec.family == DALL_E or (image_request.model_reason is not None and not spec.is_gpt_image)


def _upstream_busy(exc: RateLimitError) -> bool:
    """Whether an upstream's 429 is about its rate (worth a wait), not a spent quota."""
    return exc.code != "insufficient_quota"


async def _error_handler(request: Request, exc: Exception) -> Response:
    """Errors raised outside the image handlers: unknown routes, wrong methods, a too-large body."""
    return error_reply_for(exc).response()


def make_app(
    backend: Backend,
    *,
    tokens: TokenStore | None = None,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT_S,
    url_ttl: float = DEFAULT_URL_TTL_S,
    max_concurrency: int = 4,
    cors_origins: Sequence[str] = (),
    allowed_hosts: Sequence[str] = LOOPBACK_NAMES,
    secrets: Sequence[str] = (),
    max_pixels: int = DEFAULT_MAX_PIXELS,
    pixels_at_once: int = DEFAULT_PIXELS_AT_ONCE,
    any_model: bool = False,
    upstream_rate: Rate | str | None = None,
    class_wall: bool = False,
    wall_rate: Rate | str | None = None,
) -> Starlette:
    """An ASGI app that serves ``backend`` with the OpenAI Images API.

    ``tokens``: require participant tokens from this store (None: an open server, for
    loopback use). ``max_upload_bytes``: the largest request body. ``request_timeout``:
    seconds one call may take (then 504). ``url_ttl``: seconds a ``response_format=url``
    image stays available. ``max_concurrency``: calls the backend runs at once (others
    wait their turn). ``cors_origins``: browser origins allowed to call (none by default; a page
    on any other origin is refused). ``allowed_hosts``: the names the ``Host`` header may carry
    (loopback by default; ``"*"`` for any, when the server listens on every address).
    ``secrets``: strings (an upstream key) that must never appear in an answer. ``max_pixels``:
    the most pixels of one requested image. ``pixels_at_once``: what the engine may work on at
    once, inputs and outputs of all calls together (more waits its turn; one larger call runs
    alone). ``any_model``: take any model name (else a model the backend does not serve is a 404).
    ``upstream_rate``: images started per period (``"300/min"``), shared out by participant in turn
    with the ``max_concurrency`` slots (:mod:`~ipyimagegen.server.fair_queue`). ``class_wall``: let
    participants share pictures that the host's page shows (:mod:`~ipyimagegen.server.wall`; needs ``tokens``).
    ``wall_rate``: pictures one participant may share per period (None: the wall's ``DEFAULT_RATE``, 6/min;
    admin tokens: no limit).
    """
    if class_wall and tokens is None:
        raise ValueError(
            "The class wall shows who shared each picture, so it needs participant tokens "
            "(ipyimagegen tokens create)."
        )
    server = ImagesServer(
        backend,
        tokens=tokens,
        request_timeout=request_timeout,
        url_ttl=url_ttl,
        max_concurrency=max_concurrency,
        secrets=secrets,
        max_pixels=max_pixels,
        pixels_at_once=pixels_at_once,
        any_model=any_model,
        upstream_rate=Rate.parse(upstream_rate) if isinstance(upstream_rate, str) else upstream_rate,
        wall=WallStore(tokens) if class_wall and tokens is not None else None,
    )
    wrap = server.endpoint
    admin = AdminPage(server)
    wall = ClassWall(
        server,
        server.wall,
        admin.require_admin,
        rate=(Rate.parse(wall_rate) if isinstance(wall_rate, str) else wall_rate) or DEFAULT_WALL_RATE,
    )
    routes = [
        Route("/v1/images/generations", wrap(server.generations, "generations"), methods=["POST"]),
        Route("/v1/images/edits", wrap(server.edits, "edits"), methods=["POST"]),
        Route("/v1/images/variations", wrap(server.variations, "variations"), methods=["POST"]),
        Route("/v1/files/{name}", wrap(server.result_file, "files"), methods=["GET"], name="result_file"),
        Route("/v1/models", wrap(server.list_models, "models"), methods=["GET"]),
        Route("/v1/models/{model:path}", wrap(server.get_model, "models"), methods=["GET"]),
        Route("/v1/usage", wrap(server.usage, "usage"), methods=["GET"]),
        Route("/v1/queue", wrap(server.queue_page, "queue"), methods=["GET"]),
        Route("/health", wrap(server.health, "health"), methods=["GET"]),
        Route("/metrics", wrap(server.metrics_page, "metrics"), methods=["GET"]),
        Route("/admin", wrap(admin.page, "admin"), methods=["GET"]),
        Route("/admin/{file:str}", wrap(admin.page, "admin"), methods=["GET"]),
        Route("/admin/api/room", wrap(admin.room, "admin"), methods=["GET"]),
        Route("/admin/api/tokens/{token_id}/revoke", wrap(admin.revoke, "admin"), methods=["POST"]),
        Route("/admin/api/tokens/{token_id}/topup", wrap(admin.top_up, "admin"), methods=["POST"]),
        Route("/admin/api/pause", wrap(admin.pause, "admin"), methods=["POST"]),
        Route("/admin/api/resume", wrap(admin.pause, "admin"), methods=["POST"]),
        Route("/v1/wall", wrap(wall.share, "wall"), methods=["POST"]),
        Route("/admin/api/wall", wrap(wall.posts, "admin"), methods=["GET"]),
        Route("/admin/api/wall/{post_id}", wrap(wall.picture, "admin"), methods=["GET"]),
        Route("/admin/api/wall/{post_id}/remove", wrap(wall.remove, "admin"), methods=["POST"]),
    ]
    middleware = [
        Middleware(RequestIds),
        Middleware(CrossSiteGuard, allowed_hosts=allowed_hosts, allowed_origins=cors_origins),
    ]
    if cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type"],
            )
        )
    middleware.append(Middleware(BodySizeLimit, max_bytes=max_upload_bytes))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: _error_handler, ErrorReply: _error_handler},
    )
    app.state.images_server = server
    return app
