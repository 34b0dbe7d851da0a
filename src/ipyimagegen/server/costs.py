"""What a call may cost, in estimated US dollars, for budgets kept in dollars.

Before a call runs, :func:`cost_bound` is the most it can cost (the highest quality where the
model chooses, the largest size where the size is ``auto``, every input image counted), so a
budget reserved with it is never overrun. When the answer is back, :func:`cost_of` is the
estimate from the usage the backend reports, and the difference goes back to the budget. Prices
come from the model catalogue (:mod:`ipyimagegen.pricing`): estimates, not invoices.
"""

from __future__ import annotations

import json

from ..api.types import ImageRequest, ImagesResponse
from ..models import largest_output, model_spec
from ..pricing import estimate_cost, estimated_usage
from .params import uploads

_QUALITY_ORDER = ("low", "medium", "standard", "high", "hd", "xhigh", "max")


def _dearest_quality(qualities: tuple[str, ...] | list[str]) -> str | None:
    ranked = [quality for quality in _QUALITY_ORDER if quality in qualities]
    return ranked[-1] if ranked else None


def cost_bound(request: ImageRequest) -> float:
    """The most ``request`` can cost, in estimated dollars (0 where the catalogue has no price)."""
    from ..imaging import image_size

    spec = model_spec(request.model)
    quality = getattr(request, "quality", None)
    if quality in (None, "auto"):
        quality = _dearest_quality(spec.qualities) or quality
    size = request.size
    if size in (None, "auto"):  # the model chooses: as many pixels as it ever makes
        side = max(1, int(largest_output(spec)[0] ** 0.5))
        size = f"{side}x{side}"
    inputs = [image_size(image.data) for _, image in uploads(request)]
    usage = estimated_usage(
        request.model, prompt=getattr(request, "prompt", "") or "", size=size, quality=quality, n=request.n,
        input_sizes=inputs,
    )  # fmt: skip
    cost = estimate_cost(request.model, usage=usage, n=request.n, size=size, quality=quality)
    return cost.usd if cost is not None else 0.0


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
