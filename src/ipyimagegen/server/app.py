"""The Starlette app: any Backend behind the routes and answers of the OpenAI Images API.

Routes (under ``/v1``): ``POST images/generations`` (JSON), ``POST images/edits`` and
``POST images/variations`` (multipart), ``GET models``, ``GET files/<name>`` (results asked
for with ``response_format=url``), ``GET usage``; and ``GET /health`` and ``GET /metrics``
(Prometheus). Each image call runs in a worker thread under a time limit. With a
:class:`TokenStore` every call needs a participant token (``Authorization: Bearer ...``) and
counts against its budget and rate.

The settings are one :class:`~ipyimagegen.server.config.ServerConfig`. A route resolves its
caller with :class:`~ipyimagegen.server.caller.Gate`; errors are answered by the app's exception
handlers (:class:`~ipyimagegen.server.replies.ErrorAnswers`), and every route's answers are
counted and logged by :class:`~ipyimagegen.server.metrics.CallRecord`.

A call is worth its place in the queue only while somebody waits for it: one that would wait longer
than ``max_queue_wait`` (or than its client says it waits) is answered at once, 429 ``workshop_busy``;
one whose client leaves, or whose client's own timeout passes, leaves the queue unsent
(:mod:`~ipyimagegen.server.client_wait`). What a call reserved is a lease
(:mod:`~ipyimagegen.server.leases`): settled when its answer is delivered, else refunded. Servers
sharing a database share the upstream's pace (:mod:`~ipyimagegen.server.shared_pace`) and give back
what a dead one reserved (:mod:`~ipyimagegen.server.replicas`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..api.backend import Backend, Proxying
from ..api.budget import USAGE_HEADER
from ..api.class_wall import WALL_HEADER
from ..api.queue_watch import QUEUE_HEADER
from ..api.types import CallHooks, GeneratedImage, ImageRequest, ImagesResponse, PartialImage
from ..errors import RateLimitError
from ..models import DALL_E, ENDPOINTS, model_spec, parse_size
from .admin import AdminPage
from .caller import Caller, Gate, Reservation
from .client_wait import client_timeout, unless_client_leaves
from .config import ServerConfig
from .costs import cost_of, forwarded_cost
from .crosssite import CrossSiteGuard
from .fair_queue import FairQueue, TurnTooLate
from .files import ResultStore
from .leases import Holder
from .limits import BodySizeLimit, PixelBudget, pixel_cost, read_json
from .metrics import CallRecord, ServerMetrics
from .pacer import LocalPacer, Pacer
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
from .replicas import BEAT_EVERY_S, RECONCILE_EVERY_S, Replicas
from .replies import (
    MIN_BUSY_RETRY_S,
    SERVER_ERROR,
    ErrorAnswers,
    ErrorReply,
    LastResort,
    bad_request,
    busy_reply,
    error_reply_for,
    redact_bytes,
)
from .request_ids import RequestIds
from .serialize import completed_event, images_payload, partial_event, sse
from .shared_pace import SharedPacer
from .tokens import Rate, TokenStore, own_usage
from .wall import ClassWall, WallStore

log = logging.getLogger("ipyimagegen.server")

MIN_RUN_S = 1.0
"""A call's turn must come this long (or half its time, if shorter) before its time is up: it is sent only
when it can be answered in time."""
PLACE_HELD_S = 60.0
"""A participant told to come back keeps a place at the front of the round this long past that time."""
COME_BACK_KEPT = 1000
"""Past this many participants told when to come back, those whose time has come are forgotten."""

Handler = Callable[[Request], Awaitable[Response]]


class ImagesServer:
    """The request handlers, and what they share: the backend, the tokens, the limits, the stored results.

    Size: one handler per route (the three image endpoints, models, result files, usage, metrics,
    queue, health) and the steps the image endpoints share (reading a JSON or form body, the
    served-model and pixel checks, the fair queue's turn, forwarding upstream, streaming events);
    callers, errors, metrics and the admin and wall pages are already classes of their own.
    """

    def __init__(
        self, backend: Backend, config: ServerConfig, *, tokens: TokenStore | None, secrets: Sequence[str]
    ) -> None:
        self.backend = backend
        self.config = config
        self.tokens = tokens
        self.holder = Holder.new(config.replica_name)
        self.replicas = Replicas(tokens.database, self.holder) if tokens is not None else None
        if self.replicas is not None:
            self.replicas.join()  # what an earlier run under this name reserved is given back
        self.gate = Gate(tokens, self.holder if tokens is not None else None)
        self.pacer: Pacer = (
            SharedPacer(tokens.database, self.holder, config.upstream_rate)
            if tokens is not None and tokens.shared and isinstance(backend, Proxying)
            else LocalPacer(config.upstream_rate)
        )
        self.pixels = PixelBudget(config.pixels_at_once)
        self.results = ResultStore(ttl_s=config.url_ttl)
        self._queue: FairQueue | None = None
        self._come_back: dict[str, float] = {}  # participant -> when their calls may queue again (monotonic)
        self._threads: anyio.CapacityLimiter | None = None
        self._secrets = tuple(s for s in secrets if s)
        self.metrics = ServerMetrics(self.queue_now)
        # the class wall, when there is one (GET /models names it)
        self.wall = WallStore(tokens) if config.class_wall and tokens is not None else None

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
        return await anyio.to_thread.run_sync(
            parse, parts, choose
        )  # the choice may ask the backend's model list

    # -- the image endpoints ---------------------------------------------------------------------

    async def _rate_checked(self, request: Request) -> Caller:
        """The caller of an image call, one request taken from its rate."""
        caller = await self.gate.caller(request)
        await caller.check_rate()
        return caller

    async def generations(self, request: Request) -> Response:
        caller = await self._rate_checked(request)
        body = await self._json_body(request)
        call = await anyio.to_thread.run_sync(parse_generation, body, self.backend.choose_model)
        return await self._answer(request, caller, call)

    async def edits(self, request: Request) -> Response:
        caller = await self._rate_checked(request)
        call = await self._form_call(request, EDIT_FILES, EDIT_PARAMS, parse_edit, self.backend.choose_model)
        return await self._answer(request, caller, call)

    async def variations(self, request: Request) -> Response:
        caller = await self._rate_checked(request)
        call = await self._form_call(
            request, VARIATION_FILES, VARIATION_PARAMS, parse_variation, self.backend.choose_model
        )
        return await self._answer(request, caller, call)

    async def _answer(self, request: Request, caller: Caller, call: ParsedCall) -> Response:
        """Check the call from its parameters and the uploads' headers, count it against the token's
        budget, and only then decode the uploads and run it (a spent token costs no decoding)."""
        image_request = call.request
        self._check_served(image_request.model)
        check_upload_sizes(image_request)
        await anyio.to_thread.run_sync(self.backend.check_request, image_request)  # refused before any answer
        self._check_pixels(image_request)
        if call.stream and not (
            model_spec(image_request.model).is_gpt_image
            or self.backend.supports_streaming(image_request.model)
        ):
            raise bad_request(f"{image_request.model} does not stream: leave 'stream' unset.", "stream")
        await caller.check_open()
        wait_s = self._wait_allowed(request)
        self._check_room(caller, image_request.n, wait_s)
        reservation = await caller.reserve(image_request)
        request.state.ran = True  # from here on a failure is the engine's or upstream's, not a refusal
        answers_url = _answers_url(image_request)
        if call.stream and not (isinstance(self.backend, Proxying) and not answers_url):
            return StreamingResponse(
                self._events(request, caller, image_request, reservation, wait_s),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )
        try:
            if isinstance(self.backend, Proxying) and not answers_url:  # else links are this server's own
                return await self._forwarded(request, caller, call, self.backend.forward, reservation, wait_s)
            queue = self._queue_headers()
            response = await unless_client_leaves(
                request, self._run(image_request, CallHooks(), caller, wait_s)
            )
            await reservation.settle(cost_of(image_request, response))
            url_for = self._url_maker(request) if answers_url else None
            self.metrics.sent(image_request.endpoint, len(response.data))
            return JSONResponse(images_payload(response, image_request, url_for), headers=queue)
        except Exception:
            await reservation.refund()
            raise
        finally:
            reservation.refund_soon()  # not delivered (failed, cancelled, or the client left): given back

    def _wait_allowed(self, request: Request) -> float:
        """The seconds a call may take, its wait in the queue included: the server's limit, or less when
        the client says it waits less."""
        told = client_timeout(request)
        return self.config.request_timeout if told is None else min(self.config.request_timeout, told)

    def _check_room(self, caller: Caller, images: int, wait_s: float) -> None:
        """429 ``workshop_busy`` (with the call's place, the wait and when to come back) for a call that
        would wait in the queue longer than it may: ``--max-queue-wait``, and what the client waits.

        A participant told to come back at a time is refused, every call of theirs, until then: one who
        keeps three calls in flight has no more chances of a place than one who keeps one."""
        key = caller.queue_key
        allowed = max(0.0, min(self.config.max_queue_wait, wait_s - self.queue.call_s))
        if caller.token is not None and self._come_back.get(key, 0.0) > time.monotonic():
            raise self._busy(key, images, allowed)
        if self.queue.estimate(key, images).wait_s > allowed:
            raise self._busy(key, images, allowed, remember=caller.token is not None)

    def _busy(self, key: str, images: int, allowed: float, *, remember: bool = True) -> ErrorReply:
        """The 429 ``workshop_busy`` of a call of ``key`` that could wait ``allowed`` seconds; with
        ``remember``, ``key``'s calls are refused until it may come back."""
        now = time.monotonic()
        estimate = self.queue.estimate(key, images)
        told = self._come_back.get(key, 0.0)
        if told > now:  # told already: the same time again
            return busy_reply(estimate, allowed, told - now, told_before=True)
        retry_after = max(MIN_BUSY_RETRY_S, estimate.wait_s - allowed)
        if remember:
            if len(self._come_back) > COME_BACK_KEPT:  # those whose time has come are forgotten
                self._come_back = {k: at for k, at in self._come_back.items() if at > now}
            self._come_back[key] = now + retry_after
            # waiting outside counts: back in time, its call goes first in the round
            self.queue.hold_place(key, now + retry_after + PLACE_HELD_S)
        return busy_reply(estimate, allowed, retry_after)

    def _check_served(self, model: str) -> None:
        """404 ``model_not_found`` for a model this server does not serve (unless it takes any name)."""
        if self.config.any_model or not isinstance(model, str):
            return
        if not self.backend.serves_model(model):
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
        if width * height > self.config.max_pixels:
            raise bad_request(
                f"size {size} is {width * height:,} pixels; this server makes at most {self.config.max_pixels:,} "
                "pixels per image: ask for a smaller size.",
                "size",
                code="invalid_value",
            )

    def _too_late(self, advice: str) -> ErrorReply:
        """The 504 of a call not answered within the time limit, its wait in the queue included."""
        return ErrorReply(
            504,
            f"The images were not ready within {self.config.request_timeout:g} s: {advice}.",
            type=SERVER_ERROR,
            code="timeout",
        )

    @property
    def queue(self) -> FairQueue:
        """Calls the backend runs at once, by participant in turn (more wait); made in the event loop."""
        if self._queue is None:
            self._queue = FairQueue(self.config.max_concurrency, pacer=self.pacer)
            self._threads = anyio.CapacityLimiter(self.config.max_concurrency)
        return self._queue

    async def _in_turn(self, caller: Caller, images: int, work: Callable[[], Any], wait_s: float) -> Any:
        """``work()`` in a worker thread, when the queue gives the caller its turn. The upstream refusing
        it for its rate (429) slows the queue down; while the call has time left (of ``wait_s``) for the
        wait the upstream asked, it gives back its slot and waits its turn again, first in its line."""
        deadline = time.monotonic() + wait_s
        again = False
        while True:
            left = deadline - time.monotonic()
            can_wait: float | None = None  # a call the upstream refused waits its turn again, as it asked
            if not again:  # a call let in on an estimate waits no longer than any call may, nor past its time
                can_wait = min(
                    self.config.max_queue_wait,
                    max(0.0, left - max(self.queue.call_s, min(MIN_RUN_S, left / 2))),
                )
            try:
                async with self.queue.turn(
                    caller.queue_key, images, again=again, wait_at_most=can_wait
                ) as ticket:
                    # revoked or expired while it waited: not run (refunded)
                    await caller.check_still_active()
                    try:
                        return await anyio.to_thread.run_sync(
                            work, abandon_on_cancel=True, limiter=self._threads
                        )
                    except RateLimitError as exc:
                        if not _upstream_busy(exc):
                            raise
                        self.queue.slow_down(ticket, exc.retry_after)
                        log.info("the upstream refused a call for its rate (429): the queue slows down")
                        if (exc.retry_after or 0.0) >= deadline - time.monotonic():
                            raise  # no time left to wait for the upstream: the participant is told
            except TurnTooLate:  # its turn came too late for it to be over in time: told now, never sent
                assert can_wait is not None
                raise self._busy(
                    caller.queue_key, images, can_wait, remember=caller.token is not None
                ) from None
            again = True

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """While the server runs: say it is alive to the room, and give back what dead servers reserved."""
        keeping = asyncio.ensure_future(self._keep_in_room()) if self.replicas is not None else None
        try:
            yield
        finally:
            if keeping is not None:
                keeping.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeping  # no beat after the server left the room
            if self.replicas is not None:
                try:
                    await anyio.to_thread.run_sync(self.replicas.leave)
                except Exception as exc:
                    log.warning("could not leave the room's record: %s", type(exc).__name__)
            if isinstance(self.pacer, SharedPacer):
                self.pacer.close()

    async def _keep_in_room(self) -> None:
        assert self.replicas is not None
        replicas = self.replicas
        last_reconcile = time.monotonic()
        while True:
            await asyncio.sleep(BEAT_EVERY_S)
            try:
                running, waiting = self.queue_now()
                await anyio.to_thread.run_sync(replicas.beat, running, waiting)
                if time.monotonic() - last_reconcile >= RECONCILE_EVERY_S:
                    last_reconcile = time.monotonic()
                    await anyio.to_thread.run_sync(replicas.reconcile)
            except Exception as exc:  # the database is away for a moment: the next beat tries again
                log.warning("could not tell the room this server is alive: %s", type(exc).__name__)

    def queue_now(self) -> tuple[int, int]:
        """The calls running and waiting now."""
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
        running, waiting = self.queue_now()
        return {"x-queue-running": str(running), "x-queue-ahead": str(waiting)}

    async def _forwarded(
        self,
        request: Request,
        caller: Caller,
        call: ParsedCall,
        forward: Callable[..., Any],
        reservation: Reservation,
        wait_s: float,
    ) -> Response:
        """Proxy mode: the upstream's answer passed on as it came (its base64 never decoded), secrets taken
        out; the call leaves the queue unsent (or is cancelled) when its client goes."""
        image_request = call.request
        queue = self._queue_headers()
        forwarded = await unless_client_leaves(request, self._forward_in_turn(caller, call, forward, wait_s))
        self.metrics.sent(image_request.endpoint, image_request.n)  # as asked: the body is passed on unread
        if forwarded.chunks is None:
            spent = None
            if caller.token is not None:
                spent = await anyio.to_thread.run_sync(forwarded_cost, image_request, forwarded.body)
            await reservation.settle(spent)
            body = redact_bytes(forwarded.body, self._secrets)
            return Response(body, media_type=forwarded.content_type, headers=queue)
        return StreamingResponse(
            self._relay(reservation.hand_over(), forwarded.chunks),  # the stream settles it, or refunds it
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", **queue},
        )

    async def _forward_in_turn(
        self, caller: Caller, call: ParsedCall, forward: Callable[..., Any], wait_s: float
    ) -> Any:
        """``forward`` in the caller's turn (or turns: see :meth:`_in_turn`), each try given the time the
        call has left; a 504 past ``wait_s``, waiting included; the upstream call cancelled if the
        caller goes away."""
        image_request = call.request
        cancel = threading.Event()
        deadline = time.monotonic() + wait_s

        def attempt() -> Any:
            hooks = CallHooks(cancel=cancel, timeout=max(0.001, deadline - time.monotonic()))
            return forward(image_request, stream=call.stream, hooks=hooks)

        work = self._measured(image_request.endpoint, attempt)
        try:
            with anyio.move_on_after(wait_s):
                return await self._in_turn(caller, image_request.n, work, wait_s)
        finally:
            cancel.set()  # a no-op once the call is over; else it ends now (time is up, or nobody waits)
        raise self._too_late("try again later")

    def _relay(self, reservation: Reservation, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """A stream passed on as it arrives (Starlette iterates it in a worker thread), secrets taken out
        even where one falls across two chunks; a broken upstream ends it with an error event. The call is
        settled when the stream has gone out whole, else refunded."""
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
            reservation.settle_now()
        except Exception as exc:  # the status is sent already: the error goes in the stream
            reservation.refund_now()
            yield sse("error", error_reply_for(exc, self._secrets).body())
        finally:
            reservation.refund_soon()  # the client left mid-stream

    def _decode_and_run(self, image_request: ImageRequest, hooks: CallHooks) -> ImagesResponse:
        check_uploads_decode(image_request)
        return self.backend.run(image_request, hooks)

    async def _run(
        self, image_request: ImageRequest, hooks: CallHooks, caller: Caller, wait_s: float
    ) -> ImagesResponse:
        """The call in a worker thread, in the caller's turn and once its pixels fit in the engine's
        budget; a 504 (and the call cancelled) past ``wait_s``, waiting included; cancelled too when the
        caller goes away."""
        cancel = hooks.cancel = hooks.cancel or threading.Event()
        hooks.timeout = wait_s
        cost = pixel_cost(image_request, self.config.max_pixels)
        work = self._measured(
            image_request.endpoint, functools.partial(self._decode_and_run, image_request, hooks)
        )
        try:
            with anyio.move_on_after(wait_s):
                async with self.pixels.hold(cost):
                    result: ImagesResponse = await self._in_turn(caller, image_request.n, work, wait_s)
                    return result
        finally:
            cancel.set()  # a no-op once the call is over
        raise self._too_late("ask for fewer or smaller images, or try again later")

    async def _events(
        self,
        request: Request,
        caller: Caller,
        image_request: ImageRequest,
        reservation: Reservation,
        wait_s: float,
    ) -> AsyncIterator[bytes]:
        """The server-sent events of a streamed call: partial images as they come, then each image. The
        call is settled once its images are sent, else refunded (it failed, or the client left)."""
        loop = asyncio.get_running_loop()
        partials: asyncio.Queue[PartialImage] = asyncio.Queue()

        def on_partial(partial: PartialImage) -> None:  # called in the worker thread
            loop.call_soon_threadsafe(partials.put_nowait, partial)

        hooks = CallHooks(on_partial=on_partial, cancel=threading.Event())
        task = asyncio.ensure_future(
            unless_client_leaves(request, self._run(image_request, hooks, caller, wait_s))
        )
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
                await reservation.refund()
                yield sse("error", error_reply_for(exc, self._secrets).body())
                return
            await reservation.settle(cost_of(image_request, response))  # made: what it cost counts
            for image in response.data:
                event = completed_event(image_request, image, response.usage)
                yield sse(event["type"], event)
            self.metrics.sent(image_request.endpoint, len(response.data))
        finally:
            if not task.done():
                assert hooks.cancel is not None
                hooks.cancel.set()
                task.cancel()
            reservation.refund_soon()

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
        end = self.backend.shutdown_date(name)
        return {
            "id": name,
            "object": "model",
            "created": 0,
            "owned_by": "ipyimagegen",
            "shutdown_date": end.isoformat() if end is not None else None,
        }

    async def list_models(self, request: Request) -> Response:
        await self.gate.caller(request)
        return JSONResponse(
            {"object": "list", "data": [self._model_object(name) for name in self._model_names()]},
            headers=self._named_pages(),
        )

    @property
    def pacer_rate(self) -> Rate | None:
        """The rate calls start at: the room's where servers share one, else this server's."""
        return (
            self.pacer.rate if isinstance(self.pacer, SharedPacer | LocalPacer) else self.config.upstream_rate
        )

    def _named_pages(self) -> dict[str, str]:
        """The headers of ``GET /models`` that name this server's own pages, under the API's address."""
        pages = {QUEUE_HEADER: "queue"}  # where a client can see its calls wait (/v1/queue)
        if self.tokens is not None:
            pages[USAGE_HEADER] = "usage"  # what the caller's token has left (/v1/usage)
        if self.wall is not None:
            pages[WALL_HEADER] = "wall"  # where a participant shares a picture (/v1/wall)
        return pages

    async def get_model(self, request: Request) -> Response:
        await self.gate.caller(request)
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
        """What the caller's own token has used and has left (:func:`own_usage`), admin tokens alike:
        never another token's record (the host sees the room at ``/admin``)."""
        token = (await self.gate.caller(request)).token
        if token is None or self.tokens is None:
            raise ErrorReply(
                404, "This server has no participant tokens, so it keeps no usage record.", code="not_found"
            )
        info, room = await anyio.to_thread.run_sync(self.tokens.standing, token.id)
        return JSONResponse(own_usage(info, room), headers={"Cache-Control": "no-store"})

    async def metrics_page(self, request: Request) -> Response:
        """The counters in Prometheus' text format; with tokens, for an admin token only."""
        if self.tokens is not None:
            caller = await self.gate.caller(request)
            if not caller.admin:
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
        caller = await self.gate.caller(request)
        running, waiting = self.queue_now()
        positions = self._queue.positions(caller.queue_key) if self._queue is not None else []
        return JSONResponse(
            {"object": "queue", "running": running, "waiting": waiting, "positions": positions},
            headers={"Cache-Control": "no-store"},
        )

    async def health(self, request: Request) -> Response:
        running, waiting = self.queue_now()
        return JSONResponse(
            {
                "status": "ok",
                "backend": self.backend.name,
                "offline": bool(self.backend.offline),
                "auth": "tokens" if self.tokens is not None else "open",
                "queue": {
                    "running": running,
                    "waiting": waiting,
                    "at_once": self.config.max_concurrency,
                    "rate": str(self.pacer_rate) if self.pacer_rate else None,
                    "shared": isinstance(self.pacer, SharedPacer),
                },
            }
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


def make_app(
    backend: Backend,
    config: ServerConfig | None = None,
    *,
    tokens: TokenStore | None = None,
    secrets: Sequence[str] = (),
) -> Starlette:
    """An ASGI app that serves ``backend`` with the OpenAI Images API, as ``config`` says
    (:class:`~ipyimagegen.server.config.ServerConfig`; its defaults when None).

    ``tokens``: require participant tokens from this store (None: an open server, for loopback use).
    ``secrets``: strings (an upstream key) that must never appear in an answer or a log line.

    Every route answers errors as the API's JSON (:class:`~ipyimagegen.server.replies.ErrorAnswers`),
    and counts and logs each call (:class:`~ipyimagegen.server.metrics.CallRecord`).
    """
    config = config or ServerConfig()
    if config.class_wall and tokens is None:
        raise ValueError(
            "The class wall shows who shared each picture, so it needs participant tokens "
            "(ipyimagegen tokens create)."
        )
    server = ImagesServer(backend, config, tokens=tokens, secrets=secrets)
    answers = ErrorAnswers(secrets)
    admin = AdminPage(server.gate, server.queue_now, server.replicas)
    wall = ClassWall(server.gate, server.wall, rate=config.wall_rate)

    def route(
        path: str, endpoint: Handler, label: str, method: str = "GET", name: str | None = None
    ) -> Route:
        """A route whose answers are counted and logged under ``label``."""
        recorded = [
            Middleware(CallRecord, route=label, metrics=server.metrics),
            Middleware(LastResort, answers=answers),
        ]
        return Route(path, endpoint, methods=[method], name=name, middleware=recorded)

    routes = [
        route("/v1/images/generations", server.generations, "generations", "POST"),
        route("/v1/images/edits", server.edits, "edits", "POST"),
        route("/v1/images/variations", server.variations, "variations", "POST"),
        route("/v1/files/{name}", server.result_file, "files", name="result_file"),
        route("/v1/models", server.list_models, "models"),
        route("/v1/models/{model:path}", server.get_model, "models"),
        route("/v1/usage", server.usage, "usage"),
        route("/v1/queue", server.queue_page, "queue"),
        route("/health", server.health, "health"),
        route("/metrics", server.metrics_page, "metrics"),
        route("/admin", admin.page, "admin"),
        route("/admin/{file:str}", admin.page, "admin"),
        route("/admin/api/room", admin.room, "admin"),
        route("/admin/api/tokens/{token_id}/revoke", admin.revoke, "admin", "POST"),
        route("/admin/api/tokens/{token_id}/topup", admin.top_up, "admin", "POST"),
        route("/admin/api/pause", admin.pause, "admin", "POST"),
        route("/admin/api/resume", admin.pause, "admin", "POST"),
        route("/v1/wall", wall.share, "wall", "POST"),
        route("/admin/api/wall", wall.posts, "admin"),
        route("/admin/api/wall/{post_id}", wall.picture, "admin"),
        route("/admin/api/wall/{post_id}/remove", wall.remove, "admin", "POST"),
    ]
    middleware = [
        Middleware(RequestIds),
        Middleware(CrossSiteGuard, allowed_hosts=config.allowed_hosts, allowed_origins=config.cors_origins),
    ]
    if config.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(config.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type"],
            )
        )
    middleware.append(Middleware(BodySizeLimit, max_bytes=config.max_upload_bytes))
    return Starlette(
        routes=routes, middleware=middleware, exception_handlers=answers.handlers(), lifespan=server.lifespan
    )
