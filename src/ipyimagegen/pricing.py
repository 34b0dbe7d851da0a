"""Usage and estimated cost of image calls, from the catalogue's prices.

GPT image models are billed by tokens (text and image input, image output), reported in
each answer's ``usage``; DALL-E models by image, by quality and size. Every figure here is
an estimate from the prices the catalogue holds (with the date they were read): the
provider's invoice is the truth.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .models import ModelSpec, model_spec, parse_size

# Output image tokens at about one megapixel, by quality, as OpenAI's image guide tables them;
# the engines that make their own images (preview, local) report usage on this scale.
_OUTPUT_TOKENS_PER_MEGAPIXEL = {"low": 272, "medium": 1056, "high": 4160, "xhigh": 8320, "max": 16640}
_INPUT_IMAGE_TOKENS_PER_MEGAPIXEL = 1100
_CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class CostEstimate:
    """An estimated price in US dollars, and what it rests on."""

    usd: float
    model: str
    basis: str  # "tokens" or "per image"
    prices_read: str
    billed: bool = True  # False: an offline engine made it (free); usd is what the model would cost

    def label(self) -> str:
        """``≈ $0.021`` (or ``free (≈ $0.021 on OpenAI)`` for an offline engine)."""
        amount = format_usd(self.usd)
        return f"≈ {amount}" if self.billed else f"free (≈ {amount} on OpenAI)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "usd": round(self.usd, 6),
            "model": self.model,
            "basis": self.basis,
            "prices_read": self.prices_read,
            "billed": self.billed,
            "estimate": True,
        }


def format_usd(usd: float) -> str:
    """Dollars with enough digits to be useful for small amounts: ``$0.0213``, ``$1.25``."""
    if usd == 0:
        return "$0"
    if usd < 0.01:
        return f"${usd:.4f}"
    if usd < 1:
        return f"${usd:.3f}"
    return f"${usd:,.2f}"


def _details(usage: dict[str, Any], key: str) -> dict[str, Any]:
    value = usage.get(key)
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def token_cost(spec: ModelSpec, usage: dict[str, Any]) -> float | None:
    """Dollars for a usage record at ``spec``'s token prices (None when it has none)."""
    prices = spec.prices.per_million_tokens if spec.prices else {}
    if not prices:
        return None
    inputs = _details(usage, "input_tokens_details")
    total_in = _number(usage.get("input_tokens"))
    image_in = _number(inputs.get("image_tokens"))
    text_in = _number(inputs.get("text_tokens")) if inputs else total_in
    output = _number(usage.get("output_tokens"))
    return (
        text_in * prices.get("text_input", 0.0)
        + image_in * prices.get("image_input", 0.0)
        + output * prices.get("image_output", 0.0)
    ) / 1_000_000


def image_price(spec: ModelSpec, size: str | None, quality: str | None) -> float | None:
    """Dollars per image at ``spec``'s per-image prices (None when it has none)."""
    prices = spec.prices.per_image if spec.prices else {}
    if not prices:
        return None
    size = size if size and size != "auto" else spec.default_size
    quality = quality or spec.default_quality
    for key in (f"{quality} {size}", size):
        if key in prices:
            return prices[key]
    return None


def estimate_cost(
    model: str,
    *,
    usage: dict[str, Any] | None = None,
    n: int = 1,
    size: str | None = None,
    quality: str | None = None,
    billed: bool = True,
) -> CostEstimate | None:
    """The estimated cost of a call, or None when the catalogue has no price for ``model``."""
    spec = model_spec(model)  # a snapshot carries its model's prices
    if spec.prices is None:
        return None
    read_on = spec.prices.read_on
    if usage:
        cost = token_cost(spec, usage)
        if cost is not None:
            return CostEstimate(cost, model, "tokens", read_on, billed)
    each = image_price(spec, size, quality)
    if each is not None:
        return CostEstimate(each * n, model, "per image", read_on, billed)
    return None


def _megapixels(size: str | None, fallback: tuple[int, int]) -> float:
    try:
        width, height = parse_size(size or "")
    except ValueError:
        width, height = fallback
    return width * height / 1_000_000


def estimated_usage(
    model: str,
    *,
    prompt: str,
    size: str | None,
    quality: str | None,
    n: int,
    input_sizes: Sequence[tuple[int, int]] = (),
    made_size: tuple[int, int] = (1024, 1024),
) -> dict[str, Any] | None:
    """A usage record in the API's shape for an engine that makes its own images (GPT image models only)."""
    spec = model_spec(model)
    if not spec.is_gpt_image:
        return None
    level = quality if quality in _OUTPUT_TOKENS_PER_MEGAPIXEL else "medium"
    text_tokens = max(1, math.ceil(len(prompt) / _CHARS_PER_TOKEN))
    image_tokens = sum(
        math.ceil(w * h / 1_000_000 * _INPUT_IMAGE_TOKENS_PER_MEGAPIXEL) for w, h in input_sizes
    )
    output = n * math.ceil(_megapixels(size, made_size) / 1.048576 * _OUTPUT_TOKENS_PER_MEGAPIXEL[level])
    return {
        "input_tokens": text_tokens + image_tokens,
        "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": image_tokens},
        "output_tokens": output,
        "output_tokens_details": {"image_tokens": output, "text_tokens": 0},
        "total_tokens": text_tokens + image_tokens + output,
    }


def resolved_quality(spec: ModelSpec, quality: str | None) -> str | None:
    """The quality an engine uses for ``auto`` or none: the API answers with the one it used."""
    if not spec.is_gpt_image:
        return quality
    return "medium" if quality in (None, "auto") else quality


def sum_costs(costs: Sequence[CostEstimate | None]) -> CostEstimate | None:
    """Several estimates of one kind added up (the parts of a parallel call)."""
    present = [cost for cost in costs if cost is not None]
    if not present:
        return None
    first = present[0]
    return CostEstimate(
        sum(cost.usd for cost in present), first.model, first.basis, first.prices_read, first.billed
    )


def sum_usage(usages: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """Several usage records added up, nested details included."""
    present = [u for u in usages if u]
    if not present:
        return None
    total: dict[str, Any] = {}
    for usage in present:
        _add_into(total, usage)
    return total


def _add_into(total: dict[str, Any], usage: dict[str, Any]) -> None:
    for key, value in usage.items():
        if isinstance(value, dict):
            _add_into(total.setdefault(key, {}), value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            total[key] = total.get(key, 0) + value
        else:
            total.setdefault(key, value)
