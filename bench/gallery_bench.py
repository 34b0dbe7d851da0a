"""Gallery speed: saving a 1024x1024 PNG (file, metadata, fsync, index) and opening a large gallery.

Goals: a save under 20 ms; opening a gallery of 1000 images and reading its first page under
1 s. Run: ``python bench/gallery_bench.py [--items 1000] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ipyimagegen.api.types import GeneratedImage, GenerateRequest
from ipyimagegen.gallery import Gallery

SAVE_GOAL_MS = 20.0
OPEN_GOAL_S = 1.0


def photo_like_png(side: int = 1024, seed: int = 0) -> bytes:
    """A PNG about as large as a model's: smooth colour with fine noise (about 2-3 MB)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side]
    base = np.stack([x * 255 // side, y * 255 // side, (x + y) * 127 // side], axis=-1)
    pixels = np.clip(base + rng.integers(-12, 13, size=(side, side, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=1000, help="images in the gallery that is opened")
    parser.add_argument("--keep", type=Path, help="build the gallery here and keep it")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="gallery-bench-"))
    data = photo_like_png()
    request = GenerateRequest(
        prompt="a lighthouse on a cliff at dusk, oil painting", model="gpt-image-1", n=1
    )

    with Gallery(folder) as gallery:
        times = []
        for index in range(args.items):
            image = GeneratedImage(data=data, seed=index, request=request, metadata={"backend": "bench"})
            started = time.perf_counter()
            gallery.save(image)
            times.append((time.perf_counter() - started) * 1000)
    median = statistics.median(times)
    p95 = sorted(times)[int(len(times) * 0.95)]
    print(
        f"save {len(data) / 1e6:.1f} MB PNG: median {median:.1f} ms, p95 {p95:.1f} ms (goal < {SAVE_GOAL_MS} ms)"
    )

    started = time.perf_counter()
    with Gallery(folder) as gallery:
        page = gallery.items(limit=12)
        total = len(gallery)
    opened = time.perf_counter() - started
    print(
        f"open {total} images and read a page of {len(page)}: {opened * 1000:.0f} ms (goal < {OPEN_GOAL_S} s)"
    )

    with Gallery(folder) as gallery:
        started = time.perf_counter()
        found = gallery.count(text="lighthouse dusk")
        print(f"search over {total}: {found} found in {(time.perf_counter() - started) * 1000:.1f} ms")
    ok = median < SAVE_GOAL_MS and opened < OPEN_GOAL_S
    print("OK" if ok else "SLOWER THAN THE GOALS")


if __name__ == "__main__":
    main()
