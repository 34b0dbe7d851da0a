"""A workshop token's budget as a client sees it: what is left, and a request fitted to it.

An ``ipyimagegen serve`` server with participant tokens names its usage page in a header of
``GET /models`` (:data:`USAGE_HEADER`); that page answers what the caller's own token has used
and has left, in images and estimated dollars (:class:`TokenBudget`). Before a call is sent,
:func:`fit_to_budget` lowers its ``n`` to what is left, so that a request for 4 with 1 left makes 1
instead of being refused whole. :func:`cost_bound` is the most a request can cost: what the server
reserves from a dollar budget before it runs the call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from ..errors import WorkshopBudgetError
from ..imaging import image_size
from ..models import largest_output, model_spec
from ..pricing import estimate_cost, estimated_usage
from .types import EditRequest, ImageRequest, InputImage, VariationRequest

USAGE_HEADER = "x-ipyimagegen-usage"
"""The header of ``GET /models`` that names the server's usage page (a path, such as ``/v1/usage``)."""
USAGE_SECONDS = 10.0
"""How long reading the usage page may take."""

_QUALITY_ORDER = ("low", "medium", "standard", "high", "hd", "xhigh", "max")
_CENT = 0.005
"""Less than this many dollars left is nothing left (the line shows dollars to the cent)."""

Request = TypeVar("Request", bound=ImageRequest)


@dataclass(frozen=True)
class TokenBudget:
    """What a workshop token has used and has left on the server at ``host``.

    ``images_left`` and ``usd_left`` count the whole workshop's budget too (the smaller of the two);
    None: no limit. ``budget`` and ``budget_usd`` are the token's own budgets; ``expires`` is a Unix time.
    """

    host: str
    images: int
    budget: int | None
    images_left: int | None
    spent_usd: float
    budget_usd: float | None
    usd_left: float | None
    expires: float | None = None

    @classmethod
    def from_usage(cls, answer: Any, host: str) -> TokenBudget | None:
        """The budget in a usage page's answer (None where it is not one)."""
        if not isinstance(answer, dict) or answer.get("object") != "usage":
            return None
        images, spent = _count(answer.get("images")), _count(answer.get("spent_usd"))
        if images is None or spent is None:
            return None
        return cls(
            host=host,
            images=int(images),
            budget=_whole(answer.get("budget")),
            images_left=_whole(answer.get("images_left")),
            spent_usd=spent,
            budget_usd=_count(answer.get("budget_usd")),
            usd_left=_count(answer.get("usd_left")),
            expires=_count(answer.get("expires")),
        )

    @property
    def limited(self) -> bool:
        """Whether there is anything to show: a budget in images or in dollars."""
        return self.images_left is not None or self.usd_left is not None

    def refusal(self) -> WorkshopBudgetError | None:
        """The error a call would meet now that nothing is left, no image or not a cent (None while
        something is): it names the budget that is spent, the token's own or the workshop's, and the host."""
        if self.images_left is not None and self.images_left < 1:
            if self.budget is not None and self.images >= self.budget:
                return WorkshopBudgetError("images", host=self.host, used=self.images, limit=self.budget)
            return WorkshopBudgetError("workshop_images", host=self.host)
        if self.usd_left is not None and self.usd_left < _CENT:
            return self.short_of_dollars()
        return None

    def short_of_dollars(self, asked: float | None = None) -> WorkshopBudgetError:
        """The refusal of a call that could cost ``asked`` dollars, more than are left: it names the
        token's dollar budget where that is what binds, else the workshop's."""
        if self.budget_usd is not None and self.budget_usd - self.spent_usd <= (self.usd_left or 0) + 1e-9:
            return WorkshopBudgetError(
                "usd", host=self.host, used=self.spent_usd, limit=self.budget_usd, asked=asked
            )
        return WorkshopBudgetError("workshop_usd", host=self.host)

    def line(self) -> str:
        """``7 images and $0.42 left on 127.0.0.1:8000``, with the token's expiry where it has one; what
        the refusal says once nothing is left."""
        refusal = self.refusal()
        if refusal is not None:
            return refusal.message
        parts = []
        if self.images_left is not None:
            parts.append(f"{self.images_left} image{'' if self.images_left == 1 else 's'}")
        if self.usd_left is not None:
            parts.append(f"${self.usd_left:.2f}")
        text = f"{' and '.join(parts)} left on {self.host}" if parts else f"No budget limit on {self.host}"
        if self.expires is not None:
            same_day = time.localtime(self.expires)[:3] == time.localtime()[:3]
            when = time.strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M", time.localtime(self.expires))
            text += f" (your token expires at {when})"
        return text


def fit_to_budget(request: Request, budget: TokenBudget | None) -> tuple[Request, str]:
    """``request`` with its ``n`` lowered to what ``budget`` has left, and a note that says so ("Asked 4,
    1 left: making 1. "); the request as it was, and no note, where it fits or nothing is known.

    Dollars count at :func:`cost_bound`, as the server reserves them. Raises
    :class:`~ipyimagegen.errors.WorkshopBudgetError` when not even one image fits.
    """
    if budget is None:
        return request, ""
    refusal = budget.refusal()
    if refusal is not None and refusal.kind.endswith("images"):
        raise refusal  # dollars are counted below, at what this request can cost
    asked = request.n
    fits = asked if budget.images_left is None else min(asked, budget.images_left)
    left = str(budget.images_left)
    if budget.usd_left is not None:
        affordable = fits
        while affordable > 0 and cost_bound(replace(request, n=affordable)) > budget.usd_left + 1e-9:
            affordable -= 1
        if affordable == 0:
            raise budget.short_of_dollars(asked=cost_bound(replace(request, n=1)))
        if affordable < fits:
            fits, left = affordable, f"${budget.usd_left:.2f}"
    if fits == asked:
        return request, ""
    return replace(request, n=fits), f"Asked {asked}, {left} left: making {fits}. "


def cost_bound(request: ImageRequest) -> float:
    """The most ``request`` can cost, in estimated dollars (0 where the catalogue has no price): the
    dearest quality where the model chooses, the largest size where the size is ``auto``, every input
    image counted."""
    spec = model_spec(request.model)
    quality = getattr(request, "quality", None)
    if quality in (None, "auto"):
        ranked = [name for name in _QUALITY_ORDER if name in spec.qualities]
        quality = ranked[-1] if ranked else quality
    size = request.size
    if size in (None, "auto"):  # the model chooses: as many pixels as it ever makes
        side = max(1, int(largest_output(spec)[0] ** 0.5))
        size = f"{side}x{side}"
    inputs = [image_size(image.data) for image in _inputs(request)]
    usage = estimated_usage(
        request.model, prompt=getattr(request, "prompt", "") or "", size=size, quality=quality, n=request.n,
        input_sizes=inputs,
    )  # fmt: skip
    cost = estimate_cost(request.model, usage=usage, n=request.n, size=size, quality=quality)
    return cost.usd if cost is not None else 0.0


def _inputs(request: ImageRequest) -> list[InputImage]:
    """Every image a request uploads (images, mask and markup of an edit; a variation's image)."""
    if isinstance(request, EditRequest):
        extra = [image for image in (request.mask, request.markup) if image is not None]
        return [*request.images, *extra]
    if isinstance(request, VariationRequest) and request.image is not None:
        return [request.image]
    return []


def _count(value: Any) -> float | None:
    """A number of 0 or more from JSON (None for anything else)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1e15
    return float(value) if ok else None


def _whole(value: Any) -> int | None:
    number = _count(value)
    return int(number) if number is not None else None
