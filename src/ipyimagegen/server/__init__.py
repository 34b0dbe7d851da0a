"""An HTTP server that speaks the OpenAI Images API, for workshops and local models (``ipyimagegen serve``).

:func:`make_app` puts any Backend (the preview engine, a local diffusers model, or an upstream
Images API in proxy mode) behind the API's routes, as a :class:`ServerConfig` says; :class:`ServerThread` runs it in the
background; :class:`TokenStore` holds the participant tokens. The app and the runner need the
``server`` extra (``pip install "ipyimagegen[server]"``); the token store does not.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .config import ServerConfig
from .tokens import Rate, RateLimiter, TokenInfo, TokenStore, default_state_dir

if TYPE_CHECKING:
    from .app import make_app
    from .runner import ServerThread

__all__ = [
    "Rate",
    "RateLimiter",
    "ServerConfig",
    "ServerThread",
    "TokenInfo",
    "TokenStore",
    "default_state_dir",
    "make_app",
]

_EXTRA_MODULES = {"starlette", "uvicorn", "multipart", "python_multipart", "anyio"}
_NEEDS_EXTRA = {"make_app": "app", "ServerThread": "runner"}


def __getattr__(name: str) -> Any:
    module = _NEEDS_EXTRA.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        return getattr(import_module(f"{__name__}.{module}"), name)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in _EXTRA_MODULES:
            raise
        raise ImportError(
            f'ipyimagegen\'s server needs {exc.name}: install it with pip install "ipyimagegen[server]".'
        ) from exc
