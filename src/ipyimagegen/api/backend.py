"""The Backend protocol every image source implements, and a base class that does the common work.

A backend takes one request object and returns one :class:`ImagesResponse`. The keyword
methods (``generate``, ``edit``, ``create_variation``) build that request, preparing input
images for the chosen model, and call :meth:`BaseBackend.run`. Smaller protocols name what
only some backends do: :class:`Proxying` (hand on an upstream's answers as they came), and a
workshop server's features, :class:`ClassWall` (its wall) and :class:`WorkshopBudget` (what a
participant's token has left).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, Protocol, runtime_checkable

from ..errors import ImageInputError, UnnamedModelRetiredError, UnsupportedError, ValidationError, continued
from ..models import (
    DALL_E,
    DEFAULT_MODEL,
    EDITS,
    ENDPOINTS,
    GENERATIONS,
    UNNAMED_MODEL,
    VARIATIONS,
    ModelChoice,
    ModelSpec,
    classic_signal,
    effective_size,
    gpt_image_signal,
    live_models,
    model_spec,
    models_for,
    size_allowed,
)
from ..moderation import WordList
from ..pricing import CostEstimate, estimate_cost
from .budget import TokenBudget
from .types import (
    Background,
    CallHooks,
    Complexity,
    EditRequest,
    GeneratedImage,
    GenerateRequest,
    ImageRequest,
    ImagesResponse,
    InputFidelity,
    InputImage,
    Moderation,
    OutputFormat,
    PartialImage,
    Progress,
    Quality,
    ResponseFormat,
    Style,
    VariationRequest,
)
from .validation import check_lifecycle, explain_model, validate_request

VARIATION_PROMPT = (
    "A variation of this image: keep its subject, composition and framing, and vary the details, "
    "colours, lighting and texture."
)
"""What an edit-made variation asks for; the user's words are added after it."""


def variation_prompt(words: str = "") -> str:
    """The prompt of a variation made as an edit: :data:`VARIATION_PROMPT`, then the user's ``words``."""
    return f"{VARIATION_PROMPT} {words.strip()}".strip()


@runtime_checkable
class Backend(Protocol):
    """Anything that makes images from Images API requests: every method and attribute a caller may use.

    :class:`BaseBackend` implements it all; the keyword methods take the Images API's parameters (those
    the chosen model accepts), so a notebook shows them as one types ``backend.generate(``.
    """

    name: str
    offline: bool
    honours_seeds: bool
    """True where the same seed and request give the same image (local engines)."""

    @property
    def calls_at_once(self) -> int | None:
        """How many calls this backend runs well at once (a Ray deployment's replicas); None: no such number."""
        ...

    # -- which models, and what they take ----------------------------------------------------

    def models(self, endpoint: str = GENERATIONS) -> list[str]: ...

    def serves_model(self, model: str) -> bool: ...

    def serves_variations(self, model: str | None = None) -> bool: ...

    def spec_for(self, model: str) -> ModelSpec: ...

    def model_for(self, endpoint: str, size: str | None = None) -> str: ...

    def choose_model(self, endpoint: str, given: dict[str, Any]) -> ModelChoice: ...

    def shutdown_date(self, model: str) -> date | None: ...

    def supports_streaming(self, model: str) -> bool: ...

    # -- one request in, one response out ---------------------------------------------------

    def check_request(self, request: ImageRequest) -> ModelSpec: ...

    def run(self, request: ImageRequest, hooks: CallHooks | None = None) -> ImagesResponse: ...

    # -- keyword conveniences ----------------------------------------------------------------

    def generate(
        self,
        *,
        prompt: str,
        model: str | None = None,
        n: int = 1,
        size: str | None = None,
        quality: Quality | None = None,
        style: Style | None = None,
        background: Background | None = None,
        output_format: OutputFormat | None = None,
        output_compression: int | None = None,
        moderation: Moderation | None = None,
        complexity: Complexity | None = None,
        frame_count: int | None = None,
        frame_duration_ms: int | None = None,
        svg: dict[str, Any] | None = None,
        partial_images: int | None = None,
        response_format: ResponseFormat | None = None,
        safety_identifier: str | None = None,
        user: str | None = None,
        seed: int | None = None,
        extra: dict[str, Any] | None = None,
        on_partial: Callable[[PartialImage], None] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        cancel: threading.Event | None = None,
        timeout: float | None = None,
    ) -> ImagesResponse:
        """Make images from a prompt, with the Images API's parameters (those the model takes)."""
        ...

    def edit(
        self,
        *,
        image: Any,
        prompt: str,
        mask: Any = None,
        markup: Any = None,
        model: str | None = None,
        fit: str = "crop",
        n: int = 1,
        size: str | None = None,
        quality: Quality | None = None,
        background: Background | None = None,
        output_format: OutputFormat | None = None,
        output_compression: int | None = None,
        input_fidelity: InputFidelity | None = None,
        complexity: Complexity | None = None,
        frame_count: int | None = None,
        frame_duration_ms: int | None = None,
        svg: dict[str, Any] | None = None,
        partial_images: int | None = None,
        response_format: ResponseFormat | None = None,
        safety_identifier: str | None = None,
        user: str | None = None,
        seed: int | None = None,
        extra: dict[str, Any] | None = None,
        on_partial: Callable[[PartialImage], None] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        cancel: threading.Event | None = None,
        timeout: float | None = None,
    ) -> ImagesResponse:
        """Edit an image (or several, for GPT image models): the mask's transparent area is remade."""
        ...

    def create_variation(
        self,
        *,
        image: Any,
        model: str | None = None,
        fit: str = "crop",
        n: int = 1,
        size: str | None = None,
        response_format: ResponseFormat | None = None,
        user: str | None = None,
        seed: int | None = None,
        extra: dict[str, Any] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        cancel: threading.Event | None = None,
        timeout: float | None = None,
    ) -> ImagesResponse:
        """Make images like ``image`` (``POST /images/variations``, DALL-E 2 semantics)."""
        ...

    def vary(
        self, *, image: Any, prompt: str = "", model: str | None = None, fit: str = "crop", **options: Any
    ) -> ImagesResponse:
        """Images like ``image``: real variations where served, else edits of the whole image."""
        ...

    # -- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        """Let go of what the backend holds (an HTTP session, a deployment)."""
        ...


@runtime_checkable
class ClassWall(Protocol):
    """A workshop feature: a class wall that pictures are shared on (a server started with --class-wall)."""

    @property
    def shares_pictures(self) -> bool:
        """Whether there is a wall to share on."""
        ...

    def share_picture(self, image: bytes, prompt: str = "") -> None:
        """Put a picture, with its prompt, on the wall."""
        ...


@runtime_checkable
class WorkshopBudget(Protocol):
    """A workshop feature: what the caller's participant token has left on a server that keeps budgets."""

    def budget_left(self) -> TokenBudget | None:
        """Images and estimated dollars used and left, asked now (None where no budget is kept for the
        caller); a failed call raises its typed error."""
        ...


@dataclass
class Forwarded:
    """A successful answer passed on as it came: its content type, and its body or, for a stream,
    its chunks as they arrive."""

    content_type: str
    body: bytes = b""
    chunks: Iterator[bytes] | None = None


@runtime_checkable
class Proxying(Protocol):
    """A backend that hands on an upstream's answers as they came (what ``ipyimagegen serve`` in
    upstream mode passes to its participants, nothing decoded and encoded again)."""

    def forward(
        self, request: ImageRequest, *, stream: bool = False, hooks: CallHooks | None = None
    ) -> Forwarded: ...


class BaseBackend:
    """Validation, input preparation, timing and dispatch shared by all backends: the whole
    :class:`Backend`, a :class:`ClassWall` that has no wall and a :class:`WorkshopBudget` that keeps no
    budget, until a subclass says otherwise.

    Subclasses implement ``_generate``, ``_edit`` and ``_create_variation``; each gets a
    validated request and the caller's hooks and returns an :class:`ImagesResponse`.

    Size: it carries the three protocols' defaults (Backend, ClassWall, WorkshopBudget) and the
    steps every call shares (checking, preparing the inputs, timing, labelling each image as it is
    handed over and the response), which subclasses must not repeat.
    """

    name: str = "backend"
    offline: bool = False
    honours_seeds: bool = False  # the same seed and request give the same image (local engines)
    local: bool = False
    """True for a model run in this process or its replicas (its first call loads it: a small step warms it)."""
    calls_at_once: int | None = None
    """How many calls this backend runs well at once (a Ray deployment's replicas); None: no such number."""
    default_model: str = DEFAULT_MODEL
    enforces_shutdowns: bool = False
    """True where a model past its shutdown date is refused before sending (OpenAI, Azure)."""
    moderation_words: WordList | None = None
    """The word list a local engine checks prompts against (:mod:`ipyimagegen.moderation`); None where
    the service moderates for itself (OpenAI, Azure, a compatible server)."""

    def models(self, endpoint: str = GENERATIONS) -> list[str]:
        """The models to offer for an endpoint: the live catalogue, then the original API (DALL-E 2 and 3)."""
        live = live_models(endpoint)
        classic = [name for name in models_for(endpoint) if model_spec(name).family == DALL_E]
        return live + [name for name in classic if name not in live]

    def serves_model(self, model: str) -> bool:
        """Whether this backend makes images with ``model`` (a snapshot of a model it offers counts)."""
        offered = {name for endpoint in ENDPOINTS for name in self.models(endpoint)}
        return model in offered or self.spec_for(model).snapshot_of in offered

    def shutdown_date(self, model: str) -> date | None:
        """When ``model`` shuts down on this backend (None: no date known, or it serves the model on)."""
        return self.spec_for(model).lifecycle.shutdown if self.enforces_shutdowns else None

    def check_shutdown(self, spec: ModelSpec) -> None:
        """Refuse a model past its shutdown date on this backend (:class:`ModelShutDownError`), before sending."""
        end = self.shutdown_date(spec.name)
        if end is not None:
            check_lifecycle(spec, shutdown=end)

    def serves_variations(self, model: str | None = None) -> bool:
        """Whether ``POST /images/variations`` is served here (by ``model``, or by any model)."""
        offered = self.models(VARIATIONS)
        return bool(offered) if model is None else model in offered

    def supports_streaming(self, model: str) -> bool:
        return False

    def close(self) -> None:
        """Nothing to let go of here; a backend that holds a session or a deployment closes it."""

    @property
    def shares_pictures(self) -> bool:
        """Whether this backend has a class wall to share pictures on (a workshop server that names one)."""
        return False

    def share_picture(self, image: bytes, prompt: str = "") -> None:
        """Put a picture, with its prompt, on the workshop's class wall (see :attr:`shares_pictures`)."""
        raise UnsupportedError(
            f"{self.name} has no class wall: sharing needs a workshop server started with --class-wall."
        )

    def budget_left(self) -> TokenBudget | None:
        """What the caller's workshop token has left: None here (no budget is kept for the caller)."""
        return None

    def spec_for(self, model: str) -> ModelSpec:
        """What ``model`` accepts on this backend (sizes, n, options): the capability table's entry."""
        return model_spec(model)

    def model_for(self, endpoint: str, size: str | None = None) -> str:
        """The default model for an endpoint (the first offered when the default does not serve it).

        With ``size``, a default that does not take that size gives way to the first offered
        model that does (as the Images API picks dall-e-2 for a 256x256 request without a model).
        """
        offered = self.models(endpoint)
        default = self.default_model if self.spec_for(self.default_model).serves(endpoint) else None
        if default not in offered:
            default = offered[0] if offered else None
        if default is None:
            raise UnsupportedError(f"{self.name} does not do {endpoint}.")
        if size is not None and not size_allowed(self.spec_for(default), size):
            return next((name for name in offered if size_allowed(self.spec_for(name), size)), default)
        return default

    def choose_model(self, endpoint: str, given: dict[str, Any]) -> ModelChoice:
        """The model a call that names none means, as the original Images API chose it, and why.

        ``given`` holds the call's parameters (unset ones None or absent; ``images``: how many
        input images). Where DALL-E 2 is served, the call means it unless it sets a parameter that
        only the GPT image models take; elsewhere it means this backend's default model. A call
        whose parameters only DALL-E 2 takes (a 256 or 512 square, ``response_format``, a
        variation), on a backend that no longer serves it and whose default does not take them
        either, raises :class:`UnnamedModelRetiredError` saying what to send instead.
        """
        classic, modern = classic_signal(endpoint, given), gpt_image_signal(endpoint, given)
        if modern is None and UNNAMED_MODEL in self.models(endpoint):
            why = f"; {classic}" if classic else ""
            default = "" if classic else ", the Images API's default"
            return ModelChoice(UNNAMED_MODEL, f"no model given{why}, so {UNNAMED_MODEL}{default}")
        if classic is not None and modern is None:
            fallback = self._default_taking(endpoint, given)
            if fallback is None:
                self._refuse_unnamed(endpoint, classic, given)
            else:
                return ModelChoice(fallback, f"no model given, so {fallback}, the default here")
        model = self.model_for(endpoint, None if modern else given.get("size"))
        why = f"; {modern}" if modern else ""
        return ModelChoice(model, f"no model given{why}, so {model}, the default here")

    def _default_taking(self, endpoint: str, given: dict[str, Any]) -> str | None:
        """This backend's default model for ``endpoint`` where it takes the call's DALL-E parameters."""
        try:
            model = self.model_for(endpoint, given.get("size"))
        except UnsupportedError:
            return None
        spec = self.spec_for(model)
        size, response_format = given.get("size"), given.get("response_format")
        if size is not None and not size_allowed(spec, size):
            return None
        if response_format is not None and response_format not in spec.response_formats:
            return None
        return model

    def _refuse_unnamed(self, endpoint: str, reason: str, given: dict[str, Any]) -> None:
        """Raise :class:`UnnamedModelRetiredError`: which live model (and size) to name instead."""
        end = model_spec(UNNAMED_MODEL).lifecycle.shutdown
        shutdown = end.isoformat() if end is not None and self.enforces_shutdowns else None
        live = self.models(EDITS if endpoint == VARIATIONS else endpoint)
        model = live[0] if live else self.default_model
        spec = self.spec_for(model)
        if endpoint == VARIATIONS:
            instead = f"make variations with vary(image=...), an edit of the whole picture by {model}"
            param = "model"
        elif given.get("response_format") is not None and given.get("size") in (None, *spec.sizes):
            instead = f"name model={model!r} and leave response_format unset (it answers base64 images)"
            param = "response_format"
        else:
            instead = f"name model={model!r} with one of its sizes, such as size={spec.default_size!r}"
            if given.get("response_format") is not None:
                instead += ", and leave response_format unset"
            param = "size"
        raise UnnamedModelRetiredError(
            UNNAMED_MODEL,
            shutdown,
            (model,),
            reason=f"no model given; {reason}, so {UNNAMED_MODEL}",
            instead=instead,
            param=param,
        )

    # -- one request in, one response out ---------------------------------------------------

    def check_request(self, request: ImageRequest) -> ModelSpec:
        """Raise if ``request`` cannot be sent here (its values, its model's shutdown, a prompt the
        moderation word list flags); its model's spec. A server calls it before it answers anything."""
        spec = validate_request(request)
        self.check_shutdown(spec)
        if self.moderation_words is not None and isinstance(request, (GenerateRequest, EditRequest)):
            moderation = request.moderation if isinstance(request, GenerateRequest) else None
            self.moderation_words.check_prompt(request.prompt, request.model, moderation)
        return spec

    def run(self, request: ImageRequest, hooks: CallHooks | None = None) -> ImagesResponse:
        hooks = hooks or CallHooks()
        self.check_request(request)
        size = effective_size(request.model, request.size)
        if size != request.size:
            request = replace(request, size=size)  # a DALL-E call's default size, as the API gave it
        hooks.check_cancelled()
        started = time.perf_counter()
        try:
            response = self._dispatch(request, hooks)
        except ValidationError as exc:  # an engine's own refusal says why its model was chosen too
            explain_model(exc, request)
            raise
        hooks.check_cancelled()
        response.elapsed_s = time.perf_counter() - started
        response.request = request
        response.backend = response.backend or self.name
        response.model = response.model or request.model
        if response.cost is None:
            response.cost = self._estimate(request, response.usage, len(response.data))
        for image in response.data:
            _describe(image, request, response.backend, response.cost, response.usage, len(response.data))
        return response

    def _estimate(self, request: ImageRequest, usage: dict[str, Any] | None, n: int) -> CostEstimate | None:
        """The estimated cost of ``n`` images of ``request`` (from ``usage`` where the call reports it)."""
        return estimate_cost(
            request.model,
            usage=usage,
            n=n,
            size=request.size,
            quality=getattr(request, "quality", None),
            billed=not self.offline,
        )

    def _image_done(
        self,
        request: ImageRequest,
        hooks: CallHooks,
        image: GeneratedImage,
        usage: dict[str, Any] | None = None,
    ) -> None:
        """Hand ``image``, one of the ``request.n`` the call makes, to ``hooks`` as soon as it is made,
        described as :meth:`run` describes the call's images (request, backend, model, its share of the
        cost). An engine that makes a batch image by image calls it for each; ``usage``: the whole call's,
        where the engine knows it before the images are made."""
        if hooks.on_images is None or hooks.cancelled:
            return
        _describe(image, request, self.name, self._estimate(request, usage, request.n), usage, request.n)
        hooks.image_done(image)

    def _dispatch(self, request: ImageRequest, hooks: CallHooks) -> ImagesResponse:
        if isinstance(request, GenerateRequest):
            return self._generate(request, hooks)
        if isinstance(request, EditRequest):
            return self._edit(request, hooks)
        if isinstance(request, VariationRequest):
            return self._create_variation(request, hooks)
        raise TypeError(f"not an image request: {request!r}")  # pragma: no cover - the type says so

    def _generate(self, request: GenerateRequest, hooks: CallHooks) -> ImagesResponse:
        raise UnsupportedError(f"{self.name} does not do generations.")

    def _edit(self, request: EditRequest, hooks: CallHooks) -> ImagesResponse:
        raise UnsupportedError(f"{self.name} does not do edits.")

    def _create_variation(self, request: VariationRequest, hooks: CallHooks) -> ImagesResponse:
        raise UnsupportedError(f"{self.name} does not do variations.")

    # -- keyword conveniences --------------------------------------------------------------

    def generate(
        self,
        *,
        prompt: str,
        model: str | None = None,
        n: int = 1,
        size: str | None = None,
        quality: Quality | None = None,
        style: Style | None = None,
        background: Background | None = None,
        output_format: OutputFormat | None = None,
        output_compression: int | None = None,
        moderation: Moderation | None = None,
        complexity: Complexity | None = None,
        frame_count: int | None = None,
        frame_duration_ms: int | None = None,
        svg: dict[str, Any] | None = None,
        partial_images: int | None = None,
        response_format: ResponseFormat | None = None,
        safety_identifier: str | None = None,
        user: str | None = None,
        seed: int | None = None,
        extra: dict[str, Any] | None = None,
        on_partial: Callable[[PartialImage], None] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        cancel: threading.Event | None = None,
        timeout: float | None = None,
    ) -> ImagesResponse:
        """Make images from a prompt, with the Images API's parameters (those the model takes)."""
        hooks = CallHooks(on_partial=on_partial, on_progress=on_progress, cancel=cancel, timeout=timeout)
        request = GenerateRequest(
            prompt=prompt,
            model=model or "",
            n=n,
            size=size,
            quality=quality,
            style=style,
            background=background,
            output_format=output_format,
            output_compression=output_compression,
            moderation=moderation,
            complexity=complexity,
            frame_count=frame_count,
            frame_duration_ms=frame_duration_ms,
            svg=svg,
            partial_images=partial_images,
            response_format=response_format,
            safety_identifier=safety_identifier,
            user=user,
            seed=seed,
            extra=dict(extra or {}),
        )
        if not model:
            choice = self.choose_model(GENERATIONS, request.options())
            request.model, request.model_reason = choice.model, choice.reason
        return _with_data_urls(self.run(request, hooks))

    def edit(
        self,
        *,
        image: Any,
        prompt: str,
        mask: Any = None,
        markup: Any = None,
        model: str | None = None,
        fit: str = "crop",
        n: int = 1,
        size: str | None = None,
        quality: Quality | None = None,
        background: Background | None = None,
        output_format: OutputFormat | None = None,
        output_compression: int | None = None,
        input_fidelity: InputFidelity | None = None,
        complexity: Complexity | None = None,
        frame_count: int | None = None,
        frame_duration_ms: int | None = None,
        svg: dict[str, Any] | None = None,
        partial_images: int | None = None,
        response_format: ResponseFormat | None = None,
        safety_identifier: str | None = None,
        user: str | None = None,
        seed: int | None = None,
        extra: dict[str, Any] | None = None,
        on_partial: Callable[[PartialImage], None] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        cancel: threading.Event | None = None,
        timeout: float | None = None,
    ) -> ImagesResponse:
        """Edit an image (or several, for GPT image models): the mask's transparent area is remade.

        ``image``, ``mask`` and ``markup`` may be paths, bytes, file objects, PIL images or arrays
        (a boolean mask array is True where to regenerate). They are prepared for the model: for
        dall-e-2 a square RGBA PNG (``fit`` = "crop" or "pad") at the requested size.
        """
        from ..imaging import prepare_input_image, prepare_markup, prepare_mask

        hooks = CallHooks(on_partial=on_partial, on_progress=on_progress, cancel=cancel, timeout=timeout)
        sources = list(image) if isinstance(image, (list, tuple)) else [image]
        parameters: dict[str, Any] = dict(
            n=n,
            size=size,
            quality=quality,
            background=background,
            output_format=output_format,
            output_compression=output_compression,
            input_fidelity=input_fidelity,
            complexity=complexity,
            frame_count=frame_count,
            frame_duration_ms=frame_duration_ms,
            svg=svg,
            partial_images=partial_images,
            response_format=response_format,
            safety_identifier=safety_identifier,
            user=user,
            seed=seed,
        )
        choice = None
        if not model:
            given = {**parameters, "images": len(sources), "mask": mask, "markup": markup}
            choice = self.choose_model(EDITS, given)
            model = choice.model
        spec = self.spec_for(model)
        images = [
            _input(
                "image" if len(sources) == 1 else f"image {k + 1} of {len(sources)}",
                "image",
                prepare_input_image,
                src,
                spec,
                size=size,
                fit=fit,
            )
            for k, src in enumerate(sources)
        ]
        prepared_mask = None
        if mask is not None:
            prepared_mask = _input("mask", "mask", prepare_mask, mask, images[0], source=sources[0], fit=fit)
        prepared_markup = None
        if markup is not None:
            prepared_markup = _input("markup", "markup", prepare_markup, markup, images[0])
        request = EditRequest(
            images=images,
            mask=prepared_mask,
            markup=prepared_markup,
            prompt=prompt,
            model=model,
            model_reason=choice.reason if choice else None,
            extra=dict(extra or {}),
            **parameters,
        )
        return _with_data_urls(self.run(request, hooks))

    def create_variation(
        self,
        *,
        image: Any,
        model: str | None = None,
        fit: str = "crop",
        n: int = 1,
        size: str | None = None,
        response_format: ResponseFormat | None = None,
        user: str | None = None,
        seed: int | None = None,
        extra: dict[str, Any] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        cancel: threading.Event | None = None,
        timeout: float | None = None,
    ) -> ImagesResponse:
        """Make images like ``image`` (``POST /images/variations``, DALL-E 2 semantics)."""
        from ..imaging import prepare_input_image

        hooks = CallHooks(on_progress=on_progress, cancel=cancel, timeout=timeout)
        choice = None
        if not model:
            choice = self.choose_model(VARIATIONS, dict(size=size, response_format=response_format))
            model = choice.model
        prepared = _input(
            "image", "image", prepare_input_image, image, self.spec_for(model), size=size, fit=fit
        )
        request = VariationRequest(
            image=prepared,
            model=model,
            model_reason=choice.reason if choice else None,
            n=n,
            size=size,
            response_format=response_format,
            user=user,
            seed=seed,
            extra=dict(extra or {}),
        )
        return _with_data_urls(self.run(request, hooks))

    def vary(
        self, *, image: Any, prompt: str = "", model: str | None = None, fit: str = "crop", **options: Any
    ) -> ImagesResponse:
        """Images like ``image``: real variations where this backend serves them, else edits of the whole image.

        Where no model serves ``/images/variations`` (OpenAI today), the current edit model remakes
        the whole picture from :data:`VARIATION_PROMPT` plus ``prompt`` (the user's words); such
        results say so in their metadata (``variation_method: "edit"``).
        """
        if model is None and self.serves_variations():
            model = self.model_for(VARIATIONS, options.get("size"))
        if model is not None and self.serves_variations(model):
            if prompt.strip():
                raise UnsupportedError(
                    f"{model} makes variations without a prompt: leave the words out, or pick an edit model."
                )
            response = self.create_variation(image=image, model=model, fit=fit, **options)
            method = "variations"
        else:
            response = self.edit(
                image=image, prompt=variation_prompt(prompt), model=model, fit=fit, **options
            )
            method = "edit"
        for result in response.data:
            result.metadata["variation_method"] = method
        return response


def _describe(
    image: GeneratedImage,
    request: ImageRequest,
    backend: str,
    cost: CostEstimate | None,
    usage: dict[str, Any] | None,
    share: int,
) -> None:
    """Give ``image``, one of ``share`` images of a call, its request and what the call's metadata says of
    it: the backend, the model, its share of the estimated cost and of the usage (set once)."""
    share = share or 1
    image.request = request
    image.metadata.setdefault("backend", backend)
    image.metadata.setdefault("model", request.model)
    if cost is not None:
        image.metadata.setdefault("cost", {**cost.to_dict(), "usd": cost.usd / share})
    if usage:
        image.metadata.setdefault("usage", {**usage, "images": share})


def _with_data_urls(response: ImagesResponse) -> ImagesResponse:
    """Links for a call that asked for them and got none (an engine in process): ``data:`` URLs, which
    carry the picture itself. Made only here, for a caller in Python, never for a server's answer."""
    request = response.request
    if request is not None and request.response_format == "url":
        for image in response.data:
            image.url = image.url or image.data_url()
    return response


def _input(
    label: str, param: str, prepare: Callable[..., InputImage], *args: Any, **kwargs: Any
) -> InputImage:
    """An input prepared for the model; an unusable one says which it is (``The mask cannot be used: ...``)."""
    try:
        return prepare(*args, **kwargs)
    except ImageInputError as exc:
        raise ImageInputError(
            f"The {label} cannot be used: {continued(exc.message)}", param=param, hint=exc.hint
        ) from None
