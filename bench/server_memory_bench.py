"""Server memory under hostile uploads: peak RSS of `ipyimagegen serve` over idle, for the worst edit within its limits.

The worst request within the limits: an edit with 16 input images and a mask, each a
6000x6000 PNG (36 megapixels, the most the server takes; about 150 KB each, so the whole
body is far under the upload cap), model gpt-image-2, size left to the engine. The server
is the real command (`python -m ipyimagegen serve`, the preview engine, default limits) in a
fresh process; the figure is its peak RSS (VmHWM) minus its RSS once it is up and idle. Then
the same for 4 such requests at once, in another fresh server. Last, the class wall: 16
participants share a flat 4096x4096 PNG (the largest picture the wall takes, a few dozen KB)
at once, in a fresh server with the wall.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import requests
from PIL import Image

from ipyimagegen.server import TokenStore

from .report import Figure, Goal, Options, say

GOAL_MB = 500.0
SIDE = 6000
WALL_GOAL_MB = 200.0
WALL_SIDE = 4096
MB = 1024 * 1024


def large_png(side: int = SIDE, seed: int = 0) -> bytes:
    """A ``side`` x ``side`` picture that compresses well (smooth bands, a few shapes)."""
    rng = np.random.default_rng(seed)
    row = np.linspace(0, 255, side, dtype=np.float32)
    colours = rng.uniform(0.3, 1.0, 3).astype(np.float32)
    band = (row[:, None] * colours[None, :]).astype(np.uint8)  # side x 3
    pixels = np.broadcast_to(band[None, :, :], (side, side, 3))
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG")
    return buffer.getvalue()


def large_mask(side: int = SIDE) -> bytes:
    """An RGBA mask of ``side`` x ``side``: the top-left quarter marked (alpha 0)."""
    mask = Image.new("RGBA", (side, side), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, side // 2, side // 2))
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    return buffer.getvalue()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in bytes (Linux)."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0]) * 1024
    return found


@dataclass
class Measured:
    idle_mb: float
    peak_mb: float
    seconds: float
    statuses: list[int]

    @property
    def over_idle_mb(self) -> float:
        return self.peak_mb - self.idle_mb


@contextlib.contextmanager
def _serving(*arguments: str, state_dir: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A fresh `ipyimagegen serve` (state in ``state_dir``), once it answers: its process and address."""
    port = _free_port()
    command = [sys.executable, "-m", "ipyimagegen", "serve", "--port", str(port), "--log-level", "warning"]
    environment = {**os.environ, "IPYIMAGEGEN_SERVER_DIR": state_dir}
    server = subprocess.Popen(
        [*command, *arguments], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/health", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"The server did not start: {server.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)
        time.sleep(0.5)
        yield server, base
    finally:
        server.terminate()
        server.wait(timeout=30)
        if server.stderr is not None:
            server.stderr.close()


def measure(at_once: int, images: int = 16, side: int = SIDE) -> Measured:
    """Start a fresh server, send ``at_once`` edits of ``images`` ``side``-pixel images at once, read its memory."""
    tokens = tempfile.mkdtemp(
        prefix="ipyimagegen-bench-tokens-"
    )  # an open server, whatever tokens the user has
    try:
        with _serving(state_dir=tokens) as (server, base):
            idle = _memory(server.pid)["VmRSS"]
            picture, mask = large_png(side), large_mask(side)
            files = [("image[]", (f"big{i}.png", picture, "image/png")) for i in range(images)]
            files.append(("mask", ("mask.png", mask, "image/png")))
            fields = {"prompt": "a red fox in the snow", "model": "gpt-image-2"}

            def call(_: int) -> int:
                answer = requests.post(f"{base}/v1/images/edits", data=fields, files=files, timeout=300)
                return answer.status_code

            started = time.perf_counter()
            with ThreadPoolExecutor(at_once) as pool:
                statuses = list(pool.map(call, range(at_once)))
            seconds = time.perf_counter() - started
            peak = _memory(server.pid)["VmHWM"]
    finally:
        shutil.rmtree(tokens, ignore_errors=True)
    return Measured(idle / MB, peak / MB, seconds, statuses)


def flat_png(side: int = WALL_SIDE) -> bytes:
    """A ``side`` x ``side`` picture of one colour: a small file that decodes to the most pixels the wall
    takes."""
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (200, 60, 20)).save(buffer, format="PNG")
    return buffer.getvalue()


def measure_wall(posts: int, side: int = WALL_SIDE) -> Measured:
    """Start a fresh server with the class wall, share ``posts`` flat ``side``-pixel PNGs at once (one per
    participant), read its memory."""
    state = tempfile.mkdtemp(prefix="ipyimagegen-bench-wall-")
    store = TokenStore.in_dir(state)
    tokens = [store.create(f"participant {number}")[0] for number in range(posts)]
    picture = flat_png(side)
    try:
        with _serving("--class-wall", state_dir=state) as (server, base):
            idle = _memory(server.pid)["VmRSS"]

            def share(token: str) -> int:
                answer = requests.post(
                    f"{base}/v1/wall",
                    headers={"Authorization": f"Bearer {token}"},
                    data={"prompt": "a flat field"},
                    files={"image": ("flat.png", picture, "image/png")},
                    timeout=300,
                )
                return answer.status_code

            started = time.perf_counter()
            with ThreadPoolExecutor(posts) as pool:
                statuses = list(pool.map(share, tokens))
            seconds = time.perf_counter() - started
            peak = _memory(server.pid)["VmHWM"]
    finally:
        shutil.rmtree(state, ignore_errors=True)
    return Measured(idle / MB, peak / MB, seconds, statuses)


def run(options: Options) -> list[Figure]:
    images = options.pick(4, 16)
    say(
        f"method: `ipyimagegen serve` (preview engine, default limits) in a fresh process; edits of {images} "
        f"images and a mask, each {SIDE}x{SIDE} ({len(large_png()) // 1024} KB as PNG), gpt-image-2, size auto; "
        "peak RSS (VmHWM) minus idle RSS"
    )
    figures = []
    for at_once in (1, 4):
        measured = measure(at_once, images)
        if measured.statuses != [200] * at_once:
            raise RuntimeError(
                f"The server answered {measured.statuses} to {at_once} edit(s) within its limits."
            )
        say(
            f"{at_once} at once: idle {measured.idle_mb:.0f} MB, peak {measured.peak_mb:.0f} MB, "
            f"answered in {measured.seconds:.1f} s"
        )
        figures.append(
            Figure(
                f"server: peak RSS over idle, worst edit x{at_once}",
                measured.over_idle_mb,
                "MB",
                Goal(GOAL_MB),
            )
        )
    posts = options.pick(4, 16)
    measured = measure_wall(posts)
    if measured.statuses != [201] * posts:
        raise RuntimeError(
            f"The server answered {measured.statuses} to {posts} wall posts within its limits."
        )
    say(
        f"class wall: {posts} participants share a flat {WALL_SIDE}x{WALL_SIDE} PNG "
        f"({len(flat_png()) // 1024} KB) at once: idle {measured.idle_mb:.0f} MB, peak {measured.peak_mb:.0f} MB, "
        f"answered in {measured.seconds:.1f} s"
    )
    figures.append(
        Figure(
            f"server: peak RSS over idle, {posts} wall posts at once",
            measured.over_idle_mb,
            "MB",
            Goal(WALL_GOAL_MB),
        )
    )
    return figures
