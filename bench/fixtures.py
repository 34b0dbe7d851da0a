"""What the benchmarks run against: model-like PNGs, an instant backend, and a local server for it."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from ipyimagegen.api.backend import BaseBackend
from ipyimagegen.api.types import (
    CallHooks,
    EditRequest,
    GeneratedImage,
    GenerateRequest,
    ImageRequest,
    ImagesResponse,
    VariationRequest,
)

PROMPT = "a lighthouse on a cliff at dusk, oil painting"
SERVER_EXIT_S = 10.0


#: Detail at several scales (cells across the image, strength), so a thumbnail keeps detail too.
_OCTAVES = ((4, 60.0), (16, 40.0), (64, 30.0), (256, 20.0))


def _smooth_noise(rng: np.random.Generator, cells: int, size: tuple[int, int]) -> np.ndarray:
    """Random values on a ``cells`` x ``cells`` grid, scaled up smoothly to ``size``: HxWx3 in -1..1."""
    grid = rng.uniform(-1, 1, (cells, cells, 3)).astype(np.float32)
    channels = [
        np.asarray(Image.fromarray(grid[..., c], mode="F").resize(size, Image.Resampling.BICUBIC))
        for c in range(3)
    ]
    return np.stack(channels, axis=-1)


@lru_cache(maxsize=8)
def photo_like_png(width: int = 1024, height: int | None = None, seed: int = 0) -> bytes:
    """A PNG like a model's: about 2 MB at 1024x1024, slow to decode as theirs are, with detail at
    every scale (so its thumbnail is as large as a real picture's) and fine grain."""
    height = height or width
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 128 / width, y * 128 / height, (x + y) * 64 / max(width, height)], axis=-1) + 64
    for cells, strength in _OCTAVES:
        pixels += strength * _smooth_noise(rng, cells, (width, height))
    pixels += rng.integers(-8, 9, size=(height, width, 3))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def fresh_copy(data: bytes) -> bytes:
    """A new bytes object with the same content, as decoding an API answer makes."""
    return bytes(memoryview(data))


def _side(size: str | None) -> tuple[int, int]:
    if not size or size == "auto":
        return 1024, 1024
    width, _, height = size.partition("x")
    return int(width), int(height)


class InstantBackend(BaseBackend):
    """Answers every request with stored model-like PNGs: no drawing, so its time is almost nothing.

    Each image is a fresh copy (a real answer is new bytes every time). ``delay_s`` makes each
    request take that long (a model at work, without using the CPU). ``busy_s`` adds up the
    time spent inside the backend, to subtract from a caller's wall time.
    """

    name = "instant bench backend"
    offline = True

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.busy_s = 0.0
        self.calls = 0
        self._lock = threading.Lock()

    def _answer(self, request: ImageRequest) -> ImagesResponse:
        started = time.perf_counter()
        if self.delay_s:
            time.sleep(self.delay_s)
        png = photo_like_png(*_side(request.size))
        images = [GeneratedImage(data=fresh_copy(png), index=i, seed=i) for i in range(request.n)]
        response = ImagesResponse(data=images, backend=self.name, model=request.model)
        with self._lock:
            self.busy_s += time.perf_counter() - started
            self.calls += 1
        return response

    def _generate(self, request: GenerateRequest, hooks: CallHooks) -> ImagesResponse:
        return self._answer(request)

    def _edit(self, request: EditRequest, hooks: CallHooks) -> ImagesResponse:
        return self._answer(request)

    def _create_variation(self, request: VariationRequest, hooks: CallHooks) -> ImagesResponse:
        return self._answer(request)


@contextmanager
def served(delay_s: float = 0.0) -> Iterator[str]:
    """An :class:`InstantBackend` behind the project's Images API server on 127.0.0.1, in another
    process (so the server never competes with the measured client for the GIL); yields the API's
    base URL."""
    command = [sys.executable, "-m", "bench.instant_server", "--delay", str(delay_s)]
    root = Path(__file__).resolve().parent.parent
    with subprocess.Popen(
        command, cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdin is not None and child.stdout is not None
        try:
            base_url = child.stdout.readline().strip()
            if not base_url.startswith("http"):
                raise RuntimeError(f"The benchmark server did not start (exit code {child.poll()}).")
            yield base_url
        finally:
            child.stdin.close()
            try:
                child.wait(SERVER_EXIT_S)
            except subprocess.TimeoutExpired:
                child.kill()
