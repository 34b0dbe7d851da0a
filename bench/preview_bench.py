"""The offline preview engine and the imaging helpers: milliseconds per image at the studio's sizes.

Goals: a 256x256 preview in a few milliseconds and a 1024x1024 one in tens of milliseconds (PNG
encoding is most of it). Edits and variations at 1024 (input preparation included) and the
thumbnail of a 4000x3000 JPEG (decoded at reduced scale) are printed for reference.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ipyimagegen import imaging
from ipyimagegen.engines.preview import PreviewEngine, render_scene
from ipyimagegen.models import model_spec
from ipyimagegen.moderation import word_list

from .report import Figure, Goal, Options, median_ms, samples, say

PROMPT = "a white siamese cat at night under the moon by the sea"
SMALL_GOAL_MS = 10.0
LARGE_GOAL_MS = 100.0


def _cases() -> dict[str, Callable[[], object]]:
    engine = PreviewEngine()
    source = imaging.to_png(render_scene(PROMPT, (1024, 1024), seed=1))
    regenerate = np.zeros((1024, 1024), bool)
    regenerate[300:700, 200:800] = True
    photo = imaging.encode(render_scene(PROMPT, (4000, 3000), seed=2).convert("RGB"), "jpeg")
    return {
        "generate 256x256 (dall-e-2)": lambda: engine.generate(
            prompt=PROMPT, model="dall-e-2", size="256x256"
        ),
        "generate 1024x1024 (gpt-image-2)": lambda: engine.generate(prompt=PROMPT, model="gpt-image-2"),
        "generate 1536x1024 jpeg": lambda: engine.generate(
            prompt=PROMPT, model="gpt-image-2", size="1536x1024", output_format="jpeg"
        ),
        "edit 1024x1024 with a mask": lambda: engine.edit(
            image=source, mask=regenerate, prompt="a blue bird", model="gpt-image-2"
        ),
        "variation 1024x1024": lambda: engine.create_variation(image=source, size="1024x1024"),
        "generate a GIF of 4 frames at 1024x1024": lambda: engine.generate(
            prompt=PROMPT, model="gpt-image-2.6-flare", output_format="gif", frame_count=4
        ),
        "generate an SVG of 1024x1024": lambda: engine.generate(
            prompt=PROMPT, model="gpt-image-2.6-flare", output_format="svg"
        ),
        "prepare dall-e-2 input from a 4000x3000 JPEG": lambda: imaging.prepare_input_image(
            photo, model_spec("dall-e-2")
        ),
        "thumbnail of a 4000x3000 JPEG": lambda: imaging.thumbnail(photo),
        **{f"moderation check of 32,000 characters: {name}": _checks(text) for name, text in LONG.items()},
    }


LONG = {  # the longest prompts the API takes, in the shapes that cost the word list most
    "single letters": " ".join("abcdefghijklmnopqrstuvwxyz"[k % 26] for k in range(16_000)),
    "letters spelling listed words": " ".join("gunbomsexpi"[k % 11] for k in range(16_000)),
    "a plain description": ("a lighthouse in a storm with seagulls over the harbour " * 600)[:32_000],
    "matches and exceptions everywhere": ("a glue gun and a bath bomb " * 1_300)[:32_000],
    "look-alike letters": ("\u0261\u057dn \u0441\u0430\u0444\u0430\u0440\u0438 d\u00e9j\u00e0 vu " * 1_700)[
        :32_000
    ],
}
MODERATION_GOAL_MS = 50.0


def _checks(text: str) -> Callable[[], object]:
    words = word_list()
    return lambda: words.find(text)


def run(options: Options) -> list[Figure]:
    repeats = options.pick(3, 10)
    medians = {name: median_ms(samples(action, repeats)) for name, action in _cases().items()}
    say(f"method: median of {repeats} calls after one warm-up call (fonts, plugins)")
    say("; ".join(f"{name} {value:.1f} ms" for name, value in medians.items()))
    worst = max((value, name) for name, value in medians.items() if name.startswith("moderation"))
    return [
        Figure(
            f"moderation word list: the slowest 32,000-character prompt ({worst[1].split(': ')[1]})",
            worst[0],
            "ms",
            Goal(MODERATION_GOAL_MS),
        ),
        Figure(
            "preview engine: generate 256x256",
            medians["generate 256x256 (dall-e-2)"],
            "ms",
            Goal(SMALL_GOAL_MS),
        ),
        Figure(
            "preview engine: generate 1024x1024",
            medians["generate 1024x1024 (gpt-image-2)"],
            "ms",
            Goal(LARGE_GOAL_MS),
        ),
    ]
