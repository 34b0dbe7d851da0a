"""The HTTP client for the OpenAI Images API, Azure OpenAI and any server that speaks the same API.

:class:`OpenAIClient` is the Images API itself: which models, the request's URL and body, and its
answer. It sends through a :class:`~ipyimagegen.api.transport.Transport` (one
:class:`requests.Session`, a deadline on every call, retries with backoff, typed redacted errors),
asks ``GET /models`` through a :class:`~ipyimagegen.api.model_list.ModelDirectory`, and uses a
workshop server's queue and class wall through a :class:`~ipyimagegen.api.workshop.WorkshopClient`.
Every result holds the image bytes: URL results are downloaded at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from typing import Any, Literal

import requests

from ..errors import ConfigurationError, UnsupportedError
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
from .answers import read_images, read_stream
from .backend import BaseBackend, Forwarded
from .budget import TokenBudget
from .config import (
    DEFAULT_TIMEOUT,
    AzureSettings,
    OpenAISettings,
    Secret,
    Timeout,
    TokenProvider,
    as_secret,
    as_timeout,
    host_of,
    safe_url,
)
from .deadline import Deadline
from .model_list import ModelDirectory
from .retry import RetryPolicy
from .transport import Reply, Transport, is_event_stream
from .types import CallHooks, EditRequest, GenerateRequest, ImageRequest, ImagesResponse, VariationRequest
from .workshop import WorkshopClient

__all__ = ["AzureOpenAIClient", "OpenAIClient"]


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


def request_body(request: ImageRequest, parameters: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The endpoint and the body (JSON, or multipart fields and files) of a request with ``parameters``."""
    if isinstance(request, GenerateRequest):
        return GENERATIONS, {"json": parameters}
    if isinstance(request, EditRequest):
        field = "image" if len(request.images) == 1 else "image[]"
        files = [(field, image.as_file_tuple()) for image in request.images]
        for name, extra in (("mask", request.mask), ("markup", request.markup)):
            if extra is not None:
                files.append((name, extra.as_file_tuple()))
        endpoint = EDITS
    else:
        assert request.image is not None  # validation makes sure
        files = [("image", request.image.as_file_tuple())]
        endpoint = VARIATIONS
    fields = [pair for name, value in parameters.items() for pair in form_fields(name, value)]
    return endpoint, {"data": fields, "files": files}


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

    Size: sending is :attr:`transport`'s, ``GET /models`` the directory's, and a workshop server's
    queue and wall :attr:`workshop`'s; what is left here is the whole :class:`Backend` over HTTP,
    one short method per call of the protocol, which is why it has more methods than most classes.
    """

    offline = False
    lists_models = True
    """Whether the server answers ``GET /models`` with the models it serves."""

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
        self.transport = Transport(
            credentials=self._auth_headers,
            secrets=[secret.reveal() for secret in (settings.api_key, *_secrets) if secret],
            timeout=as_timeout(timeout),
            retry=RetryPolicy(max_retries=max_retries, sleep=sleep),
            session=session,
            default_headers=default_headers,
        )
        self._directory = ModelDirectory(self.transport, self.base_url if self.lists_models else None)
        self.workshop = WorkshopClient(self.transport, self._directory)
        self._follow_shutdowns = settings.is_public_api if follow_shutdowns is None else follow_shutdowns
        self.default_model = default_model or recommended_model("openai")
        host = host_of(self.base_url)
        self.name = f"OpenAI ({host})" if settings.is_public_api else f"Images API at {host}"

    @property
    def session(self) -> requests.Session:
        """The HTTP session calls go over."""
        return self.transport.session

    @property
    def retry(self) -> RetryPolicy:
        """What is tried again, how often, and how long is waited between tries."""
        return self.transport.retry

    @property
    def timeout(self) -> Timeout:
        """``(connect, call)`` seconds."""
        return self.transport.timeout

    # -- what subclasses change --------------------------------------------------------------

    @property
    def sends_seed(self) -> bool:
        """Compatible and local servers honour ``seed``; OpenAI's own API rejects it."""
        return not self._settings.is_public_api

    @property
    def enforces_shutdowns(self) -> bool:  # type: ignore[override]
        """OpenAI's own models shut down on the catalogue's dates; a compatible server decides for itself."""
        return self._follow_shutdowns

    def endpoint_url(self, endpoint: str) -> str:
        """The URL of ``generations``, ``edits`` or ``variations``."""
        return f"{self.base_url}/images/{endpoint}"

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

    # -- which models, and until when -------------------------------------------------------

    def listed_models(self) -> dict[str, date | None] | None:
        """``GET /models``, asked once: model ids and their ``shutdown_date`` (None if it did not answer)."""
        listing = self._directory.listing()
        return listing.shutdowns if listing is not None else None

    def refresh_models(self) -> None:
        """Ask ``GET /models`` again on the next look-up (models come and go)."""
        self._directory.refresh()

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
        listing = self._directory.known()  # only what was asked already: a call never waits for the list
        if listing is not None and listing.shutdowns.get(model) is not None:
            return listing.shutdowns[model]
        return super().shutdown_date(model)

    def supports_streaming(self, model: str) -> bool:
        """GPT image models can stream partial images while they work."""
        return self.spec_for(model).streams

    # -- one request in, one response out ---------------------------------------------------

    def _generate(self, request: GenerateRequest, hooks: CallHooks) -> ImagesResponse:
        return self._call(request, hooks, self._streams(request, hooks))

    def _edit(self, request: EditRequest, hooks: CallHooks) -> ImagesResponse:
        return self._call(request, hooks, self._streams(request, hooks))

    def _create_variation(self, request: VariationRequest, hooks: CallHooks) -> ImagesResponse:
        return self._call(request, hooks, False)

    def _streams(self, request: GenerateRequest | EditRequest, hooks: CallHooks) -> bool:
        return (
            bool(request.partial_images)
            and hooks.on_partial is not None
            and self.supports_streaming(request.model)
        )

    def _call(self, request: ImageRequest, hooks: CallHooks, streaming: bool) -> ImagesResponse:
        deadline = self.transport.deadline(hooks)
        with self.workshop.watch_queue(hooks):  # a workshop server says where the call waits
            reply = self._post(request, hooks, deadline, streaming)
        if streaming and is_event_stream(reply.response):
            return read_stream(self.transport, reply, hooks, deadline)
        return read_images(self.transport, reply, hooks, deadline)

    def _post(
        self,
        request: ImageRequest,
        hooks: CallHooks,
        deadline: Deadline,
        streaming: bool,
        *,
        retry_rate_limits: bool = True,
    ) -> Reply:
        endpoint, body = request_body(request, self._parameters(request, streaming))
        return self.transport.send(
            "POST",
            self.endpoint_url(endpoint),
            hooks,
            deadline,
            stream=streaming,
            retry_rate_limits=retry_rate_limits,
            **body,
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
        deadline = self.transport.deadline(hooks)
        reply = self._post(request, hooks, deadline, streaming, retry_rate_limits=False)
        if reply.body is None:
            return Forwarded(reply.content_type, chunks=self.transport.relay(reply, deadline))
        return Forwarded(reply.content_type, body=reply.body)

    # -- a workshop server's class wall and budget ---------------------------------------------

    @property
    def shares_pictures(self) -> bool:
        """Whether the server's ``GET /models`` named a class wall (asked when the models are listed)."""
        return self.workshop.wall_url is not None

    def share_picture(self, image: bytes, prompt: str = "") -> None:
        """Put a picture, with its prompt, on the workshop server's class wall (made smaller first)."""
        if not self.workshop.share_picture(image, prompt):
            super().share_picture(image, prompt)  # refused: this server names no wall

    def budget_left(self) -> TokenBudget | None:
        """What the participant token has left on a workshop server that names its usage page (None on
        any other server, which is never asked)."""
        return self.workshop.budget()

    # -- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the HTTP session (unless it was passed in: then its owner closes it)."""
        self.transport.close()

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

    lists_models = False  # a deployment's model is named by its owner; there is no list to ask

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
        self.transport.add_secret(token)
        return {"Authorization": f"Bearer {token}"}

    def _describe_settings(self) -> str:
        credential = "api_key set" if self._azure.api_key else "azure_ad_token set"
        version = f", api_version={self._azure.api_version!r}" if self.route == "deployments" else ""
        return (
            f"endpoint={safe_url(self._azure.endpoint)!r}, deployment={self._azure.deployment!r}, "
            f"route={self.route!r}{version}, {credential}"
        )
