"""Proxy mode: the server forwards calls to an upstream Images API with a key that only it holds."""

from __future__ import annotations

import os

from ..api.client import OpenAIClient


def upstream_backend(url: str, *, key_env: str = "OPENAI_API_KEY", timeout: float = 300.0) -> OpenAIClient:
    """A client for the upstream API at ``url``, its key read from the environment variable ``key_env``.

    The key never comes from a command-line argument (others could read it in ``ps``). Pass
    the client to :func:`~ipyimagegen.server.make_app` with ``secrets=[upstream_key(key_env)]``
    so that no answer ever repeats it.
    """
    return OpenAIClient(base_url=url, api_key=upstream_key(key_env), timeout=(10.0, timeout))


def upstream_key(key_env: str = "OPENAI_API_KEY") -> str | None:
    """The upstream key in ``key_env`` (None when unset or blank)."""
    return os.environ.get(key_env, "").strip() or None
