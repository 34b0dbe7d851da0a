"""Offline preview engine and imaging speed: milliseconds per image at the sizes the studio uses.

Goals: a 256x256 preview in a few milliseconds and a 1024x1024 one in tens of milliseconds
(PNG encoding is most of it); an edit or a variation at 1024, input preparation included, well
under a second; a thumbnail of a 4000x3000 JPEG in tens of milliseconds (the JPEG is decoded
at reduced scale).
Run: ``python bench/preview_bench.py [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
from PIL import Image

from ipyimagegen import imaging
from ipyimagegen.engines.preview import PreviewEngine, render_scene
from ipyimagegen.models import model_spec

PROMPT = "a white siamese cat at night under the moon by the sea"


def _median_ms(action: Callable[[], object], repeats: int) -> float:
    action()  # warm up: fonts, plugins
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    repeats = 3 if parser.parse_args().quick else 10
    engine = PreviewEngine()
    source = imaging.to_png(render_scene(PROMPT, (1024, 1024), seed=1))
    regenerate = np.zeros((1024, 1024), bool)
    regenerate[300:700, 200:800] = True
    photo = imaging.encode(render_scene(PROMPT, (4000, 3000), seed=2).convert("RGB"), "jpeg")
    cases: dict[str, Callable[[], object]] = {
        "generate 256x256 (dall-e-2)": lambda: engine.generate(
            prompt=PROMPT, model="dall-e-2", size="256x256"
        ),
        "generate 1024x1024 (gpt-image-1)": lambda: engine.generate(prompt=PROMPT, model="gpt-image-1"),
        "generate 1536x1024 jpeg": lambda: engine.generate(
            prompt=PROMPT, model="gpt-image-1", size="1536x1024", output_format="jpeg"
        ),
        "edit 1024x1024 with a mask": lambda: engine.edit(
            image=source, mask=regenerate, prompt="a blue bird", model="gpt-image-1"
        ),
        "variation 1024x1024": lambda: engine.create_variation(image=source, size="1024x1024"),
        "prepare dall-e-2 input from a 4000x3000 JPEG": lambda: imaging.prepare_input_image(
            photo, model_spec("dall-e-2")
        ),
        "thumbnail of a 4000x3000 JPEG": lambda: imaging.thumbnail(photo),
        "open a 4000x3000 JPEG": lambda: imaging.open_image(photo),
    }
    print(f"{'case':48} median ms ({repeats} runs)")
    for name, action in cases.items():
        print(f"{name:48} {_median_ms(action, repeats):8.1f}")
    print(f"(Pillow {Image.__version__})")


if __name__ == "__main__":
    main()
