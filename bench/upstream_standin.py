"""A stand-in for OpenAI's Images API under an organisation's limits, for the workshop benchmarks.

:class:`ShortWindowUpstream` wraps an app and limits its image calls to several token buckets at
once (120 images a minute AND 2 a second, say), refusing past any of them with 429
``rate_limit_exceeded`` and ``Retry-After`` as OpenAI does. :func:`gpt_image_app` answers
``POST /v1/images/generations`` as OpenAI does for a GPT image model (base64 PNGs, ``usage`` in
tokens), each call taking a while drawn from a range, and counts the images it made.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

MODEL = "gpt-image-2"


class ShortWindowUpstream:
    """An ASGI wrapper that limits the image calls of the app it wraps to each of ``rates`` (token
    buckets that start full): a call past any of them is refused, 429 ``rate_limit_exceeded`` with
    ``Retry-After`` and ``retry-after-ms`` (when every bucket holds an image again). Every call asks
    for one image. ``served_at`` holds the time (``time.monotonic()``) each call was let through."""

    def __init__(self, app: Any, rates: list[tuple[int, float]]) -> None:
        self.app = app
        now = time.monotonic()
        self._buckets = [[float(count), now, count, period] for count, period in rates]
        self.served = 0
        self.refused = 0
        self.served_at: list[float] = []

    def _take(self) -> float:
        """0.0 and one image taken from every bucket, or the seconds until every bucket holds one."""
        now = time.monotonic()
        wait = 0.0
        for bucket in self._buckets:
            level, filled, count, period = bucket
            bucket[0] = min(float(count), level + (now - filled) * count / period)
            bucket[1] = now
            wait = max(wait, (1.0 - bucket[0]) * period / count)
        if wait > 0:
            return wait
        for bucket in self._buckets:
            bucket[0] -= 1.0
        return 0.0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/images/"):
            wait = self._take()  # one event loop: no lock needed
            if wait > 0:
                from ipyimagegen.server.replies import retry_after_headers

                self.refused += 1
                message = "Rate limit reached for images per min: try again later."
                error = {"message": message, "type": "requests", "param": None, "code": "rate_limit_exceeded"}
                refusal = JSONResponse({"error": error}, status_code=429, headers=retry_after_headers(wait))
                await refusal(scope, receive, send)
                return
            self.served += 1
            self.served_at.append(time.monotonic())
        await self.app(scope, receive, send)


@dataclass
class ImageCounts:
    """What a :func:`gpt_image_app` did: calls it took and images it made (a call cut off still made them)."""

    calls: int = 0
    images: int = 0
    made_at: list[float] = field(default_factory=list)


def gpt_image_app(
    png: bytes, call_s: tuple[float, float], counts: ImageCounts, *, seed: int = 0
) -> Starlette:
    """``POST /v1/images/generations`` for :data:`MODEL`: ``n`` copies of ``png`` as base64 after a wait
    drawn uniformly from ``call_s`` (seconds), with ``usage`` as a low-quality 1024x1024 image takes;
    ``GET /v1/models`` lists the model. Counts go in ``counts``."""
    image = base64.b64encode(png).decode("ascii")
    draw = random.Random(seed)

    async def generations(request: Request) -> Response:
        try:
            params = json.loads(await request.body())
            n = int(params.get("n") or 1)
        except (ValueError, TypeError, AttributeError):
            error = {
                "message": "The body is not JSON.",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
            return JSONResponse({"error": error}, status_code=400)
        counts.calls += 1
        await asyncio.sleep(draw.uniform(*call_s))
        counts.images += n
        counts.made_at.append(time.monotonic())
        return JSONResponse(
            {
                "created": int(time.time()),
                "data": [{"b64_json": image} for _ in range(n)],
                "background": "opaque",
                "output_format": "png",
                "quality": params.get("quality") or "medium",
                "size": params.get("size") or "1024x1024",
                "usage": {
                    "input_tokens": 12,
                    "input_tokens_details": {"text_tokens": 12, "image_tokens": 0},
                    "output_tokens": 272 * n,
                    "output_tokens_details": {"image_tokens": 272 * n, "text_tokens": 0},
                    "total_tokens": 12 + 272 * n,
                },
            }
        )

    async def models(request: Request) -> Response:
        entry = {"id": MODEL, "object": "model", "created": 0, "owned_by": "system", "shutdown_date": None}
        return JSONResponse({"object": "list", "data": [entry]})

    return Starlette(
        routes=[
            Route("/v1/images/generations", generations, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
        ]
    )
