"""The engines on Ray Serve: replicas of the preview or diffusers engine over many GPUs and machines.

:func:`deploy` starts (or joins) a Ray cluster, deploys :class:`EngineReplica` with the chosen
number of replicas (or an autoscaling range) and GPUs per replica, and gives back a
:class:`RayBackend`: a Backend whose calls go to the replicas, so ``ipyimagegen serve --engine
ray`` keeps its workshop controls (tokens, budgets, the fair queue) in front of them unchanged.

Each replica loads its model once and makes one small image before it takes calls (warm). A call
travels as one streamed Ray Serve request: progress and partial images come back as they are
made, a cancel (the caller's, or the server's time limit) cancels the replica's work, and a
replica that dies mid-call answers the call with :class:`~ipyimagegen.errors.EngineUnavailableError`
(a retryable 503) while Ray Serve starts another. Nothing here runs unless ``--engine ray`` is
asked for; the ``ray`` extra installs Ray Serve.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import ray
from ray import serve
from ray.exceptions import RayActorError, RayTaskError
from ray.serve.exceptions import RequestCancelledError

from .. import errors as error_types
from ..api.backend import BaseBackend
from ..api.types import (
    CallHooks,
    GeneratedImage,
    GenerateRequest,
    ImageRequest,
    ImagesResponse,
    PartialImage,
    Progress,
)
from ..errors import CancelledError, ConfigurationError, EngineUnavailableError, ImagesError
from ..models import ENDPOINTS, GENERATIONS, ModelSpec, effective_size

log = logging.getLogger(__name__)

APP_NAME = "ipyimagegen"
"""The Ray Serve application's name (one per cluster namespace)."""
RETRY_AFTER_S = 5.0
"""What a caller is told to wait when its replica died: about the time Serve takes to start another."""
_ASKABLE = frozenset({"spec_for", "supports_streaming", "serves_model", "model_for", "shutdown_date"})


@dataclass(frozen=True)
class EngineChoice:
    """Which engine each replica runs: ``preview``, or ``diffusers`` with ``model`` (a folder every
    node can read); ``options`` go to the engine (``steps``, ``max_pixels``, ...)."""

    kind: str = "preview"
    model: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def build(self) -> BaseBackend:
        if self.kind == "preview":
            from .preview import PreviewEngine

            return PreviewEngine(**self.options)
        if self.kind == "diffusers":
            from .diffusers_engine import DiffusersEngine

            return DiffusersEngine(self.model, **self.options)
        raise ConfigurationError(f"Ray Serve runs the preview or diffusers engine, not {self.kind!r}.")


@dataclass(frozen=True)
class Scaling:
    """How many replicas: ``replicas`` fixed, or from ``min_replicas`` to ``max_replicas`` with the
    queue (``target_ongoing`` calls per replica); ``gpus`` and ``cpus`` per replica (fractions allowed)."""

    replicas: int | None = 1
    min_replicas: int | None = None
    max_replicas: int | None = None
    gpus: float = 0.0
    cpus: float = 1.0
    target_ongoing: float = 1.0
    calls_per_replica: int = 4

    @property
    def most(self) -> int:
        return self.max_replicas if self.max_replicas is not None else (self.replicas or 1)

    def options(self) -> dict[str, Any]:
        """The deployment's Ray Serve options."""
        actor = {"num_cpus": self.cpus, "num_gpus": self.gpus}
        options: dict[str, Any] = {"ray_actor_options": actor, "max_ongoing_requests": self.calls_per_replica}
        if self.max_replicas is not None:
            options["autoscaling_config"] = {
                "min_replicas": self.min_replicas or 0,
                "initial_replicas": max(1, self.min_replicas or 0),
                "max_replicas": self.max_replicas,
                "target_ongoing_requests": self.target_ongoing,
            }
        else:
            options["num_replicas"] = self.replicas or 1
        return options


def error_state(exc: ImagesError) -> dict[str, Any]:
    """An ipyimagegen error as plain data (the class name, its args and fields), to cross to the caller."""
    return {"class": type(exc).__name__, "args": exc.args, "fields": dict(vars(exc))}


def error_from_state(state: dict[str, Any]) -> ImagesError:
    """The error :func:`error_state` described, made again (an unknown class becomes an ImagesError)."""
    kind = getattr(error_types, str(state.get("class")), None)
    if not (isinstance(kind, type) and issubclass(kind, ImagesError)):
        kind = ImagesError
    exc = kind.__new__(kind)
    exc.args = tuple(state.get("args", ()))
    vars(exc).update(state.get("fields", {}))
    return exc


@serve.deployment(
    name="EngineReplica",
    health_check_period_s=5,
    health_check_timeout_s=30,
    max_constructor_retry_count=3,  # a model that cannot load fails the deployment, not forever
)
class EngineReplica:
    """One replica: the engine, loaded once and warmed, serving one streamed request per call."""

    def __init__(self, choice: EngineChoice) -> None:
        self.engine = choice.build()
        self.replica_id = serve.get_replica_context().replica_id.unique_id
        self._warm()

    def _warm(self) -> None:
        """One small image, so the first participant's call does not pay for the model's first run."""
        model = self.engine.model_for(GENERATIONS)
        spec = self.engine.spec_for(model)
        sizes = [size for size in spec.sizes if size != "auto"]
        size = min(sizes, key=lambda text: _pixels(text)) if sizes else None
        extra = {"steps": 1} if self.engine.local else {}  # a local model: one step warms it
        self.engine.run(GenerateRequest(prompt="warm-up", model=model, size=size, n=1, seed=0, extra=extra))

    def describe(self) -> dict[str, Any]:
        """What the engine says of itself and of the models it lists, in one answer."""
        engine = self.engine
        models = {endpoint: engine.models(endpoint) for endpoint in ENDPOINTS}
        listed = sorted({name for names in models.values() for name in names})
        answers: list[tuple[str, tuple[Any, ...], Any]] = []
        for endpoint in ENDPOINTS:
            if models[endpoint]:
                answers.append(("model_for", (endpoint, None), engine.model_for(endpoint, None)))
        for name in listed:
            for question in ("spec_for", "supports_streaming", "serves_model", "shutdown_date"):
                answers.append((question, (name,), getattr(engine, question)(name)))
        return {
            "name": engine.name,
            "offline": engine.offline,
            "honours_seeds": engine.honours_seeds,
            "default_model": engine.default_model,
            "enforces_shutdowns": engine.enforces_shutdowns,
            "moderation_words": engine.moderation_words,  # so the front refuses before a stream starts
            "models": models,
            "answers": answers,
        }

    def ask(self, question: str, *args: Any) -> Any:
        """One of the engine's questions about its models (:data:`_ASKABLE`)."""
        if question not in _ASKABLE:
            raise ValueError(f"not a question for the engine: {question!r}")
        return getattr(self.engine, question)(*args)

    async def work(
        self, request: ImageRequest, streaming: bool, images: bool = False
    ) -> AsyncIterator[tuple[str, Any]]:
        """The call, as events: ``("progress", Progress)``, ``("partial", PartialImage)``, with ``images``
        ``("image", GeneratedImage)`` as each image is made (without its request, which the caller has),
        then ``("done", ImagesResponse)`` or ``("error", error_state)``. A cancel stops the engine's work."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        def tell(kind: str) -> Any:
            return lambda item: loop.call_soon_threadsafe(events.put_nowait, (kind, item))

        def made(_first: int, done: list[GeneratedImage]) -> None:
            for image in done:
                image.metadata["replica"] = self.replica_id
                tell("image")(replace(image, request=None))

        hooks = CallHooks(
            on_progress=tell("progress"),
            on_partial=tell("partial") if streaming else None,
            on_images=made if images else None,
            cancel=threading.Event(),
        )
        task = loop.run_in_executor(None, self.engine.run, request, hooks)
        try:
            while True:
                next_event = asyncio.ensure_future(events.get())
                waiting: set[asyncio.Future[Any]] = {task, next_event}
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if not next_event.done():
                    next_event.cancel()
                    break
                yield next_event.result()
            while not events.empty():
                yield events.get_nowait()
            try:
                response = await task
            except ImagesError as exc:
                yield "error", error_state(exc)
                return
            for image in response.data:
                image.metadata["replica"] = self.replica_id
            yield "done", response
        finally:
            assert hooks.cancel is not None
            hooks.cancel.set()  # a cancelled request (or a caller gone) stops the engine at its next step

    def check_health(self) -> None:
        """Ray Serve asks this every few seconds; a replica whose engine is gone is replaced."""
        if self.engine is None:
            raise RuntimeError("the engine is not loaded")


def _why_it_failed(app_name: str) -> str:
    """The last line of the error a replica failed to start with (from the deployment's status)."""
    try:
        status = serve.status().applications[app_name].deployments["EngineReplica"]
    except (KeyError, AttributeError):
        return ""
    lines = [line.strip() for line in str(status.message).splitlines() if line.strip()]
    errors = [line for line in lines if "Error:" in line]
    return (errors or lines or [""])[-1]


def _pixels(size: str) -> int:
    width, _, height = size.partition("x")
    return int(width) * int(height)


class RayBackend(BaseBackend):
    """The Backend in front of the replicas (see the module's docstring): what the engine says of its
    models is asked once and kept; each call is one streamed request to a replica."""

    def __init__(self, handle: Any, *, scaling: Scaling | None = None) -> None:
        self.handle = handle
        self.scaling = scaling or Scaling()
        described = handle.describe.remote().result(timeout_s=120)
        self.engine_name: str = described["name"]
        self.offline = bool(described["offline"])
        self.honours_seeds = bool(described["honours_seeds"])
        self.default_model = described["default_model"]
        self.enforces_shutdowns = bool(described["enforces_shutdowns"])
        self.moderation_words = described["moderation_words"]
        self._models: dict[str, list[str]] = described["models"]
        self._answers: dict[tuple[str, tuple[Any, ...]], Any] = {
            (question, tuple(args)): answer for question, args, answer in described["answers"]
        }
        self._asker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ipyimagegen-ray-ask")
        self._lock = threading.Lock()
        scaling = self.scaling
        replicas = (
            f"{scaling.min_replicas or 0}-{scaling.max_replicas} replicas"
            if scaling.max_replicas is not None
            else f"{scaling.replicas} replica{'s' if scaling.replicas != 1 else ''}"
        )
        self.name = f"{self.engine_name} on Ray Serve ({replicas})"
        self.deployment: RayDeployment | None = None

    @property
    def calls_at_once(self) -> int:  # type: ignore[override]
        """A few calls per replica, at the most replicas there may be."""
        return int(self.scaling.most * self.scaling.calls_per_replica)

    def close(self) -> None:
        """Take the deployment down (see :meth:`RayDeployment.close`), when :func:`deploy` made it."""
        self._asker.shutdown(wait=False)
        if self.deployment is not None:
            self.deployment.close()

    def _ask(self, question: str, *args: Any) -> Any:
        key = (question, args)
        with self._lock:
            if key in self._answers:
                return self._answers[key]
        # Off the caller's thread: a server asks from its event loop, where Ray's handles must not block.
        asked = self._asker.submit(lambda: self.handle.ask.remote(question, *args).result(timeout_s=60))
        answer = asked.result()
        with self._lock:
            self._answers[key] = answer
        return answer

    def models(self, endpoint: str = GENERATIONS) -> list[str]:
        return list(self._models.get(endpoint, []))

    def spec_for(self, model: str) -> ModelSpec:
        spec: ModelSpec = self._ask("spec_for", model)
        return spec

    def supports_streaming(self, model: str) -> bool:
        return bool(self._ask("supports_streaming", model))

    def serves_model(self, model: str) -> bool:
        return bool(self._ask("serves_model", model))

    def model_for(self, endpoint: str, size: str | None = None) -> str:
        if size is not None:  # worked out here from what is kept: a caller's sizes are not kept as answers
            return super().model_for(endpoint, size)
        return str(self._ask("model_for", endpoint, size))

    def shutdown_date(self, model: str) -> date | None:
        answer: date | None = self._ask("shutdown_date", model)
        return answer

    def run(self, request: ImageRequest, hooks: CallHooks | None = None) -> ImagesResponse:
        """The call on a replica; partial images, progress and each image (``hooks.on_images``) reach
        ``hooks`` as they are made, and the response holds the images handed over again."""
        hooks = hooks or CallHooks()
        self.check_request(request)
        hooks.check_cancelled()
        streaming = hooks.on_partial is not None
        events = self.handle.options(stream=True).work.remote(request, streaming, hooks.on_images is not None)
        made = _Made(request)
        try:
            with _cancelling(events, hooks):
                for kind, item in events:
                    if kind == "progress" and isinstance(item, Progress):
                        hooks.progress(item.done, item.total, item.message)
                    elif kind == "partial" and isinstance(item, PartialImage):
                        hooks.partial(item)
                    elif kind == "image" and isinstance(item, GeneratedImage):
                        hooks.image_done(made.add(item))
                    elif kind == "error":
                        raise error_from_state(item)
                    elif kind == "done":
                        hooks.check_cancelled()
                        return made.again(item)
        except (RequestCancelledError, asyncio.CancelledError):
            raise CancelledError() from None
        except RayActorError:
            raise EngineUnavailableError(
                "The engine replica serving this call stopped; Ray Serve is starting another: try again.",
                retry_after=RETRY_AFTER_S,
            ) from None
        except RayTaskError as exc:
            log.error("a replica failed: %s", exc)
            raise EngineUnavailableError(
                "The engine replica failed while serving this call: try again.", retry_after=RETRY_AFTER_S
            ) from None
        hooks.check_cancelled()
        raise EngineUnavailableError(
            "The engine replica ended this call without an answer: try again.", retry_after=RETRY_AFTER_S
        )


class _Made:
    """The images a replica handed over one by one during a call: given the call's request again (they
    travel without it), and put in the call's response in place of their copies."""

    def __init__(self, request: ImageRequest) -> None:
        size = effective_size(request.model, request.size)  # as the engine's run() sent it
        self.request = request if size == request.size else replace(request, size=size)
        self.images: dict[int, GeneratedImage] = {}

    def add(self, image: GeneratedImage) -> GeneratedImage:
        image.request = self.request
        self.images[image.index] = image
        return image

    def again(self, response: ImagesResponse) -> ImagesResponse:
        """``response`` with the images handed over in it (the same objects, so that none is taken twice)."""
        response.data = [self.images.get(image.index, image) for image in response.data]
        return response


@contextmanager
def _cancelling(events: Any, hooks: CallHooks) -> Iterator[None]:
    """While the block runs, cancel ``events`` (the Serve request) as soon as ``hooks`` is cancelled."""
    if hooks.cancel is None:
        yield
        return
    finished = threading.Event()

    def watch() -> None:
        while not finished.wait(0.05):
            if hooks.cancelled:
                events.cancel()
                return

    watcher = threading.Thread(target=watch, name="ipyimagegen-ray-cancel", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        finished.set()
        watcher.join(timeout=1.0)


class RayDeployment:
    """The engines deployed on a Ray cluster: :attr:`backend` serves them; :meth:`close` takes the
    application down (and stops the local Ray instance this process started)."""

    def __init__(self, backend: RayBackend, *, started_ray: bool, app_name: str) -> None:
        self.backend = backend
        backend.deployment = self
        self._closed = False
        self.started_ray = started_ray
        self.app_name = app_name

    def replicas(self) -> dict[str, int]:
        """The replicas by state (``RUNNING``, ``STARTING``, ...), as Ray Serve reports them."""
        status = serve.status().applications.get(self.app_name)
        if status is None:
            return {}
        deployment = status.deployments.get("EngineReplica")
        if deployment is None:
            return {}
        return {
            str(getattr(state, "value", state)): count for state, count in deployment.replica_states.items()
        }

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            serve.delete(self.app_name)
        except Exception as exc:  # the cluster may be gone already
            log.debug("could not delete the Serve application: %s", exc)
        if self.started_ray:
            serve.shutdown()
            ray.shutdown()

    def __enter__(self) -> RayDeployment:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def deploy(
    choice: EngineChoice,
    scaling: Scaling | None = None,
    *,
    address: str | None = None,
    app_name: str = APP_NAME,
    ray_options: dict[str, Any] | None = None,
) -> RayDeployment:
    """Deploy ``choice`` on Ray Serve and return it, ready (every replica loaded and warmed).

    ``address``: a running cluster (``ray://head:10001``, or ``auto`` on one of its nodes); None
    starts a local Ray instance in this process (stopped by :meth:`RayDeployment.close`).
    ``ray_options`` go to ``ray.init`` (``num_cpus``, ``object_store_memory``, ...).
    """
    scaling = scaling or Scaling()
    started_ray = False
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, **(ray_options or {}))
        started_ray = address is None
    serve.start(proxy_location="Disabled")  # calls come through this process's server, not Serve's HTTP
    try:
        deployment: Any = EngineReplica  # a Serve deployment (the decorator made it one)
        application = deployment.options(**scaling.options()).bind(choice)
        try:
            handle = serve.run(application, name=app_name, route_prefix=None)
        except RuntimeError as exc:  # Serve says only that the deployment failed; its status says why
            reason = _why_it_failed(app_name) or str(exc)
            serve.delete(app_name)
            raise ConfigurationError(
                f"The {choice.kind} engine could not start on Ray Serve: {reason}"
            ) from None
        backend = RayBackend(handle, scaling=scaling)
    except BaseException:
        if started_ray:
            serve.shutdown()
            ray.shutdown()
        raise
    return RayDeployment(backend, started_ray=started_ray, app_name=app_name)


__all__ = [
    "EngineChoice",
    "EngineReplica",
    "RayBackend",
    "RayDeployment",
    "Scaling",
    "deploy",
]
