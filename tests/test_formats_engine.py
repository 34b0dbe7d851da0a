"""GIF and SVG from the offline preview engine: a looping animation of the scene, and the scene as a
vector drawing, deterministic like the PNGs, refused where the API refuses them."""

from __future__ import annotations

import io

import numpy as np
import pytest
from defusedxml.ElementTree import fromstring
from PIL import Image, ImageSequence

from ipyimagegen import imaging, svg
from ipyimagegen.api.types import InputImage
from ipyimagegen.engines.preview import (
    DEFAULT_FRAME_COUNT,
    DEFAULT_FRAME_DURATION_MS,
    LABEL,
    PreviewEngine,
    render_scene,
)
from ipyimagegen.errors import ValidationError
from ipyimagegen.pngtext import gif_timing

MODEL = "gpt-image-2.6-flare"
PROMPT = "a red kite over the sea under a golden sun"
HOSTILE = 'a cat <script>alert("x")</script> & a </text></svg><svg onload="alert(1)"> dog'
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def engine() -> PreviewEngine:
    return PreviewEngine()


def frames_of(data: bytes) -> list[np.ndarray]:
    with Image.open(io.BytesIO(data)) as image:
        return [np.asarray(frame.convert("RGBA")) for frame in ImageSequence.Iterator(image)]


# --- GIF -------------------------------------------------------------------------------------------


def test_a_gif_is_an_animated_loop_with_the_apis_defaults(engine: PreviewEngine) -> None:
    result = engine.generate(prompt=PROMPT, model=MODEL, output_format="gif")[0]
    assert result.mime_type == "image/gif" and result.data[:6] == b"GIF89a"
    frames = frames_of(result.data)
    assert len(frames) == DEFAULT_FRAME_COUNT == 9
    assert gif_timing(result.data) == ([DEFAULT_FRAME_DURATION_MS] * 9, 0)  # 200 ms each, looping forever
    assert len({frame.tobytes() for frame in frames}) == 9  # every frame differs: it moves
    assert result.metadata["frame_count"] == 9 and result.metadata["frame_duration_ms"] == 200
    with Image.open(io.BytesIO(result.data)) as image:
        assert image.size == (1024, 1024) and image.info["loop"] == 0


def test_frame_count_and_duration_are_those_asked_for(engine: PreviewEngine) -> None:
    result = engine.generate(
        prompt=PROMPT,
        model=MODEL,
        output_format="gif",
        frame_count=4,
        frame_duration_ms=120,
        size="1536x1024",
    )[0]
    assert gif_timing(result.data) == ([120, 120, 120, 120], 0)
    assert [frame.shape[:2] for frame in frames_of(result.data)] == [(1024, 1536)] * 4


def test_the_animation_is_a_gentle_loop_of_the_still_picture(engine: PreviewEngine) -> None:
    still = np.asarray(
        engine.generate(prompt=PROMPT, model=MODEL, seed=3)[0].to_pil().convert("RGB"), np.int16
    )
    gif = engine.generate(prompt=PROMPT, model=MODEL, seed=3, output_format="gif", frame_count=8)[0]
    frames = [frame[..., :3].astype(np.int16) for frame in frames_of(gif.data)]
    # the first frame is the still picture (in 255 colours), the others move a few shapes a little
    assert np.abs(frames[0] - still).mean() < 4
    changed = [float((np.abs(frame - frames[0]).max(axis=-1) > 40).mean()) for frame in frames[1:]]
    assert all(0.001 < part < 0.25 for part in changed), changed
    # and it comes back: the frames half way round are the farthest from the first, the last is near it
    assert max(changed) in changed[2:5] and changed[-1] < 0.75 * max(changed), changed


def test_gifs_are_deterministic(engine: PreviewEngine) -> None:
    first = engine.generate(prompt=PROMPT, model=MODEL, seed=11, output_format="gif", frame_count=3)[0]
    again = engine.generate(prompt=PROMPT, model=MODEL, seed=11, output_format="gif", frame_count=3)[0]
    other = engine.generate(prompt=PROMPT, model=MODEL, seed=12, output_format="gif", frame_count=3)[0]
    assert first.data == again.data and first.data != other.data


def test_a_transparent_gif_has_transparent_pixels(engine: PreviewEngine) -> None:
    result = engine.generate(prompt=PROMPT, model=MODEL, output_format="gif", background="transparent")[0]
    for frame in frames_of(result.data):
        alpha = frame[..., 3]
        assert (alpha == 0).mean() > 0.2 and (alpha == 255).any()


def test_a_gif_edit_moves_only_the_area_to_fill(engine: PreviewEngine) -> None:
    picture = Image.new("RGBA", (1024, 1024), (40, 90, 160, 255))
    picture.paste((0, 0, 0, 0), (256, 256, 768, 768))  # the hole is what the edit makes
    source = InputImage(imaging.to_png(picture), "hole.png", "image/png")
    result = engine.edit(image=source, prompt=PROMPT, model=MODEL, output_format="gif", frame_count=5)[0]
    frames = frames_of(result.data)
    assert len(frames) == 5 and gif_timing(result.data)[1] == 0
    inside = {frame[300:720, 300:720].tobytes() for frame in frames}
    outside = {np.concatenate([frame[:200].ravel(), frame[-200:].ravel()]).tobytes() for frame in frames}
    assert len(inside) == 5 and len(outside) == 1  # the kept pixels stay as they were in every frame
    assert tuple(frames[0][10, 10]) == (40, 90, 160, 255)


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"output_format": "gif", "partial_images": 2}, "partial_images"),
        ({"output_format": "gif", "frame_count": 17}, "frame_count"),
        ({"output_format": "png", "frame_count": 4}, "frame_count"),
        ({"output_format": "svg", "n": 2}, "n"),
        ({"output_format": "svg", "partial_images": 1}, "partial_images"),
    ],
)
def test_what_the_api_refuses_is_refused(engine: PreviewEngine, options: dict, param: str) -> None:
    with pytest.raises(ValidationError) as caught:
        engine.generate(prompt=PROMPT, model=MODEL, **options)
    assert caught.value.param == param


def test_a_gif_edit_cannot_have_a_mask(engine: PreviewEngine) -> None:
    picture = imaging.to_png(Image.new("RGB", (1024, 1024), "white"))
    mask = imaging.to_png(Image.new("RGBA", (1024, 1024), (0, 0, 0, 0)))
    with pytest.raises(ValidationError) as caught:
        engine.edit(image=picture, mask=mask, prompt=PROMPT, model=MODEL, output_format="gif")
    assert caught.value.param == "mask"


def test_a_gif_and_an_svg_cost_what_a_png_does(engine: PreviewEngine) -> None:
    png = engine.generate(prompt=PROMPT, model=MODEL, size="1536x1024")
    for output_format in ("gif", "svg"):
        other = engine.generate(prompt=PROMPT, model=MODEL, size="1536x1024", output_format=output_format)
        assert other.usage == png.usage and other.cost is not None and png.cost is not None
        assert other.cost.usd == png.cost.usd


def test_a_gifs_frames_share_one_palette_so_its_colours_do_not_flicker(engine: PreviewEngine) -> None:
    data = engine.generate(prompt=PROMPT, model=MODEL, output_format="gif", frame_count=4, seed=5)[0].data
    frames = frames_of(data)
    assert len(frames) == 4 and len({frame.tobytes() for frame in frames}) == 4
    colours = np.unique(np.concatenate([np.ascontiguousarray(frame).view(np.uint32) for frame in frames]))
    assert len(colours) <= 256  # the first frame's 255 colours (and transparency) serve them all


def test_only_the_models_that_take_them_make_them(engine: PreviewEngine) -> None:
    assert {"gif", "svg"} <= set(engine.spec_for("gpt-image-2.6-sunburst").output_formats)
    assert {"gif", "svg"} <= set(engine.spec_for(MODEL).output_formats)
    with pytest.raises(ValidationError) as caught:
        engine.generate(prompt=PROMPT, model="gpt-image-2.5-flare", output_format="gif")
    assert caught.value.param == "output_format"


# --- SVG -------------------------------------------------------------------------------------------


def test_an_svg_is_a_valid_document_of_the_asked_size(engine: PreviewEngine) -> None:
    result = engine.generate(prompt=PROMPT, model=MODEL, output_format="svg", size="1536x1024")[0]
    assert result.mime_type == "image/svg+xml" and result.metadata["size"] == "1536x1024"
    root = fromstring(result.data)
    assert root.tag == f"{SVG}svg"
    assert (root.get("width"), root.get("height"), root.get("viewBox")) == ("1536", "1024", "0 0 1536 1024")
    assert imaging.image_size(result.data) == (1536, 1024)
    kinds = {element.tag.removeprefix(SVG) for element in root.iter()}
    assert {"linearGradient", "rect", "ellipse", "text", "title"} <= kinds  # gradient, sun, shapes, caption
    texts = [element.text for element in root.iter(f"{SVG}text")]
    assert LABEL in texts and " ".join(t for t in texts if t != LABEL) == PROMPT
    assert root.find(f"{SVG}title").text == PROMPT  # type: ignore[union-attr]


def test_the_prompt_is_text_in_the_svg_never_markup(engine: PreviewEngine) -> None:
    result = engine.generate(prompt=HOSTILE + "\x07", model=MODEL, output_format="svg")[0]
    root = fromstring(result.data)
    tags = [element.tag for element in root.iter()]
    assert tags.count(f"{SVG}svg") == 1 and not [tag for tag in tags if "script" in tag]
    assert not any(name.startswith("on") for element in root.iter() for name in element.attrib)
    assert b"<script" not in result.data and b"&lt;script&gt;" in result.data
    assert root.find(f"{SVG}title").text == HOSTILE + "\ufffd"  # type: ignore[union-attr]


def test_the_svg_draws_the_scene_of_the_png(engine: PreviewEngine) -> None:
    """resvg's picture of the SVG and the engine's PNG of the same request look alike; another seed's do not."""
    png = engine.generate(prompt=PROMPT, model=MODEL, seed=21)[0]
    same = engine.generate(prompt=PROMPT, model=MODEL, seed=21, output_format="svg")[0]
    other = engine.generate(prompt=PROMPT, model=MODEL, seed=22, output_format="svg")[0]
    reference = np.asarray(png.to_pil().convert("RGB").resize((256, 256), Image.Resampling.BOX), np.float32)

    def distance(drawing: bytes) -> float:
        picture = svg.rasterise(drawing, 256).convert("RGB")
        return float(np.abs(np.asarray(picture, np.float32) - reference).mean())

    assert distance(same.data) < 6 < 3 * distance(same.data) < distance(other.data)


def test_svgs_are_deterministic_and_transparent_when_asked(engine: PreviewEngine) -> None:
    first = engine.generate(prompt=PROMPT, model=MODEL, seed=4, output_format="svg")[0]
    again = engine.generate(prompt=PROMPT, model=MODEL, seed=4, output_format="svg")[0]
    clear = engine.generate(
        prompt=PROMPT, model=MODEL, seed=4, output_format="svg", background="transparent"
    )[0]
    assert first.data == again.data
    assert b"linearGradient" in first.data and b"linearGradient" not in clear.data
    corner = svg.rasterise(clear.data, 128).getpixel((127, 0))
    assert isinstance(corner, tuple) and corner[3] == 0


def test_an_svg_edit_holds_the_edited_picture(engine: PreviewEngine) -> None:
    picture = Image.new("RGBA", (1024, 1024), (200, 30, 30, 255))
    picture.paste((0, 0, 0, 0), (0, 0, 512, 512))
    source = InputImage(imaging.to_png(picture), "hole.png", "image/png")
    result = engine.edit(image=source, prompt=PROMPT, model=MODEL, output_format="svg")[0]
    root = fromstring(result.data)
    (embedded,) = [element for element in root.iter(f"{SVG}image")]
    assert embedded.get("href", "").startswith("data:image/png;base64,")
    drawn = svg.rasterise(result.data, 1024)
    assert drawn.size == (1024, 1024) and drawn.getpixel((900, 900)) == (200, 30, 30, 255)
    assert drawn.getpixel((100, 100)) != (0, 0, 0, 0)  # the hole was filled


def test_render_scene_at_phase_zero_is_the_still_picture() -> None:
    still = render_scene(PROMPT, (256, 256), 9)
    assert still.tobytes() == render_scene(PROMPT, (256, 256), 9, phase=0.0).tobytes()
    assert still.tobytes() != render_scene(PROMPT, (256, 256), 9, phase=0.25).tobytes()
