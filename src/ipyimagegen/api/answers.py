"""Reading the Images API's answers: a JSON list of images (URL results downloaded), or a stream of
partial and completed image events."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections.abc import Generator
from typing import Any

from ..errors import (
    CONTENT_POLICY_CODES,
    APIConnectionError,
    APIError,
    APIStatusError,
    ContentPolicyError,
    ResultExpiredError,
    parse_error_body,
)
from .config import safe_url
from .deadline import Deadline
from .sse import iter_events
from .transport import Reply, Transport
from .types import MIME_BY_FORMAT, CallHooks, GeneratedImage, ImagesResponse, PartialImage, sniff_mime_type

log = logging.getLogger("ipyimagegen.api")

OUTPUT_FIELDS = ("output_format", "background", "size", "quality", "safety_identifier")
"""What an answer says of how its images were made, kept in each image's metadata."""


def mime_type(data: bytes, output_format: Any) -> str:
    sniffed = sniff_mime_type(data)
    if sniffed != "application/octet-stream":
        return sniffed
    return MIME_BY_FORMAT.get(str(output_format or "").lower(), "image/png")


def decode(b64: Any, request_id: str | None) -> bytes:
    try:
        return base64.b64decode(b64, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise APIError("The server sent an image that is not valid base64.", request_id=request_id) from None


def _details(payload: dict[str, Any]) -> dict[str, Any]:
    return {name: payload[name] for name in OUTPUT_FIELDS if payload.get(name) is not None}


def _json(reply: Reply) -> dict[str, Any]:
    response = reply.response
    try:
        payload = json.loads(reply.body or b"")
    except ValueError:
        raise APIError(
            f"The server answered HTTP {response.status_code} with something that is not JSON "
            f"({response.headers.get('content-type', 'no content type')}): is the base URL an Images API?",
            status_code=response.status_code,
            request_id=reply.request_id,
        ) from None
    if not isinstance(payload, dict):
        raise APIError("The server's answer is not a JSON object.", request_id=reply.request_id)
    return payload


def download(transport: Transport, url: str, hooks: CallHooks, deadline: Deadline) -> bytes:
    """The bytes behind a result URL (sent without the API's credentials)."""
    log.debug("downloading %s", safe_url(url))
    try:
        reply = transport.send("GET", url, hooks, deadline, credentials=False)
    except APIStatusError as exc:
        if exc.status_code in (403, 404, 410):  # OpenAI's links are signed and end after an hour
            raise ResultExpiredError(
                f"The image's link has expired or is gone (HTTP {exc.status_code} for {safe_url(url)}): "
                "result links last about an hour.",
                status_code=exc.status_code,
                request_id=exc.request_id,
            ) from None
        raise
    return reply.body or b""


def read_images(transport: Transport, reply: Reply, hooks: CallHooks, deadline: Deadline) -> ImagesResponse:
    """An ImagesResponse from the API's JSON answer (URL results downloaded through ``transport``)."""
    request_id = reply.request_id
    payload = _json(reply)
    items = payload.get("data")
    if not isinstance(items, list):
        raise APIError(
            "The server's answer has no 'data' list of images: is the base URL an Images API?",
            status_code=reply.response.status_code,
            request_id=request_id,
        )
    details = _details(payload)
    images = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise APIError(f"Image {index} of the answer is not an object.", request_id=request_id)
        url = item.get("url")
        if item.get("b64_json"):
            data = decode(item["b64_json"], request_id)
        elif url:
            data = download(transport, url, hooks, deadline)
        else:
            raise APIError(
                f"Image {index} of the answer has neither b64_json nor url.", request_id=request_id
            )
        images.append(
            GeneratedImage(
                data=data,
                mime_type=mime_type(data, payload.get("output_format")),
                index=index,
                revised_prompt=item.get("revised_prompt") or None,
                url=url,
                metadata=dict(details),
            )
        )
    return ImagesResponse(
        data=images,
        created=payload.get("created") or int(time.time()),
        request_id=request_id,
        usage=payload.get("usage"),
    )


def read_stream(transport: Transport, reply: Reply, hooks: CallHooks, deadline: Deadline) -> ImagesResponse:
    """Read a stream of partial and completed image events; partials go to ``hooks``."""
    request_id = reply.request_id
    images: list[GeneratedImage] = []
    usage = None
    payloads = _stream_payloads(transport, reply, deadline)
    try:
        for payload in payloads:
            kind = str(payload.get("type", ""))
            if kind.endswith(".partial_image"):
                data = decode(payload.get("b64_json"), request_id)
                hooks.partial(
                    PartialImage(
                        index=len(images),
                        partial_index=int(payload.get("partial_image_index", 0)),
                        data=data,
                        mime_type=mime_type(data, payload.get("output_format")),
                    )
                )
            elif kind.endswith(".completed"):
                data = decode(payload.get("b64_json"), request_id)
                images.append(
                    GeneratedImage(
                        data=data,
                        mime_type=mime_type(data, payload.get("output_format")),
                        index=len(images),
                        metadata=_details(payload),
                    )
                )
                usage = payload.get("usage") or usage
            hooks.check_cancelled()  # stop reading at once: the rest of the stream may take minutes
    finally:
        payloads.close()  # the stream is closed at once, whatever stopped the reading
    hooks.check_cancelled()
    if not images:
        raise APIConnectionError(
            "The stream ended before the image was complete: try again.", request_id=request_id
        )
    return ImagesResponse(data=images, request_id=request_id, usage=usage)


def _stream_payloads(
    transport: Transport, reply: Reply, deadline: Deadline
) -> Generator[dict[str, Any], None, None]:
    """The JSON payloads of a stream's events (the stream closed when they end); an error event raises."""
    chunks = transport.relay(reply, deadline)
    try:
        for event in iter_events(chunks):
            if event.data.strip() == "[DONE]":
                return
            try:
                payload = json.loads(event.data)
            except ValueError:
                raise APIError(
                    "The server streamed an event that is not JSON.", request_id=reply.request_id
                ) from None
            if not isinstance(payload, dict):
                continue
            if event.event == "error" or payload.get("type") == "error" or "error" in payload:
                raise _stream_error(transport, payload, reply.request_id)
            yield payload
    finally:
        chunks.close()


def _stream_error(transport: Transport, payload: dict[str, Any], request_id: str | None) -> APIError:
    error, body = parse_error_body(json.dumps(payload))
    if not error:
        error = payload
    message = transport.redact(str(error.get("message") or "The server reported an error while streaming."))
    code = str(error["code"]) if error.get("code") is not None else None
    cls = ContentPolicyError if code in CONTENT_POLICY_CODES else APIError
    return transport.redacted(
        cls(
            message,
            code=code,
            param=error.get("param"),
            type=error.get("type"),
            request_id=request_id,
            body=body,
        )
    )
