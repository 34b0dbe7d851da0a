"""Proxy mode: the server forwards calls to an upstream Images API with a key that only it holds."""

from __future__ import annotations

import os

import requests
from requests.adapters import DEFAULT_POOLSIZE, HTTPAdapter

from ..api.client import OpenAIClient

POOL_SIZE = DEFAULT_POOLSIZE
"""requests' own pool size: the least kept open."""


def upstream_backend(
    url: str, *, key_env: str = "OPENAI_API_KEY", timeout: float = 300.0, connections: int = POOL_SIZE
) -> OpenAIClient:
    """A client for the upstream API at ``url``, its key read from the environment variable ``key_env``.

    The key never comes from a command-line argument (others could read it in ``ps``). Pass
    the client to :func:`~ipyimagegen.server.make_app` with ``secrets=[upstream_key(key_env)]``
    so that no answer ever repeats it. ``connections``: the calls the server sends at once (its
    concurrency): the connection pool keeps that many open, so none is opened and dropped per call.
    """
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(int(connections), POOL_SIZE))
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return OpenAIClient(base_url=url, api_key=upstream_key(key_env), timeout=(10.0, timeout), session=session)


def upstream_key(key_env: str = "OPENAI_API_KEY") -> str | None:
    """The upstream key in ``key_env`` (None when unset or blank)."""
    return os.environ.get(key_env, "").strip() or None
