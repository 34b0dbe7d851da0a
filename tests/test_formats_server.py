"""``ipyimagegen serve`` answers GIF and SVG requests through the official SDK: the bytes in
``b64_json``, ``output_format`` and ``size`` echoed, usage as for a PNG; streaming them is refused."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator

import openai
import pytest
from defusedxml.ElementTree import fromstring
from PIL import Image, ImageSequence

from fake_openai import sample_png
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.pngtext import gif_timing
from ipyimagegen.server import ServerThread, make_app

MODEL = "gpt-image-2.6-flare"


@pytest.fixture(scope="module")
def sdk() -> Iterator[openai.OpenAI]:
    with ServerThread(make_app(PreviewEngine())) as running:
        yield openai.OpenAI(base_url=running.base_url, api_key="local", max_retries=0)


def test_a_gif_comes_back_animated_with_the_frames_and_timing_asked_for(sdk: openai.OpenAI) -> None:
    answer = sdk.images.generate(
        model=MODEL,
        prompt="a paper boat on a night sea",
        output_format="gif",
        frame_count=5,
        frame_duration_ms=150,
    )
    assert answer.data is not None and answer.data[0].b64_json
    data = base64.b64decode(answer.data[0].b64_json)
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "GIF" and image.is_animated and image.n_frames == 5
        frames = [frame.convert("RGB").tobytes() for frame in ImageSequence.Iterator(image)]
    assert len(set(frames)) == 5
    assert gif_timing(data) == ([150] * 5, 0)
    assert (answer.output_format, answer.size, answer.background) == ("gif", "1024x1024", "opaque")
    assert answer.usage is not None and answer.usage.output_tokens > 0


def test_a_gif_without_frame_options_has_the_apis_defaults(sdk: openai.OpenAI) -> None:
    answer = sdk.images.generate(model="gpt-image-2.6-sunburst", prompt="a kite", output_format="gif")
    assert answer.data is not None and answer.data[0].b64_json
    assert gif_timing(base64.b64decode(answer.data[0].b64_json)) == ([200] * 9, 0)


def test_an_svg_comes_back_as_a_drawing_of_the_asked_size(sdk: openai.OpenAI) -> None:
    png = sdk.images.generate(model=MODEL, prompt="a lighthouse <b>at</b> dusk", size="1536x1024")
    answer = sdk.images.generate(
        model=MODEL, prompt="a lighthouse <b>at</b> dusk", size="1536x1024", output_format="svg"
    )
    assert answer.data is not None and answer.data[0].b64_json
    root = fromstring(base64.b64decode(answer.data[0].b64_json))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert (root.get("width"), root.get("height"), root.get("viewBox")) == ("1536", "1024", "0 0 1536 1024")
    assert (answer.output_format, answer.size) == ("svg", "1536x1024")
    assert answer.usage is not None and png.usage is not None
    assert answer.usage.output_tokens == png.usage.output_tokens


def test_an_edit_makes_a_gif_through_the_sdk(sdk: openai.OpenAI) -> None:
    answer = sdk.images.edit(
        model=MODEL, image=("photo.png", sample_png(), "image/png"), prompt="add a balloon", output_format="gif",
        frame_count=3,
    )  # fmt: skip
    assert answer.data is not None and answer.data[0].b64_json and answer.output_format == "gif"
    with Image.open(io.BytesIO(base64.b64decode(answer.data[0].b64_json))) as image:
        assert image.n_frames == 3


@pytest.mark.parametrize("output_format", ["gif", "svg"])
def test_streaming_a_gif_or_svg_is_refused(sdk: openai.OpenAI, output_format: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.images.generate(
            model=MODEL,
            prompt="a cat",
            output_format=output_format,
            stream=True,
            partial_images=1,  # type: ignore[arg-type]
        )
    assert caught.value.body["param"] == "partial_images"  # type: ignore[index]
