"""ipyimagegen: Jupyter widgets to explore text-to-image models through the OpenAI Images API.

The names below are imported lazily: ``import ipyimagegen`` stays fast and never
imports torch, ipywidgets or the server stack until one of their names is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .api import *  # noqa: F403
from .api import __all__ as _api_all
from .models import DEFAULT_MODEL, MODELS, ModelSpec, model_spec

_LAZY: dict[str, str] = {
    # clients and engines
    "OpenAIClient": "ipyimagegen.api.client",
    "AzureOpenAIClient": "ipyimagegen.api.client",
    "run_parallel": "ipyimagegen.api.parallel",
    "PreviewEngine": "ipyimagegen.engines.preview",
    "DiffusersEngine": "ipyimagegen.engines.diffusers_engine",
    "default_backend": "ipyimagegen.backends",
    "describe_backend": "ipyimagegen.backends",
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

__all__ = [*_api_all, *sorted(_LAZY), "DEFAULT_MODEL", "MODELS", "ModelSpec", "model_spec", "__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ipyimagegen' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .api.client import AzureOpenAIClient, OpenAIClient  # noqa: F401
    from .api.parallel import run_parallel  # noqa: F401
    from .backends import default_backend, describe_backend  # noqa: F401
    from .engines.diffusers_engine import DiffusersEngine  # noqa: F401
    from .engines.preview import PreviewEngine  # noqa: F401
    from .gallery import Gallery, GalleryItem, read_metadata  # noqa: F401
    from .plots import MatrixResult, contact_sheet, prompt_matrix, save_figure  # noqa: F401
    from .session import Session  # noqa: F401
    from .widgets import GenerateTab, MaskPainter, ResultGrid, Studio  # noqa: F401
    from .widgets.studio import studio  # noqa: F401
