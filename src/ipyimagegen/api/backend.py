"""The Backend protocol every image source implements, and a base class that does the common work.

A backend takes one request object and returns one :class:`ImagesResponse`. The keyword
methods (``generate``, ``edit``, ``create_variation``) build that request, preparing input
images for the chosen model, and call :meth:`BaseBackend.run`.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Protocol, runtime_checkable

from ..models import (
    DEFAULT_MODEL,
    EDITS,
    GENERATIONS,
    VARIATIONS,
    ModelSpec,
    model_spec,
    models_for,
    size_allowed,
)
from .errors import UnsupportedError
from .types import (
    CallHooks,
    EditRequest,
    GenerateRequest,
    ImageRequest,
    ImagesResponse,
    VariationRequest,
)
from .validation import validate_request


@runtime_checkable
class Backend(Protocol):
    """Anything that makes images from Images API requests."""

    name: str
    offline: bool

    def models(self, endpoint: str = GENERATIONS) -> list[str]: ...

    def supports_streaming(self, model: str) -> bool: ...

    def run(self, request: ImageRequest, hooks: CallHooks | None = None) -> ImagesResponse: ...

    def generate(self, *, prompt: str, **options: Any) -> ImagesResponse: ...

    def edit(self, *, image: Any, prompt: str, mask: Any = None, **options: Any) -> ImagesResponse: ...

    def create_variation(self, *, image: Any, **options: Any) -> ImagesResponse: ...


_HOOK_OPTIONS = ("on_partial", "on_progress", "cancel", "timeout")


def _split_hooks(options: dict[str, Any]) -> CallHooks:
    return CallHooks(**{key: options.pop(key) for key in _HOOK_OPTIONS if key in options})


class BaseBackend:
    """Validation, input preparation, timing and dispatch shared by all backends.

    Subclasses implement ``_generate``, ``_edit`` and ``_create_variation``; each gets a
    validated request and the caller's hooks and returns an :class:`ImagesResponse`.
    """

    name: str = "backend"
    offline: bool = False
    default_model: str = DEFAULT_MODEL

    def models(self, endpoint: str = GENERATIONS) -> list[str]:
        """The models to offer for an endpoint."""
        return models_for(endpoint)

    def supports_streaming(self, model: str) -> bool:
        return False

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

    # -- one request in, one response out ---------------------------------------------------

    def run(self, request: ImageRequest, hooks: CallHooks | None = None) -> ImagesResponse:
        hooks = hooks or CallHooks()
        validate_request(request)
        hooks.check_cancelled()
        started = time.perf_counter()
        if isinstance(request, GenerateRequest):
            response = self._generate(request, hooks)
        elif isinstance(request, EditRequest):
            response = self._edit(request, hooks)
        elif isinstance(request, VariationRequest):
            response = self._create_variation(request, hooks)
        else:  # pragma: no cover - the type says it cannot happen
            raise TypeError(f"not an image request: {request!r}")
        hooks.check_cancelled()
        response.elapsed_s = time.perf_counter() - started
        response.request = request
        response.backend = response.backend or self.name
        response.model = response.model or request.model
        for image in response.data:
            image.request = request
            image.metadata.setdefault("backend", response.backend)
            image.metadata.setdefault("model", request.model)
        return response

    def _generate(self, request: GenerateRequest, hooks: CallHooks) -> ImagesResponse:
        raise UnsupportedError(f"{self.name} does not do generations.")

    def _edit(self, request: EditRequest, hooks: CallHooks) -> ImagesResponse:
        raise UnsupportedError(f"{self.name} does not do edits.")

    def _create_variation(self, request: VariationRequest, hooks: CallHooks) -> ImagesResponse:
        raise UnsupportedError(f"{self.name} does not do variations.")

    # -- keyword conveniences --------------------------------------------------------------

    def generate(self, *, prompt: str, model: str | None = None, **options: Any) -> ImagesResponse:
        """Make images from a prompt. Options are the API's (n, size, quality, style...)."""
        hooks = _split_hooks(options)
        model = model or self.model_for(GENERATIONS, options.get("size"))
        request = GenerateRequest(prompt=prompt, model=model, **options)
        return self.run(request, hooks)

    def edit(
        self,
        *,
        image: Any,
        prompt: str,
        mask: Any = None,
        model: str | None = None,
        fit: str = "crop",
        **options: Any,
    ) -> ImagesResponse:
        """Edit an image (or several, for gpt-image models): the mask's transparent area is remade.

        ``image`` and ``mask`` may be paths, bytes, file objects, PIL images or arrays (a boolean
        mask array is True where to regenerate). They are prepared for the model: for dall-e-2 a
        square RGBA PNG (``fit`` = "crop" or "pad") at the requested size.
        """
        from ..imaging import prepare_input_image, prepare_mask

        hooks = _split_hooks(options)
        model = model or self.model_for(EDITS, options.get("size"))
        spec = self.spec_for(model)
        sources = list(image) if isinstance(image, (list, tuple)) else [image]
        images = [prepare_input_image(src, spec, size=options.get("size"), fit=fit) for src in sources]
        prepared_mask = None if mask is None else prepare_mask(mask, images[0], source=sources[0], fit=fit)
        request = EditRequest(images=images, mask=prepared_mask, prompt=prompt, model=model, **options)
        return self.run(request, hooks)

    def create_variation(
        self, *, image: Any, model: str | None = None, fit: str = "crop", **options: Any
    ) -> ImagesResponse:
        """Make images like ``image`` (dall-e-2 semantics)."""
        from ..imaging import prepare_input_image

        hooks = _split_hooks(options)
        model = model or self.model_for(VARIATIONS, options.get("size"))
        prepared = prepare_input_image(image, self.spec_for(model), size=options.get("size"), fit=fit)
        return self.run(VariationRequest(image=prepared, model=model, **options), hooks)


def with_seed(request: ImageRequest, seed: int | None, n: int) -> ImageRequest:
    """A copy of ``request`` for ``n`` images starting at ``seed``."""
    return replace(request, n=n, seed=seed)
