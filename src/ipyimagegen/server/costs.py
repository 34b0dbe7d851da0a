"""What a call may cost, in estimated US dollars, for budgets kept in dollars.

Before a call runs, :func:`cost_bound` is the most it can cost (the highest quality where the
model chooses, the largest size where the size is ``auto``, every input image counted), so a
budget reserved with it is never overrun; it lives in :mod:`ipyimagegen.api.budget`, where a
client fits its requests to what a token has left. When the answer is back, :func:`cost_of` is the
estimate from the usage the backend reports, and the difference goes back to the budget. Prices
come from the model catalogue (:mod:`ipyimagegen.pricing`): estimates, not invoices.
"""

from __future__ import annotations

import json

from ..api.budget import cost_bound
from ..api.types import ImageRequest, ImagesResponse
from ..pricing import estimate_cost

__all__ = ["cost_bound", "cost_of", "forwarded_cost"]


def cost_of(request: ImageRequest, response: ImagesResponse) -> float:
    """The estimated cost of an answered call, from the usage it reports (0 where there is no price)."""
    if response.cost is not None:
        return response.cost.usd
    cost = estimate_cost(
        request.model,
        usage=response.usage,
        n=len(response.data),
        size=request.size,
        quality=getattr(request, "quality", None),
    )
    return cost.usd if cost is not None else 0.0


def forwarded_cost(request: ImageRequest, body: bytes) -> float | None:
    """The estimated cost of an upstream's answer passed on as it came: from its ``usage`` (GPT image
    models) or its images (DALL-E); None when the body is not the API's JSON."""
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    if not isinstance(answer, dict) or not isinstance(answer.get("data"), list):
        return None
    usage = answer.get("usage") if isinstance(answer.get("usage"), dict) else None
    cost = estimate_cost(
        request.model,
        usage=usage,
        n=len(answer["data"]),
        size=request.size,
        quality=getattr(request, "quality", None),
    )
    return cost.usd if cost is not None else 0.0
