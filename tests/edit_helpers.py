"""Helpers for the Edit and Variations tab tests: a preview engine that records what it receives,
upload entries as a browser sends them, and a way to paint a stroke as the mouse does."""

from __future__ import annotations

import io
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ipyimagegen.api.backend import BaseBackend
from ipyimagegen.api.types import CallHooks, EditRequest, ImagesResponse, VariationRequest
from ipyimagegen.engines.preview import PreviewEngine


class RecordingPreviewEngine(PreviewEngine):
    """The preview engine, keeping every request; an edit's mask is also written to ``mask_path``."""

    def __init__(self, mask_path: str | Path | None = None) -> None:
        super().__init__()
        self.mask_path = Path(mask_path) if mask_path is not None else None
        self.requests: list[Any] = []
        self._lock = threading.Lock()

    def _edit(self, request: EditRequest, hooks: CallHooks) -> ImagesResponse:
        with self._lock:
            self.requests.append(request)
        if self.mask_path is not None and request.mask is not None:
            self.mask_path.write_bytes(request.mask.data)
        return super()._edit(request, hooks)

    def _create_variation(self, request: VariationRequest, hooks: CallHooks) -> ImagesResponse:
        with self._lock:
            self.requests.append(request)
        return super()._create_variation(request, hooks)


class GenerationsOnlyBackend(BaseBackend):
    """A backend that offers no edits and no variations (as some compatible servers)."""

    name = "generations-only server"

    def models(self, endpoint: str = "generations") -> list[str]:
        return ["gpt-image-2.5-flare"] if endpoint == "generations" else []


def upload_entry(name: str, data: bytes) -> dict[str, Any]:
    """One file as an ipywidgets 8 ``FileUpload`` holds it after a browser upload."""
    return {
        "name": name,
        "type": "",
        "size": len(data),
        "content": memoryview(data),
        "last_modified": datetime(2024, 1, 1, tzinfo=timezone.utc),
    }


def picture(width: int = 320, height: int = 240, seed: int = 0) -> np.ndarray:
    """An RGB array with texture (so edits and crops can be told apart)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // width, y * 255 // height, np.full_like(x, 90)], axis=-1)
    return np.clip(base + rng.integers(0, 40, size=(height, width, 3)), 0, 255).astype(np.uint8)


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def drag(painter: Any, points: list[tuple[float, float]]) -> None:
    """A brush stroke through ``points`` (pixels of the fitted view), sent as the page sends one:
    picture pixels, a few points a message, the last one ending the stroke."""
    view = painter.view
    stroke_id = getattr(painter, "_test_strokes", 0) + 1
    painter._test_strokes = stroke_id
    flat = [v for point in points for v in painter.canvas_to_image(*point)]
    batches = [flat[i : i + 6] for i in range(0, len(flat), 6)]
    for number, batch in enumerate(batches):
        message = {"kind": "stroke", "id": stroke_id, "tool": "brush", "points": batch,
                   "first": number == 0, "end": number == len(batches) - 1}  # fmt: skip
        view._handle_message(view, message, [])


def holds_no_file(upload: Any) -> bool:
    """An upload's widget state keeps no file bytes (a saved notebook stays small)."""
    state = upload.upload.get_state()
    return not any(isinstance(value, (bytes, bytearray, memoryview)) for value in state.values())
