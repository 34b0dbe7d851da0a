"""Answers in the shape of the public Images API: the images JSON and the streamed events."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

from ..api.types import EditRequest, GeneratedImage, ImageRequest, ImagesResponse, PartialImage
from ..models import model_spec
from ..pricing import resolved_quality

_FORMAT_BY_MIME = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/svg+xml": "svg",
}
_ZERO_USAGE = {
    "input_tokens": 0,
    "input_tokens_details": {"image_tokens": 0, "text_tokens": 0},
    "output_tokens": 0,
    "total_tokens": 0,
}


def _pixel_size(data: bytes) -> str | None:
    """``WxH`` from the image's header (an SVG's from its width, height or viewBox), or None."""
    from ..imaging import image_size

    try:
        width, height = image_size(data)
    except Exception:
        return None
    return f"{width}x{height}"


def output_details(request: ImageRequest, image: GeneratedImage | PartialImage) -> dict[str, Any]:
    """``output_format``, ``size``, ``quality`` and ``background`` of a gpt-image result.

    What the engine (or upstream server) reported comes first, then what the image itself
    shows, then what was asked for.
    """
    reported = image.metadata if isinstance(image, GeneratedImage) else {}
    asked_background = getattr(request, "background", None)
    used_quality = resolved_quality(model_spec(request.model), getattr(request, "quality", None))
    details = {
        "output_format": reported.get("output_format") or _FORMAT_BY_MIME.get(image.mime_type, "png"),
        "size": reported.get("size") or _pixel_size(image.data) or request.size,
        "quality": reported.get("quality") if reported.get("quality") not in (None, "auto") else used_quality,
        "background": reported.get("background")
        if reported.get("background") not in (None, "auto")
        else ("transparent" if asked_background == "transparent" else "opaque"),
    }
    identifier = request.safety_identifier or request.user
    if identifier:
        details["safety_identifier"] = identifier  # the effective one, as the API echoes it
    return details


def images_payload(
    response: ImagesResponse, request: ImageRequest, url_for: Callable[[GeneratedImage], str] | None = None
) -> dict[str, Any]:
    """The JSON answer to a non-streamed call; ``url_for`` stores an image and gives its URL."""
    items = []
    for image in response.data:
        item: dict[str, Any] = (
            {"url": url_for(image)} if url_for is not None else {"b64_json": image.b64_json}
        )
        if image.revised_prompt:
            item["revised_prompt"] = image.revised_prompt
        items.append(item)
    payload: dict[str, Any] = {"created": response.created, "data": items}
    if model_spec(request.model).is_gpt_image and response.data:
        payload.update(output_details(request, response.data[0]))
    if response.usage:
        payload["usage"] = response.usage
    return payload


def event_prefix(request: ImageRequest) -> str:
    return "image_edit" if isinstance(request, EditRequest) else "image_generation"


def partial_event(request: ImageRequest, partial: PartialImage) -> dict[str, Any]:
    return {
        "type": f"{event_prefix(request)}.partial_image",
        "b64_json": base64.b64encode(partial.data).decode("ascii"),
        "created_at": int(time.time()),
        "partial_image_index": partial.partial_index,
        **output_details(request, partial),
    }


def completed_event(
    request: ImageRequest, image: GeneratedImage, usage: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "type": f"{event_prefix(request)}.completed",
        "b64_json": image.b64_json,
        "created_at": int(time.time()),
        **output_details(request, image),
        "usage": usage or _ZERO_USAGE,
    }


def sse(event: str, payload: dict[str, Any]) -> bytes:
    """One server-sent event."""
    return f"event: {event}\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()
