"""Client overhead: the project's OpenAIClient against the official ``openai`` package.

Both send the same generate, edit and variation calls (dall-e-2, 256x256, b64_json) to the same
local server on 127.0.0.1 (in a process of its own), whose backend answers at once with a stored PNG, and both end with
the image's bytes (the official client's base64 is decoded, as the project's client does).
Calls alternate between the two clients, so drift in the machine's speed hits both alike; the
first calls are warm-up and not counted. The toolkit's calls are its public ``edit()`` and
``create_variation()`` with the files as bytes, as users pass them: the toolkit checks and
prepares them for the model there (the official client sends what it is given), so that work is
in its figures. Edits are measured too the other ways users pass pictures, at 256x256 (dall-e-2)
and 1024x1024 (gpt-image-2, a photo-like PNG): a path (the official client gets the same path)
and a PIL image (the official client gets the PNG bytes a user would have to make from it first,
their encoding counted). Edits at 1024x1024 and 3840x2160 (gpt-image-2) are measured too with a
mask the user made elsewhere: an RGBA PNG saved by Pillow, as an image editor saves one, without
the chunk that marks the toolkit's own masks (so the toolkit checks it before sending it), beside
the toolkit's own mask; the official client sends the same mask file.
"""

from __future__ import annotations

import base64
import statistics
import tempfile
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

import numpy as np

from ipyimagegen.api.client import OpenAIClient
from ipyimagegen.api.types import InputImage
from ipyimagegen.imaging import prepare_mask
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


def _centre(width: int, height: int) -> np.ndarray:
    """True in the middle half of each side: the area to regenerate."""
    regenerate = np.zeros((height, width), dtype=bool)
    regenerate[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = True
    return regenerate


def _centre_mask(side: int, height: int | None = None) -> bytes:
    """The toolkit's own mask file (it carries the chunk that says so)."""
    return mask_to_png(_centre(side, height or side))


def _editor_mask(width: int, height: int) -> bytes:
    """A mask made elsewhere: an RGBA PNG saved by Pillow (black, the centre transparent), no marker chunk."""
    from PIL import Image

    rgba = np.zeros((height, width, 4), dtype=np.uint8)
    rgba[..., 3] = np.where(_centre(width, height), 0, 255)
    buffer = BytesIO()
    Image.fromarray(rgba).save(buffer, format="PNG")
    return buffer.getvalue()


def _toolkit_calls(client: OpenAIClient, image: bytes, mask: bytes) -> dict[str, Call]:
    return {
        "generate": lambda: client.generate(prompt=PROMPT, model=MODEL, size=SIZE, n=1)[0].data,
        "edit": lambda: client.edit(image=image, mask=mask, prompt=PROMPT, model=MODEL, size=SIZE)[0].data,
        "variation": lambda: client.create_variation(image=image, model=MODEL, size=SIZE, n=1)[0].data,
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


EDIT_CASES = (("dall-e-2", 256), ("gpt-image-2", 1024))


def _edit_pairs(toolkit: OpenAIClient, official: object, folder: Path) -> dict[str, tuple[Call, Call]]:
    """(toolkit, official) edit calls for each way of passing the picture, at each size."""
    pairs: dict[str, tuple[Call, Call]] = {}
    for model, side in EDIT_CASES:
        pairs.update(_edit_pairs_at(toolkit, official, folder, model, side))
    return pairs


def _edit_pairs_at(
    toolkit: OpenAIClient, official: object, folder: Path, model: str, side: int
) -> dict[str, tuple[Call, Call]]:
    from PIL import Image

    images = official.images  # type: ignore[attr-defined]
    picture = _square_rgba_png(side) if model == "dall-e-2" else photo_like_png(side)
    mask = _centre_mask(side)
    size = f"{side}x{side}"
    extra = {"response_format": "b64_json"} if model == "dall-e-2" else {}
    path = folder / f"picture-{side}.png"
    path.write_bytes(picture)
    pil = Image.open(BytesIO(picture))
    pil.load()

    def ours(source: object) -> bytes:
        return toolkit.edit(image=source, mask=mask, prompt=PROMPT, model=model, size=size)[0].data

    def theirs(file: object) -> bytes:
        mask_file = ("mask.png", mask, "image/png")
        answer = images.edit(image=file, mask=mask_file, prompt=PROMPT, model=model, size=size, **extra)
        return base64.b64decode(answer.data[0].b64_json)

    def encoded_pil() -> tuple[str, bytes, str]:
        buffer = BytesIO()
        pil.save(buffer, format="PNG")
        return ("image.png", buffer.getvalue(), "image/png")

    label = f"{side}x{side} {model}"
    return {
        f"{label}, bytes": (lambda: ours(picture), lambda: theirs(("image.png", picture, "image/png"))),
        f"{label}, path": (lambda: ours(str(path)), lambda: theirs(path)),
        f"{label}, PIL image": (lambda: ours(pil), lambda: theirs(encoded_pil())),
    }


MASK_CASES = ((1024, 1024), (3840, 2160))


def _mask_pairs(toolkit: OpenAIClient, official: object) -> dict[str, tuple[Call, Call]]:
    """(toolkit, official) gpt-image-2 edits of a photo-like PNG passed as bytes, with a mask made
    elsewhere and (at 3840x2160; the 1024x1024 "bytes" edit has it) the toolkit's own mask."""
    images = official.images  # type: ignore[attr-defined]
    pairs: dict[str, tuple[Call, Call]] = {}
    for width, height in MASK_CASES:
        picture, size = photo_like_png(width, height), f"{width}x{height}"
        made = {"mask from Pillow": _editor_mask(width, height)}
        if (width, height) != (1024, 1024):
            made = {"bytes": _centre_mask(width, height), **made}
        for what, mask in made.items():

            def ours(mask: bytes = mask, picture: bytes = picture, size: str = size) -> bytes:
                answer = toolkit.edit(image=picture, mask=mask, prompt=PROMPT, model="gpt-image-2", size=size)
                return answer[0].data

            def theirs(mask: bytes = mask, picture: bytes = picture, size: str = size) -> bytes:
                answer = images.edit(
                    image=("image.png", picture, "image/png"),
                    mask=("mask.png", mask, "image/png"),
                    prompt=PROMPT,
                    model="gpt-image-2",
                    size=size,
                )
                return base64.b64decode(answer.data[0].b64_json)

            pairs[f"{size} gpt-image-2, {what}"] = (ours, theirs)
    return pairs


def _mask_check_ms(width: int, height: int, repeats: int) -> float:
    """The median time of preparing a mask made elsewhere for its image (the toolkit's check alone)."""
    image = InputImage.from_bytes(_centre_mask(width, height))  # any PNG of the size: only its header is read
    mask, times = _editor_mask(width, height), []
    for _ in range(repeats):
        started = time.perf_counter()
        prepare_mask(mask, image)
        times.append(time.perf_counter() - started)
    return median_ms(times)


def _side_by_side(
    ours: Call, theirs: Call, repeats: int, warmup: int
) -> tuple[list[float], list[float], list[float], list[float]]:
    for _ in range(warmup):
        ours()
        theirs()
    mine, peer, mine_cpu, peer_cpu = [], [], [], []
    for _ in range(repeats):
        _measure(ours, mine, mine_cpu)
        _measure(theirs, peer, peer_cpu)
    return mine, peer, mine_cpu, peer_cpu


def _versus_openai(name: str, mine: list[float], peer: list[float]) -> Figure:
    return Figure(name, median_ms(mine), "ms", Goal(1.0, on=RATIO, compare="<="), peer=median_ms(peer))


def run(options: Options) -> list[Figure]:
    import openai

    repeats, warmup = options.pick(40, 300), options.pick(5, 20)
    edit_repeats = options.pick(8, 40)
    image, mask = _square_rgba_png(SIDE), _centre_mask(SIDE)
    say(
        f"method: the same {MODEL} {SIZE} calls from both clients to one local server in its own process "
        "(instant backend), "
        f"alternating; median of {repeats} calls each after {warmup} warm-up calls ({edit_repeats} for the edits "
        "passed as bytes, paths and PIL images); both end with image bytes"
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
                    _versus_openai(f"client {endpoint}: OpenAIClient vs openai, ms/call", mine, peer)
                )
            with tempfile.TemporaryDirectory(prefix="ipyimagegen-bench-edit-") as folder:
                for label, (ours_edit, theirs_edit) in _edit_pairs(toolkit, official, Path(folder)).items():
                    mine, peer, _, _ = _side_by_side(ours_edit, theirs_edit, edit_repeats, 3)
                    say(f"edit, {label}: wall median {median_ms(mine):.2f} ms vs {median_ms(peer):.2f} ms")
                    figures.append(_versus_openai(f"client edit {label}: vs openai, ms/call", mine, peer))
            for width, height in MASK_CASES:
                say(
                    f"mask from Pillow, {width}x{height}: prepare_mask alone, median "
                    f"{_mask_check_ms(width, height, edit_repeats):.2f} ms"
                )
            for label, (ours_edit, theirs_edit) in _mask_pairs(toolkit, official).items():
                mine, peer, _, _ = _side_by_side(ours_edit, theirs_edit, edit_repeats, 3)
                say(f"edit, {label}: wall median {median_ms(mine):.2f} ms vs {median_ms(peer):.2f} ms")
                figures.append(_versus_openai(f"client edit {label}: vs openai, ms/call", mine, peer))
        finally:
            toolkit.close()
            official.close()
    typical = statistics.median(f.ratio or 0 for f in figures)
    say(f"median ratio over all client figures: {typical:.3f}")
    return figures
