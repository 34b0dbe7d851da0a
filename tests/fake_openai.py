"""OpenAI's Images API as it answers today (December 2026), on 127.0.0.1, for contract tests.

Its rules are written here from OpenAI's documentation and the SDK, apart from the package's
catalogue, so that a test against it checks the client, not the catalogue against itself:

- ``GET /v1/models`` lists the live image models (and chat models), with ``shutdown_date``;
- a retired model is a 404 ``model_not_found``; ``response_format`` and ``seed`` are 400
  ``unknown_parameter``; ``input_fidelity``, ``xhigh``/``max`` quality and a transparent
  background are refused by gpt-image-2; ``complexity`` is taken by the 2.6 models only;
- answers carry base64 PNGs of the size asked for, ``usage`` in tokens and the quality,
  size, background and output format used; ``stream=true`` answers with server-sent events.
"""

from __future__ import annotations

import base64
import io
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image

from fake_api_server import RecordedRequest

LIVE = {
    "gpt-image-2": {
        "transparent": False,
        "qualities": ("low", "medium", "high", "auto"),
        "complexity": False,
    },
    "gpt-image-2-2026-04-21": {
        "transparent": False,
        "qualities": ("low", "medium", "high", "auto"),
        "complexity": False,
    },
    **{
        name: {
            "transparent": True,
            "qualities": ("low", "medium", "high", "xhigh", "max", "auto"),
            "complexity": False,
        }
        for name in (
            "gpt-image-2.5-flare",
            "gpt-image-2.5-flare-2026-09-08",
            "gpt-image-2.5-sunburst",
            "gpt-image-2.5-sunburst-2026-09-08",
        )
    },
    **{
        name: {
            "transparent": True,
            "qualities": ("low", "medium", "high", "xhigh", "max", "auto"),
            "complexity": True,
        }
        for name in ("gpt-image-2.6-flare", "gpt-image-2.6-sunburst")
    },
}
RETIRED = (
    "dall-e-2",
    "dall-e-3",
    "gpt-image-1",
    "gpt-image-1.5",
    "gpt-image-1.5-2025-12-16",
    "gpt-image-1-mini",
    "chatgpt-image-latest",
)


def sample_png(size: tuple[int, int] = (256, 256)) -> bytes:
    """An opaque picture to upload."""
    buffer = io.BytesIO()
    Image.new("RGBA", size, (200, 100, 50, 255)).save(buffer, "PNG")
    return buffer.getvalue()


def sample_mask(size: tuple[int, int] = (256, 256)) -> bytes:
    """Opaque, with a transparent square in the middle: the area to remake."""
    mask = Image.new("RGBA", size, (0, 0, 0, 255))
    width, height = size
    mask.paste((0, 0, 0, 0), (width // 4, height // 4, 3 * width // 4, 3 * height // 4))
    buffer = io.BytesIO()
    mask.save(buffer, "PNG")
    return buffer.getvalue()


def _png(size: str) -> bytes:
    width, height = (1024, 1024) if size in ("", "auto") else (int(v) for v in size.split("x"))
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (90, 140, 200)).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


@dataclass
class OpenAIToday:
    """Start it, point a client at ``base_url``, read ``calls`` (every image request it got)."""

    extra_models: list[dict[str, Any]] = field(default_factory=list)  # more /v1/models entries
    shutdown_dates: dict[str, str] = field(default_factory=dict)  # shutdown_date to list per model
    calls: list[RecordedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def __enter__(self) -> OpenAIToday:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- the rules -------------------------------------------------------------------------

    def model_list(self) -> dict[str, Any]:
        entries = [
            {
                "id": name,
                "object": "model",
                "created": 0,
                "owned_by": "system",
                "shutdown_date": self.shutdown_dates.get(name),
            }
            for name in LIVE
        ]
        entries.append(
            {"id": "gpt-5.5", "object": "model", "created": 0, "owned_by": "system", "shutdown_date": None}
        )
        return {"object": "list", "data": entries + self.extra_models}

    def known(self, model: str) -> bool:
        return model in LIVE or any(entry["id"] == model for entry in self.extra_models)

    def refusal(self, params: dict[str, Any], endpoint: str) -> tuple[int, dict[str, Any]] | None:
        """The error OpenAI answers for these parameters, or None when it makes the images."""
        model = params.get("model")
        if not model:
            return 400, _error("Missing required parameter: 'model'.", "model", "missing_required_parameter")
        if model in RETIRED or not self.known(model):
            return 404, _error(
                f"The model '{model}' does not exist or you do not have access to it.",
                "model",
                "model_not_found",
            )
        for name in ("response_format", "seed", "style"):
            if name in params:
                return 400, _error(f"Unknown parameter: '{name}'.", name, "unknown_parameter")
        rules = LIVE.get(model, LIVE["gpt-image-2.6-flare"])
        if endpoint == "edits" and "input_fidelity" in params and model.startswith("gpt-image-2"):
            return 400, _error(
                "input_fidelity is not supported for this model.", "input_fidelity", "unsupported_parameter"
            )
        if params.get("background") == "transparent" and not rules["transparent"]:
            return 400, _error("Transparent background is not supported for this model.", "background", None)
        if params.get("quality") is not None and params["quality"] not in rules["qualities"]:
            return 400, _error(f"Invalid value: '{params['quality']}'.", "quality", "invalid_value")
        if "complexity" in params and not rules["complexity"]:
            return 400, _error(
                "complexity is not supported for this model.", "complexity", "unsupported_parameter"
            )
        if (
            endpoint == "generations"
            and "moderation" in params
            and params["moderation"] not in ("low", "auto")
        ):
            return 400, _error(f"Invalid value: '{params['moderation']}'.", "moderation", "invalid_value")
        return None

    def answer(self, params: dict[str, Any], endpoint: str) -> dict[str, Any]:
        size = str(params.get("size") or "1024x1024")
        n = int(params.get("n") or 1)
        quality = params.get("quality") or "auto"
        image = base64.b64encode(_png(size)).decode()
        return {
            "created": 1764547200,
            "data": [{"b64_json": image} for _ in range(n)],
            "background": "transparent" if params.get("background") == "transparent" else "opaque",
            "output_format": params.get("output_format") or "png",
            "quality": "medium" if quality == "auto" else quality,
            "size": "1024x1024" if size == "auto" else size,
            "usage": {
                "input_tokens": 50,
                "input_tokens_details": {"text_tokens": 40, "image_tokens": 10 if endpoint == "edits" else 0},
                "output_tokens": 1056 * n,
                "output_tokens_details": {"image_tokens": 1056 * n, "text_tokens": 0},
                "total_tokens": 50 + 1056 * n,
            },
        }


def _error(message: str, param: str | None, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}


def _handler(api: OpenAIToday) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path == "/v1/models":
                self._json(200, api.model_list())
            else:
                self._json(404, _error("Not found.", None, None))

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            recorded = RecordedRequest("POST", self.path, headers, body)
            api.calls.append(recorded)
            endpoint = self.path.rsplit("/", 1)[-1]
            if endpoint == "variations":
                self._json(404, _error("No model serves /v1/images/variations.", "model", "model_not_found"))
                return
            if headers.get("content-type", "").startswith("multipart/form-data"):
                params: dict[str, Any] = dict(recorded.fields())
                for key in ("n", "partial_images", "output_compression"):
                    if key in params:
                        params[key] = int(params[key])
                params["stream"] = params.get("stream") == "true"
            else:
                params = recorded.json()
            stream = bool(params.pop("stream", False))
            refused = api.refusal(params, endpoint)
            if refused is not None:
                self._json(*refused)
                return
            answer = api.answer(params, endpoint)
            if stream:
                self._events(answer, endpoint, int(params.get("partial_images") or 0))
            else:
                self._json(200, answer)

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-request-id", "req_today")
            self.end_headers()
            self.wfile.write(data)

        def _events(self, answer: dict[str, Any], endpoint: str, partials: int) -> None:
            prefix = "image_edit" if endpoint == "edits" else "image_generation"
            image = answer["data"][0]["b64_json"]
            details = {k: answer[k] for k in ("background", "output_format", "quality", "size")}
            events = [
                (
                    f"{prefix}.partial_image",
                    {
                        "type": f"{prefix}.partial_image",
                        "b64_json": image,
                        "partial_image_index": i,
                        **details,
                    },
                )
                for i in range(partials)
            ]
            events.append(
                (
                    f"{prefix}.completed",
                    {"type": f"{prefix}.completed", "b64_json": image, "usage": answer["usage"], **details},
                )
            )
            chunks = b"".join(f"event: {e}\ndata: {json.dumps(p)}\n\n".encode() for e, p in events)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", str(len(chunks)))
            self.end_headers()
            self.wfile.write(chunks)

    return Handler
