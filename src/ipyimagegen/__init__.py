"""ipyimagegen: Jupyter widgets to explore text-to-image models through the OpenAI Images API.

``__all__`` is the user's API: the studio and the widgets it is made of, the backends, the requests
and results a script sends and gets, the errors, the gallery and the plots. The rest lives in the
submodules (``ipyimagegen.api``, ``ipyimagegen.session``, ...).

The names below are imported lazily: ``import ipyimagegen`` stays fast and never
imports torch, ipywidgets or the server stack until one of their names is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .api.backend import Backend
from .api.types import (
    EditRequest,
    GeneratedImage,
    GenerateRequest,
    ImagesResponse,
    InputImage,
    VariationRequest,
)
from .errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    CancelledError,
    ConfigurationError,
    ConflictError,
    ContentPolicyError,
    ImageInputError,
    ImagesError,
    InternalServerError,
    ModelShutDownError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResultExpiredError,
    UnnamedModelRetiredError,
    UnsupportedError,
    ValidationError,
    describe_error,
)
from .models import DEFAULT_MODEL, MODELS, ModelSpec, model_spec

_LAZY: dict[str, str] = {
    # clients and engines
    "OpenAIClient": "ipyimagegen.api.client",
    "AzureOpenAIClient": "ipyimagegen.api.client",
    "run_parallel": "ipyimagegen.api.parallel",
    "PreviewEngine": "ipyimagegen.engines.preview",
    "DiffusersEngine": "ipyimagegen.engines.diffusers_engine",
    "default_backend": "ipyimagegen.backend_choice",
    "describe_backend": "ipyimagegen.backend_choice",
    # gallery and sheets
    "Gallery": "ipyimagegen.gallery",
    "GalleryItem": "ipyimagegen.gallery",
    "read_metadata": "ipyimagegen.gallery",
    "contact_sheet": "ipyimagegen.plots",
    "prompt_matrix": "ipyimagegen.plots",
    "save_figure": "ipyimagegen.plots",
    "MatrixResult": "ipyimagegen.plots",
    # jobs without widgets
    "Session": "ipyimagegen.session",
    # widgets
    "Studio": "ipyimagegen.widgets",
    "studio": "ipyimagegen.widgets",
    "MaskPainter": "ipyimagegen.widgets",
    "EditTab": "ipyimagegen.widgets",
    "VariationsTab": "ipyimagegen.widgets",
    "GenerateTab": "ipyimagegen.widgets",
    "ResultGrid": "ipyimagegen.widgets",
    "HistoryBrowser": "ipyimagegen.widgets",
}

__all__ = [
    # errors
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "CancelledError",
    "ConfigurationError",
    "ConflictError",
    "ContentPolicyError",
    "ImageInputError",
    "ImagesError",
    "InternalServerError",
    "ModelShutDownError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResultExpiredError",
    "UnnamedModelRetiredError",
    "UnsupportedError",
    "ValidationError",
    "describe_error",
    # what a backend is, what a script sends it and gets back
    "Backend",
    "GenerateRequest",
    "EditRequest",
    "VariationRequest",
    "InputImage",
    "ImagesResponse",
    "GeneratedImage",
    # the models as data
    "DEFAULT_MODEL",
    "MODELS",
    "ModelSpec",
    "model_spec",
    "__version__",
    # imported when first used (_LAZY says from where)
    "OpenAIClient",
    "AzureOpenAIClient",
    "run_parallel",
    "PreviewEngine",
    "DiffusersEngine",
    "default_backend",
    "describe_backend",
    "Gallery",
    "GalleryItem",
    "read_metadata",
    "contact_sheet",
    "prompt_matrix",
    "save_figure",
    "MatrixResult",
    "Session",
    "Studio",
    "studio",
    "MaskPainter",
    "EditTab",
    "VariationsTab",
    "GenerateTab",
    "ResultGrid",
    "HistoryBrowser",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ipyimagegen' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only: exactly the names of _LAZY
    from .api.client import AzureOpenAIClient, OpenAIClient  # noqa: F401
    from .api.parallel import run_parallel  # noqa: F401
    from .backend_choice import default_backend, describe_backend  # noqa: F401
    from .engines.diffusers_engine import DiffusersEngine  # noqa: F401
    from .engines.preview import PreviewEngine  # noqa: F401
    from .gallery import Gallery, GalleryItem, read_metadata  # noqa: F401
    from .plots import MatrixResult, contact_sheet, prompt_matrix, save_figure  # noqa: F401
    from .session import Session  # noqa: F401
    from .widgets import (  # noqa: F401
        EditTab,
        GenerateTab,
        HistoryBrowser,
        MaskPainter,
        ResultGrid,
        Studio,
        VariationsTab,
    )
    from .widgets.studio import studio  # noqa: F401
