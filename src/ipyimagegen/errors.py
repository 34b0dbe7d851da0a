"""One exception tree for everything that can go wrong making images.

``APIStatusError`` subclasses are made from the API's own error JSON
(``{"error": {"message", "type", "param", "code"}}``) by :func:`error_from_response`.
Every error has a ``hint``: one sentence on what the user can do about it, which the
widgets show beside the message. No error ever carries a secret.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any


class ImagesError(Exception):
    """Base class of every ipyimagegen error."""

    hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint


class ConfigurationError(ImagesError):
    """The backend is not configured (no key, no endpoint, a bad option)."""


class ValidationError(ImagesError, ValueError):
    """A request the model cannot accept; raised before anything is sent."""

    def __init__(self, message: str, *, param: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.param = param


class ModelShutDownError(ValidationError):
    """The model is past its shutdown date on this service; ``replacements`` name what to use."""

    def __init__(self, model: str, shutdown: str, replacements: tuple[str, ...] = ()) -> None:
        instead = " or ".join(replacements) if replacements else "a current model"
        super().__init__(
            f"{model} was shut down on {shutdown}: use {instead} instead.",
            param="model",
            hint=f"Choose {instead} in the model list, or pass model={replacements[0]!r}."
            if replacements
            else "Choose another model in the model list.",
        )
        self.model = model
        self.shutdown = shutdown
        self.replacements = replacements


class UnnamedModelRetiredError(ModelShutDownError):
    """A call that named no model means a model this backend does not serve (DALL-E 2, shut down on OpenAI).

    ``reason`` says why the call means that model; ``instead`` what to send (a live model, a size).
    """

    def __init__(
        self,
        model: str,
        shutdown: str | None,
        replacements: tuple[str, ...],
        *,
        reason: str,
        instead: str,
        param: str,
    ) -> None:
        super().__init__(model, shutdown or "", replacements)
        gone = f"was shut down here on {shutdown}" if shutdown else "is not served here"
        self.message = f"{reason[:1].upper()}{reason[1:]}, and {model} {gone}: {instead}."
        self.args = (self.message,)
        self.param = param
        self.hint = f"Name a live model: model={replacements[0]!r}." if replacements else self.hint


class ImageInputError(ImagesError, ValueError):
    """An input image or mask that cannot be used (not an image, corrupt, too large...).

    ``param`` names the input (``image``, ``mask``, ``markup``) where it is known.
    """

    hint = "Use a PNG, JPEG or WebP image file."

    def __init__(self, message: str, *, param: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.param = param


class UnsupportedError(ImagesError):
    """The backend or model does not offer this operation."""


class EngineUnavailableError(ImagesError):
    """The engine process serving a call stopped (a Ray Serve replica died); another is starting.
    ``retry_after``: seconds to wait before trying again."""

    def __init__(self, message: str, *, retry_after: float = 5.0) -> None:
        super().__init__(message, hint="Try again in a few seconds.")
        self.retry_after = retry_after


class CancelledError(ImagesError):
    """The caller cancelled the request. ``kept``: the images finished before the cancel (an
    :class:`~ipyimagegen.api.types.ImagesResponse`, for a parallel call), or None."""

    def __init__(self, message: str = "Cancelled.", kept: Any = None) -> None:
        super().__init__(message)
        self.kept = kept


class APIError(ImagesError):
    """An error reported by (or while reaching) an Images API server.

    ``retry_at`` is when the server asked to be tried again, where that was later than the
    call would wait.
    """

    retry_at: datetime | None = None

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        param: str | None = None,
        type: str | None = None,
        request_id: str | None = None,
        body: Any = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status_code = status_code
        self.code = code
        self.param = param
        self.type = type
        self.request_id = request_id
        self.body = body

    def __str__(self) -> str:
        parts = [self.message]
        details = []
        if self.status_code is not None:
            details.append(f"HTTP {self.status_code}")
        if self.code:
            details.append(f"code={self.code}")
        if self.param:
            details.append(f"param={self.param}")
        if self.request_id:
            details.append(f"request_id={self.request_id}")
        if details:
            parts.append(f"({', '.join(details)})")
        return " ".join(parts)


class APIConnectionError(APIError):
    """The server could not be reached, or the connection broke."""

    hint = "Check the network and the base URL, then try again."


class APITimeoutError(APIConnectionError):
    """The server did not answer in time."""

    hint = "The server is slow or busy: try again, or raise the timeout."


class APIStatusError(APIError):
    """The server answered with an error status."""


class BadRequestError(APIStatusError):
    hint = "Check the parameters named in the message."


MODERATION_BLOCKED = "moderation_blocked"
"""The code of a refusal by the safety system for GPT image models."""
CONTENT_POLICY_VIOLATION = "content_policy_violation"
"""The code of a refusal by the safety system for DALL-E models."""


class ContentPolicyError(BadRequestError):
    """A safety system refused the request: OpenAI's (``moderation_blocked`` for GPT image models,
    ``content_policy_violation`` for DALL-E), Azure's content filter, or a local engine's word list
    or safety checker. ``param`` names what was flagged (``prompt`` or ``image``) where it is known."""

    hint = (
        "The request was refused by the content policy. Rephrase the prompt "
        "(or use another image) and try again."
    )

    def __init__(self, message: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        if kwargs.get("hint") is None and self.param in FLAGGED_PART_HINTS:
            self.hint = FLAGGED_PART_HINTS[self.param]


FLAGGED_PART_HINTS = {
    "prompt": "Rephrase the prompt and try again.",
    "image": "Use another image and try again.",
}


class AuthenticationError(APIStatusError):
    hint = (
        "The API key is missing or wrong. Set OPENAI_API_KEY (or pass api_key=) "
        "with a valid key, or use a participant token for a workshop server."
    )


class PermissionDeniedError(APIStatusError):
    hint = "The key is valid but may not use this model or project (organization verification?)."


class NotFoundError(APIStatusError):
    hint = "Check the model (or Azure deployment) name and the base URL."


class ResultExpiredError(APIStatusError):
    """A result's download link has expired (or was never there)."""

    hint = "Generate the image again, or ask for base64 results (response_format='b64_json'), which never expire."


class ConflictError(APIStatusError):
    hint = "Try again in a moment."


class RateLimitError(APIStatusError):
    """429: too many requests, or the quota or budget is spent."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after

    @property
    def hint(self) -> str:  # type: ignore[override]
        if self.code == "insufficient_quota":
            return "The account's quota is used up: check billing, or use another key."
        if self.retry_after:
            return f"Too many requests: try again in {_seconds(self.retry_after)}."
        return "Too many requests: wait a little and try again."


class InternalServerError(APIStatusError):
    hint = "The server had a problem: try again in a moment."


CONTENT_POLICY_CODES = frozenset(
    {CONTENT_POLICY_VIOLATION, MODERATION_BLOCKED, "content_filter", "contentFilter"}
)

_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: BadRequestError,
    429: RateLimitError,
}


def _seconds(value: float) -> str:
    if value < 1:
        return "a second"
    if value < 90:
        return f"{value:.0f} s"
    return f"{value / 60:.0f} min"


def parse_error_body(raw: bytes | str | None) -> tuple[dict[str, Any], Any]:
    """The ``error`` object of an error body (empty when the body is not the API's JSON), and the body."""
    if raw is None:
        return {}, None
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    try:
        body = json.loads(text)
    except ValueError:
        return {}, text
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"], body
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return {"message": body["error"]}, body
    return {}, body


def _is_content_policy(error: dict[str, Any]) -> bool:
    code = str(error.get("code") or "")
    if code in CONTENT_POLICY_CODES:
        return True
    # Azure OpenAI reports its content filter in innererror (inner_error on the images routes).
    inner = error.get("innererror") or error.get("inner_error")
    return isinstance(inner, dict) and str(inner.get("code") or "") in {
        "ResponsibleAIPolicyViolation",
        "content_filter",
        "contentFilter",
    }


def error_from_response(
    status_code: int,
    raw_body: bytes | str | None,
    *,
    request_id: str | None = None,
    retry_after: float | None = None,
) -> APIStatusError:
    """The typed exception for an error response."""
    error, body = parse_error_body(raw_body)
    message = str(error.get("message") or "").strip()
    if not message:
        snippet = body.strip()[:200] if isinstance(body, str) else ""
        message = f"The server answered HTTP {status_code}" + (f": {snippet}" if snippet else ".")
    kwargs: dict[str, Any] = dict(
        status_code=status_code,
        code=str(error["code"]) if error.get("code") is not None else None,
        param=error.get("param"),
        type=error.get("type"),
        request_id=request_id,
        body=body,
    )
    if status_code == 400 and _is_content_policy(error):
        return ContentPolicyError(message, **kwargs)
    if status_code == 429:
        return RateLimitError(message, retry_after=retry_after, **kwargs)
    cls = _STATUS_CLASSES.get(status_code)
    if cls is None:
        cls = InternalServerError if status_code >= 500 else APIStatusError
    return cls(message, **kwargs)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``***`` (the client's key, a workshop server's upstream key)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def continued(message: str) -> str:
    """``message`` read on after a colon: "The file is ..." becomes "the file is ..." ("PNG ..." stays)."""
    word = message.split(" ", 1)[0]
    return message[0].lower() + message[1:] if word == "A" or word[1:].islower() else message


def describe_error(exc: BaseException) -> str:
    """One readable paragraph for a person: what happened, then what to do."""
    if isinstance(exc, ImagesError):
        text = str(exc)
        hint = exc.hint
        return f"{text} {hint}".strip() if hint and hint not in text else text
    return f"{type(exc).__name__}: {exc}"


__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "CONTENT_POLICY_CODES",
    "CONTENT_POLICY_VIOLATION",
    "CancelledError",
    "ConfigurationError",
    "ConflictError",
    "ContentPolicyError",
    "EngineUnavailableError",
    "ImageInputError",
    "ImagesError",
    "InternalServerError",
    "MODERATION_BLOCKED",
    "ModelShutDownError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResultExpiredError",
    "UnnamedModelRetiredError",
    "UnsupportedError",
    "ValidationError",
    "continued",
    "describe_error",
    "redact",
    "error_from_response",
    "parse_error_body",
]
