"""Backends and helpers shared by the widget and parallel tests.

``FakeBackend`` is a real :class:`BaseBackend` subclass (validation, hooks and dispatch are
the library's own); only image making is replaced by a PNG drawn here. It can be held on a
``threading.Event``, made to meet other calls at a barrier, or made to fail.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any

import ipywidgets as widgets
import numpy as np
from PIL import Image

from ipyimagegen.api.backend import BaseBackend
from ipyimagegen.api.types import CallHooks, GeneratedImage, GenerateRequest, ImagesResponse, PartialImage
from waiting import WAIT_S


@lru_cache(maxsize=64)
def make_png(side: int = 512, variant: int = 0) -> bytes:
    """A textured RGB PNG (a gradient with noise): large enough that a thumbnail is much smaller."""
    rng = np.random.default_rng(variant)
    y, x = np.mgrid[0:side, 0:side]
    base = np.stack([x * 255 // side, y * 255 // side, np.full_like(x, (variant * 40) % 256)], axis=-1)
    noise = rng.integers(0, 60, size=(side, side, 3))
    pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


class FakeBackend(BaseBackend):
    """Makes textured PNGs; records every request it runs.

    gate: each call waits until it is set (the test controls when results arrive); or a function
        of the request that returns the Event to wait on (or None: no wait).
    barrier: each call waits there, so N calls only get past when N run at the same time.
    fail: an exception to raise, or a function of the request that returns one (or None).
    """

    name = "fake"
    offline = True

    def __init__(
        self,
        *,
        side: int = 512,
        gate: threading.Event | Callable[[GenerateRequest], threading.Event | None] | None = None,
        barrier: threading.Barrier | None = None,
        fail: BaseException | Callable[[GenerateRequest], BaseException | None] | None = None,
        revised_prompt: str | None = None,
        streaming: bool = True,
    ) -> None:
        self.side = side
        self.gate = gate
        self.barrier = barrier
        self.fail = fail
        self.revised_prompt = revised_prompt
        self.streaming = streaming
        self.requests: list[GenerateRequest] = []
        self.calls_started = threading.Semaphore(0)
        self.calls_finished = threading.Semaphore(0)
        self._lock = threading.Lock()

    def supports_streaming(self, model: str) -> bool:
        return self.streaming and model.startswith("gpt-image")

    def _generate(self, request: GenerateRequest, hooks: CallHooks) -> ImagesResponse:
        with self._lock:
            self.requests.append(request)
        self.calls_started.release()
        try:
            return self._make(request, hooks)
        finally:
            self.calls_finished.release()

    def _make(self, request: GenerateRequest, hooks: CallHooks) -> ImagesResponse:
        if self.barrier is not None:
            self.barrier.wait()
        first = request.seed or 0
        for index in range(request.n):
            for step in range(request.partial_images or 0):
                hooks.partial(PartialImage(index=index, partial_index=step, data=make_png(64, 100 + step)))
        gate = self.gate(request) if callable(self.gate) else self.gate
        if gate is not None and not gate.wait(WAIT_S):
            raise TimeoutError("the test never opened the gate")
        error = self.fail(request) if callable(self.fail) else self.fail
        if error is not None:
            raise error
        images = [
            GeneratedImage(
                data=make_png(self.side, (first + i) % 7),
                index=i,
                seed=first + i,
                revised_prompt=self.revised_prompt,
            )
            for i in range(request.n)
        ]
        return ImagesResponse(data=images, backend=self.name)


def iter_widgets(root: widgets.Widget) -> Iterator[widgets.Widget]:
    """Every widget reachable from ``root`` through its synced widget-valued traits."""
    seen: set[str] = set()
    stack: list[Any] = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, widgets.Widget):
            if item.model_id in seen:
                continue
            seen.add(item.model_id)
            yield item
            for name in item.keys:
                stack.append(getattr(item, name))
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())


def state_bytes(root: widgets.Widget) -> int:
    """Total size of the bytes and text in the saved state of ``root`` and everything it shows."""
    total = 0
    for widget in iter_widgets(root):
        for value in widget.get_state().values():
            if isinstance(value, (bytes, bytearray, memoryview, str)):
                total += len(value)
    return total


class Page:
    """The browser's side of a :class:`TileGridView`, as the page script sees it: the tiles' JSON,
    the thumbnails and files it was sent, and clicks sent back the way the page sends them."""

    def __init__(self, view: Any) -> None:
        self.view = view
        self.pictures: dict[str, tuple[int, bytes, str]] = {}
        self.files: list[tuple[str, str, bytes]] = []
        self.revealed: list[str] = []
        self.messages: list[dict[str, Any]] = []
        self.buffers: list[list[bytes]] = []  # each message's, in the same order
        original = view.send

        def record(content: dict[str, Any], buffers: list[bytes] | None = None) -> None:
            self.messages.append(content)
            self.buffers.append([bytes(data) for data in buffers or []])
            if content.get("event") == "pictures":
                for item, data in zip(content["items"], buffers or [], strict=True):
                    self.pictures[item["id"]] = (item["version"], bytes(data), item["mime"])
            elif content.get("event") == "file":
                self.files.append((content["name"], content["mime"], bytes((buffers or [b""])[0])))
            elif content.get("event") == "reveal":
                self.revealed.append(content["selector"])
            original(content, buffers=buffers)

        view.send = record

    def send(self, message: dict[str, Any]) -> None:
        """A message from the page (as the page script sends it)."""
        self.view._handle_message(self.view, message, [])

    def click(self, tile: Any, action: str) -> None:
        self.send({"event": "action", "id": tile.id, "name": action})

    def tick(self, tile: Any, value: bool = True) -> None:
        self.send({"event": "select", "id": tile.id, "value": value})

    def tile(self, tile: Any) -> dict[str, Any]:
        """The JSON the page draws ``tile`` from (KeyError when it is not on the page)."""
        for shown in self.view.tiles:
            if shown["id"] == tile.id:
                return dict(shown)
        raise KeyError(tile.id)

    def enabled(self, tile: Any) -> set[str]:
        return set(self.tile(tile)["enabled"])

    def picture(self, tile: Any) -> bytes | None:
        """The thumbnail the page holds for ``tile`` (the latest sent), or None."""
        found = self.pictures.get(tile.id)
        return found[1] if found else None
