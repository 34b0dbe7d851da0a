"""Where the HTTP client gets its settings: arguments first, then the official environment variables.

Secrets stay in the resolved settings objects, whose reprs never show them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from ..errors import ConfigurationError

OPENAI_BASE_URL = "https://api.openai.com/v1"
PUBLIC_API_HOST = "api.openai.com"
AZURE_API_VERSION = "2025-04-01-preview"

CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 600.0  # a high-quality gpt-image call can take minutes
DEFAULT_TIMEOUT = (CONNECT_TIMEOUT_S, READ_TIMEOUT_S)

Timeout = tuple[float, float]
TokenProvider = Callable[[], str]


class Secret:
    """A credential whose repr and str never show it: a traceback that prints locals, a log line or a
    saved notebook sees ``Secret('***')``. :meth:`reveal` gives it, when a request is sent."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def as_secret(value: str | Secret | None) -> Secret | None:
    """``value`` as a :class:`Secret` (None when it is unset or blank)."""
    if isinstance(value, Secret):
        return value if value else None
    text = (value or "").strip()
    return Secret(text) if text else None


def env(name: str) -> str | None:
    """An environment variable, or None when it is unset or blank."""
    value = os.environ.get(name, "").strip()
    return value or None


def as_timeout(value: float | tuple[float, float] | None) -> Timeout:
    """``(connect, read)`` seconds from one number (both), a pair, or None (the defaults)."""
    if value is None:
        return DEFAULT_TIMEOUT
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = positive_seconds(value)
        return (seconds, seconds)
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        connect, read = value
        if connect <= 0 or read <= 0:
            raise ConfigurationError(f"timeout seconds must be positive, got {value!r}.")
        return (float(connect), float(read))
    raise ConfigurationError(
        f"timeout must be seconds (a number) or a (connect, read) pair of seconds, got {value!r}."
    )


def positive_seconds(value: object) -> float:
    """``value`` as seconds, refused unless it is a number above zero (a ``timeout``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigurationError(f"timeout must be a positive number of seconds, got {value!r}.")
    return float(value)


def call_seconds(default: Timeout, override: float | None) -> float:
    """Seconds one whole call may take: a per-call ``timeout``, else the client's read timeout."""
    return default[1] if override is None else positive_seconds(override)


def safe_url(url: str) -> str:
    """``url`` without user info, query or fragment (where secrets could hide), for display and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def host_of(url: str) -> str:
    """``host[:port]`` of a URL."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{host}:{parts.port}" if parts.port is not None else host


def _checked_url(url: str, what: str) -> str:
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"{what} must be an http:// or https:// URL such as {OPENAI_BASE_URL!r}, got {safe_url(url)!r}."
        )
    return url


@dataclass(frozen=True)
class OpenAISettings:
    """The settings of a client for the OpenAI API or a server that speaks it."""

    base_url: str
    api_key: Secret | None = field(default=None, repr=False)
    organization: str | None = None
    project: str | None = None

    @property
    def is_public_api(self) -> bool:
        """True for OpenAI's own API (which rejects parameters that compatible servers honour)."""
        return urlsplit(self.base_url).hostname == PUBLIC_API_HOST

    @classmethod
    def resolve(
        cls,
        *,
        api_key: str | Secret | None = None,
        base_url: str | None = None,
        organization: str | None = None,
        project: str | None = None,
    ) -> OpenAISettings:
        """Arguments, else ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``OPENAI_ORG_ID``, ``OPENAI_PROJECT_ID``."""
        api_key = as_secret(api_key) or as_secret(env("OPENAI_API_KEY"))
        url = _checked_url(base_url or env("OPENAI_BASE_URL") or OPENAI_BASE_URL, "base_url")
        settings = cls(
            base_url=url,
            api_key=api_key,
            organization=organization or env("OPENAI_ORG_ID"),
            project=project or env("OPENAI_PROJECT_ID"),
        )
        if settings.api_key is None and settings.is_public_api:
            raise ConfigurationError(
                "No OpenAI API key: set the OPENAI_API_KEY environment variable or pass api_key=..., "
                "or use ipyimagegen.default_backend() for the offline preview engine."
            )
        return settings


@dataclass(frozen=True)
class AzureSettings:
    """The settings of a client for one Azure OpenAI image deployment."""

    endpoint: str
    deployment: str
    api_version: str
    api_key: Secret | None = field(default=None, repr=False)
    azure_ad_token: Secret | TokenProvider | None = field(default=None, repr=False)
    api_version_given: bool = False  # an API version was asked for (argument or OPENAI_API_VERSION)

    @classmethod
    def resolve(
        cls,
        *,
        endpoint: str | None = None,
        deployment: str | None = None,
        api_version: str | None = None,
        api_key: str | Secret | None = None,
        azure_ad_token: str | Secret | TokenProvider | None = None,
    ) -> AzureSettings:
        """Arguments, else ``AZURE_OPENAI_ENDPOINT``, ``AZURE_OPENAI_DEPLOYMENT``, ``OPENAI_API_VERSION``,
        ``AZURE_OPENAI_API_KEY`` and ``AZURE_OPENAI_AD_TOKEN``."""
        endpoint = endpoint or env("AZURE_OPENAI_ENDPOINT")
        if not endpoint:
            raise ConfigurationError(
                "No Azure OpenAI endpoint: set AZURE_OPENAI_ENDPOINT or pass "
                "endpoint='https://<resource>.openai.azure.com'."
            )
        deployment = (deployment or env("AZURE_OPENAI_DEPLOYMENT") or "").strip()
        if not deployment:
            raise ConfigurationError(
                "No Azure OpenAI deployment: set AZURE_OPENAI_DEPLOYMENT or pass deployment= "
                "(the name of your image model deployment)."
            )
        key = as_secret(api_key) or as_secret(env("AZURE_OPENAI_API_KEY"))
        token: Secret | TokenProvider | None
        if callable(azure_ad_token) and not isinstance(azure_ad_token, Secret):
            token = azure_ad_token
        else:
            token = as_secret(azure_ad_token) or as_secret(env("AZURE_OPENAI_AD_TOKEN"))
        if key is None and token is None:
            raise ConfigurationError(
                "No Azure OpenAI credentials: set AZURE_OPENAI_API_KEY or pass api_key=..., "
                "or set AZURE_OPENAI_AD_TOKEN or pass azure_ad_token= (a token or a function that returns one)."
            )
        version = api_version or env("OPENAI_API_VERSION")
        return cls(
            endpoint=_checked_url(endpoint, "endpoint"),
            deployment=deployment,
            api_version=version or AZURE_API_VERSION,
            api_key=key,
            azure_ad_token=token,
            api_version_given=version is not None,
        )

    def ad_token(self) -> str | None:
        """The current Microsoft Entra ID token (a provider is asked on every call)."""
        token = self.azure_ad_token
        if isinstance(token, Secret):
            return token.reveal()
        return token() if callable(token) else None
