"""Client overhead: the project's OpenAIClient against the official ``openai`` package.

Both send the same generate, edit and variation calls (dall-e-2, 256x256, b64_json) to the same
local server on 127.0.0.1 (in a process of its own), whose backend answers at once with a stored PNG, and both end with
the image's bytes (the official client's base64 is decoded, as the project's client does).
Calls alternate between the two clients, so drift in the machine's speed hits both alike; the
first calls are warm-up and not counted. The toolkit's edit is its public ``edit()``: the mask
is made into the API's form there (the official client sends what it is given), so that work is
in its figure.
"""

from __future__ import annotations

import base64
import statistics
import time
from collections.abc import Callable

import numpy as np

from ipyimagegen.api.client import OpenAIClient
from ipyimagegen.api.types import InputImage
from ipyimagegen.masks import to_png as mask_to_png

from .fixtures import PROMPT, photo_like_png, served
from .report import RATIO, Figure, Goal, Options, median_ms, say

SIDE = 256
SIZE = f"{SIDE}x{SIDE}"
MODEL = "dall-e-2"
API_KEY = "sk-bench-not-a-real-key"

Call = Callable[[], bytes]


def _square_rgba_png(side: int) -> bytes:
    """A dall-e-2 edit input: a square RGBA PNG."""
    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    Image.open(BytesIO(photo_like_png(side))).convert("RGBA").save(buffer, format="PNG")
    return buffer.getvalue()


def _centre_mask(side: int) -> bytes:
    regenerate = np.zeros((side, side), dtype=bool)
    regenerate[side // 4 : 3 * side // 4, side // 4 : 3 * side // 4] = True
    return mask_to_png(regenerate)


def _toolkit_calls(client: OpenAIClient, image: bytes, mask: bytes) -> dict[str, Call]:
    upload, mask_upload = InputImage(image, "image.png"), InputImage(mask, "mask.png")
    return {
        "generate": lambda: client.generate(prompt=PROMPT, model=MODEL, size=SIZE, n=1)[0].data,
        "edit": lambda: (
            client.edit(image=upload, mask=mask_upload, prompt=PROMPT, model=MODEL, size=SIZE)[0].data
        ),
        "variation": lambda: client.create_variation(image=upload, model=MODEL, size=SIZE, n=1)[0].data,
    }


def _official_calls(client: object, image: bytes, mask: bytes) -> dict[str, Call]:
    images = client.images  # type: ignore[attr-defined]
    upload, mask_upload = ("image.png", image, "image/png"), ("mask.png", mask, "image/png")

    def decoded(response: object) -> bytes:
        return base64.b64decode(response.data[0].b64_json)  # type: ignore[attr-defined]

    return {
        "generate": lambda: decoded(
            images.generate(prompt=PROMPT, model=MODEL, size=SIZE, n=1, response_format="b64_json")
        ),
        "edit": lambda: decoded(
            images.edit(
                image=upload,
                mask=mask_upload,
                prompt=PROMPT,
                model=MODEL,
                size=SIZE,
                n=1,
                response_format="b64_json",
            )
        ),
        "variation": lambda: decoded(
            images.create_variation(image=upload, model=MODEL, size=SIZE, n=1, response_format="b64_json")
        ),
    }


def _measure(call: Call, wall: list[float], cpu: list[float]) -> None:
    """Append the wall time and this process's CPU time of one call (the server runs elsewhere)."""
    cpu_started, started = time.process_time(), time.perf_counter()
    call()
    wall.append(time.perf_counter() - started)
    cpu.append(time.process_time() - cpu_started)


def run(options: Options) -> list[Figure]:
    import openai

    repeats, warmup = options.pick(40, 300), options.pick(5, 20)
    image, mask = _square_rgba_png(SIDE), _centre_mask(SIDE)
    say(
        f"method: the same {MODEL} {SIZE} calls from both clients to one local server in its own process "
        "(instant backend), "
        f"alternating; median of {repeats} calls each after {warmup} warm-up calls; both end with image bytes"
    )
    figures = []
    with served() as base_url:
        toolkit = OpenAIClient(base_url=base_url, api_key=API_KEY)
        official = openai.OpenAI(base_url=base_url, api_key=API_KEY)
        ours, theirs = _toolkit_calls(toolkit, image, mask), _official_calls(official, image, mask)
        try:
            for endpoint in ours:
                if ours[endpoint]() != theirs[endpoint]():
                    raise RuntimeError(f"The two clients got different images from {endpoint}.")
                for _ in range(warmup):
                    ours[endpoint]()
                    theirs[endpoint]()
                mine, peer, mine_cpu, peer_cpu = [], [], [], []
                for _ in range(repeats):
                    _measure(ours[endpoint], mine, mine_cpu)
                    _measure(theirs[endpoint], peer, peer_cpu)
                say(
                    f"{endpoint}: wall median {median_ms(mine):.2f} ms vs {median_ms(peer):.2f} ms "
                    f"(best {min(mine) * 1000:.2f} vs {min(peer) * 1000:.2f}); client CPU median "
                    f"{median_ms(mine_cpu):.2f} ms vs {median_ms(peer_cpu):.2f} ms (OpenAIClient vs openai)"
                )
                figures.append(
                    Figure(
                        f"client {endpoint}: OpenAIClient vs openai, ms/call",
                        median_ms(mine),
                        "ms",
                        Goal(1.0, on=RATIO, compare="<="),
                        peer=median_ms(peer),
                    )
                )
        finally:
            toolkit.close()
            official.close()
    typical = statistics.median(f.ratio or 0 for f in figures)
    say(f"median ratio over the three endpoints: {typical:.3f}")
    return figures
