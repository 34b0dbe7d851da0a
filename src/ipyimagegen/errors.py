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


BUDGET_KINDS = ("images", "usd", "workshop_images", "workshop_usd", "upstream")
"""Which budget a workshop server's refusal names: the token's images or dollars, the whole workshop's,
or the quota of the account the server calls for everyone (its upstream)."""


class WorkshopBudgetError(RateLimitError):
    """429 from a workshop server (``ipyimagegen serve``): a budget of the participant's token, of the
    whole workshop, or of the server's upstream account does not allow the call.

    ``kind`` is one of :data:`BUDGET_KINDS`; ``used`` and ``limit`` are images (or estimated dollars,
    for the ``usd`` kinds), ``asked`` what the call asked for (None where unknown). ``host`` is the
    server's ``host[:port]``. Raised by the client before sending, too, when the budget it read is spent.
    """

    def __init__(
        self,
        kind: str,
        *,
        host: str | None = None,
        used: float | None = None,
        limit: float | None = None,
        asked: float | None = None,
        **kwargs: Any,
    ) -> None:
        self.kind = kind
        self.host = host
        self.used, self.limit, self.asked = used, limit, asked
        super().__init__(_budget_message(kind, host or "the workshop server", used, limit, asked), **kwargs)

    @property
    def left(self) -> float | None:
        """What the budget has left (None where its size is not known)."""
        if self.used is None or self.limit is None:
            return None
        return max(0.0, self.limit - self.used)

    @property
    def spent(self) -> bool:
        """Whether nothing is left (less than a cent, for dollars)."""
        left = self.left
        return left is None or left < (0.005 if self.kind.endswith("usd") else 1)

    @property
    def hint(self) -> str:  # type: ignore[override]
        if self.kind == "upstream":
            return "Tell the workshop host."
        if self.spent:
            return "Ask the workshop host for a bigger budget."
        if self.kind.endswith("usd"):
            return "Ask for fewer images, a lower quality or a smaller size, or ask the host for more."
        return f"Ask for {self.left:.0f} or fewer, or ask the workshop host for a bigger budget."


def _budget_message(
    kind: str, host: str, used: float | None, limit: float | None, asked: float | None
) -> str:
    """What a budget refusal says: "Your workshop budget on HOST is spent: 5 of 5 images." and its kin."""
    if kind == "upstream":
        return (
            f"The workshop server on {host} cannot make images now: its upstream account's quota is used up."
        )
    whose = "The workshop's budget" if kind.startswith("workshop") else "Your workshop budget"
    if used is None or limit is None:
        return f"{whose} on {host} is spent."
    left = max(0.0, limit - used)
    if kind.endswith("usd"):
        if left < 0.005:
            return f"{whose} on {host} is spent: about ${used:.2f} of ${limit:.2f}."
        cost = f", and this call could cost up to ${asked:.2f}" if asked is not None else ""
        return f"{whose} on {host} has about ${left:.2f} of ${limit:.2f} left{cost}."
    if left < 1:
        return f"{whose} on {host} is spent: {used:.0f} of {limit:.0f} images."
    count = f", and this call asks for {asked:.0f}" if asked is not None else ""
    return f"{whose} on {host} has {left:.0f} of {limit:.0f} images left{count}."


def _budget_refusal(error: dict[str, Any], host: str | None, **kwargs: Any) -> WorkshopBudgetError | None:
    """The :class:`WorkshopBudgetError` of a 429 whose error JSON names a workshop server's budget
    (``"budget": {"kind", "used", "limit", "asked"}``); None for any other 429."""
    budget = error.get("budget")
    if not isinstance(budget, dict) or budget.get("kind") not in BUDGET_KINDS:
        return None

    def number(name: str) -> float | None:
        value = budget.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e12:
            return None
        return float(value)

    return WorkshopBudgetError(
        str(budget["kind"]),
        host=host,
        used=number("used"),
        limit=number("limit"),
        asked=number("asked"),
        **kwargs,
    )


WORKSHOP_BUSY = "workshop_busy"
"""The code of a workshop server's 429 for a call that would wait in its queue longer than it may."""


class WorkshopBusyError(RateLimitError):
    """429 ``workshop_busy`` from a workshop server (``ipyimagegen serve``): the call would wait in its
    queue longer than the server lets it (or than the call's own timeout), so it was not queued.

    From the error's ``queue`` object: ``position`` the call would have had, ``ahead`` how many calls
    wait before it, ``wait_s`` the estimated wait in seconds, ``max_wait_s`` the longest wait the server
    allows this call; ``retry_after`` is when to come back (``Retry-After``, else the queue's
    ``retry_after_s``). Numbers the server did not give soundly are None.
    The client waits that long and tries again by itself while the call's timeout allows.
    """

    def __init__(
        self,
        message: str,
        *,
        position: int | None = None,
        ahead: int | None = None,
        wait_s: float | None = None,
        max_wait_s: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.position, self.ahead = position, ahead
        self.wait_s, self.max_wait_s = wait_s, max_wait_s

    @property
    def situation(self) -> str:
        """How busy: "The workshop is busy: about 4 min, 37 ahead of you." (from the numbers the server
        gave; its own first sentence where it gave none)."""
        parts = []
        if self.wait_s is not None:
            parts.append(f"about {_seconds(self.wait_s)}")
        if self.ahead:
            parts.append(f"{self.ahead} ahead of you")
        if parts:
            return f"The workshop is busy: {', '.join(parts)}."
        first = self.message.split(". ", 1)[0].rstrip(".")
        return f"{first}." if first else "The workshop is busy."

    @property
    def hint(self) -> str:  # type: ignore[override]
        if self.retry_at is not None:
            return "Many people are making images at once: try again then."
        return "Many people are making images at once: try again in a few minutes."


def _busy_refusal(error: dict[str, Any], retry_after: float | None, **kwargs: Any) -> WorkshopBusyError:
    """The :class:`WorkshopBusyError` of a 429 ``workshop_busy``, with the numbers of its ``queue`` object
    (``{"position", "ahead", "wait_s", "max_wait_s", "retry_after_s"}``) that are sound."""
    queue = error.get("queue")
    queue = queue if isinstance(queue, dict) else {}

    def number(name: str) -> float | None:
        value = queue.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e9:
            return None
        return float(value)

    def count(name: str) -> int | None:
        value = number(name)
        return int(value) if value is not None and value == int(value) else None

    if retry_after is None:
        retry_after = number("retry_after_s")
    message = str(error.get("message") or "").strip() or "The workshop is busy."
    return WorkshopBusyError(
        message,
        position=count("position"),
        ahead=count("ahead"),
        wait_s=number("wait_s"),
        max_wait_s=number("max_wait_s"),
        retry_after=retry_after,
        **kwargs,
    )


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
    host: str | None = None,
) -> APIStatusError:
    """The typed exception for an error response from ``host`` (``host[:port]``, named in a workshop
    server's budget refusal)."""
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
    if status_code == 429 and error.get("code") == WORKSHOP_BUSY:
        return _busy_refusal(error, retry_after, **kwargs)
    if status_code == 429:
        refusal = _budget_refusal(error, host, retry_after=retry_after, **kwargs)
        return refusal or RateLimitError(message, retry_after=retry_after, **kwargs)
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
    "WORKSHOP_BUSY",
    "WorkshopBudgetError",
    "WorkshopBusyError",
    "continued",
    "describe_error",
    "redact",
    "error_from_response",
    "parse_error_body",
]
