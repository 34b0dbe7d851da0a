"""The hostile corpus: bad input of every kind, in Python, in the widgets and on the server, and faults of
the network. Each case asserts the exact error its user sees: the exception's text (and which parameter),
the widget's status line, or the server's status and error JSON. Nothing is lost on the way: the widget
keeps its picture and prompt, the server answers every case with the API's error shape."""

from __future__ import annotations

import html
import io
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import requests
from PIL import Image

from edit_helpers import RecordingPreviewEngine, picture, png_bytes, upload_entry
from fake_api_server import FakeImagesAPI, Reply
from ipyimagegen.api import (
    APIConnectionError,
    APITimeoutError,
    ConfigurationError,
    ContentPolicyError,
    ImageInputError,
    InternalServerError,
    ModelShutDownError,
    RateLimitError,
    ValidationError,
    describe_error,
)
from ipyimagegen.api.client import OpenAIClient
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.server import ServerThread, make_app
from ipyimagegen.server.config import ServerConfig
from ipyimagegen.session import JobRunner
from ipyimagegen.widgets.edit_tab import EditTab
from ipyimagegen.widgets.result_grid import ResultGrid
from ipyimagegen.widgets.studio import Studio
from widget_helpers import WAIT_S

KEY = "sk-hostile-0123456789abcdefSECRET"
GPT2_SIZES = (
    "size must be one of '1024x1024', '1536x1024', '1024x1536', '1536x864', '864x1536', '2048x2048', "
    "'2048x1152', '1152x2048', '2560x1440', '1440x2560', '3840x2160', '2160x3840', 'auto', or any size with "
    "both sides multiples of 16, long edge at most 3840, ratio within 1:3 to 3:1, 655,360 to 8,294,400 "
    "pixels for gpt-image-2, got "
)
SERVED = "gpt-image-2.6-flare, gpt-image-2.6-sunburst, gpt-image-2.5-flare, gpt-image-2.5-sunburst, gpt-image-2, dall-e-3, dall-e-2"


# --- files that are not what they claim ---------------------------------------------------------


def png(size: tuple[int, int] = (256, 256), mode: str = "RGBA", colour: Any = (0, 0, 0, 255)) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def jpeg(size: tuple[int, int] = (256, 256)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (120, 30, 30)).save(buffer, "JPEG")
    return buffer.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A PNG signature and header claiming ``width`` x ``height``, then garbage instead of pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + header + struct.pack(">I", zlib.crc32(b"IHDR" + header))
    return b"\x89PNG\r\n\x1a\n" + chunk + b"\x00" * 30


def odd_mode(mode: str) -> bytes:
    """A PNG, TIFF or JPEG in a mode people meet less often (16-bit grey, palette, CMYK...)."""
    buffer = io.BytesIO()
    if mode == "I;16":
        Image.fromarray(np.full((64, 64), 40_000, np.uint16)).save(buffer, "PNG")
    elif mode == "P":
        image = Image.new("P", (64, 64), 3)
        image.info["transparency"] = 3
        image.save(buffer, "PNG", transparency=3)
    elif mode == "CMYK":
        Image.new("CMYK", (64, 64), (0, 200, 200, 0)).save(buffer, "JPEG")
    elif mode == "LA":
        Image.new("LA", (64, 64), (128, 0)).save(buffer, "PNG")
    else:
        Image.new(mode, (64, 64)).save(buffer, "TIFF")
    return buffer.getvalue()


# --- the Python API -------------------------------------------------------------------------------

engine = PreviewEngine()


def edit(**kwargs: Any) -> Callable[[], Any]:
    return lambda: engine.edit(**{"prompt": "a fox", "model": "gpt-image-2", **kwargs})


def generate(**kwargs: Any) -> Callable[[], Any]:
    return lambda: engine.generate(**{"prompt": "a fox", "model": "gpt-image-2", **kwargs})


@dataclass
class PythonCase:
    call: Callable[[], Any]
    error: type[Exception]
    message: str
    param: str | None = None


PYTHON_CASES = {
    "empty image bytes": PythonCase(
        edit(image=b""),
        ImageInputError,
        "The image cannot be used: the image file is empty (0 bytes).",
        "image",
    ),
    "text instead of an image": PythonCase(
        edit(image=b"hello, not a picture"),
        ImageInputError,
        "The image cannot be used: this file is text, not an image.",
        "image",
    ),
    "a PDF": PythonCase(
        edit(image=b"%PDF-1.4 a document"),
        ImageInputError,
        "The image cannot be used: this file is a PDF document, not an image.",
        "image",
    ),
    "a truncated PNG": PythonCase(
        edit(image=png()[:70]),
        ImageInputError,
        "The image cannot be used: the image file is incomplete: it ends before the picture does "
        "(Truncated File Read).",
        "image",
    ),
    "a PNG whose pixels are garbage": PythonCase(
        edit(image=png_header(64, 64)),
        ImageInputError,
        "The image cannot be used: this PNG file is damaged: its picture cannot be read.",
        "image",
    ),
    "a 0x0 PIL image": PythonCase(
        edit(image=Image.new("RGB", (0, 0))),
        ImageInputError,
        "The image cannot be used: the image is 0x0 pixels, so there is no picture in it.",
        "image",
    ),
    "an empty array": PythonCase(
        edit(image=np.zeros((0, 0, 3), np.uint8)),
        ImageInputError,
        "The image cannot be used: the image array is empty.",
        "image",
    ),
    "a decompression bomb": PythonCase(
        edit(image=png_header(100_000, 100_000)),
        ImageInputError,
        "The image cannot be used: the image is 100000x100000 (10000 megapixels); ipyimagegen opens images "
        "of at most 50 megapixels.",
        "image",
    ),
    "a number as the image": PythonCase(
        edit(image=12345),
        ImageInputError,
        "The image cannot be used: cannot read an image from a int.",
        "image",
    ),
    "a float array out of 0..1": PythonCase(
        edit(image=np.full((8, 8, 3), 2.0)),
        ImageInputError,
        "The image cannot be used: a float image array must hold values from 0 to 1.",
        "image",
    ),
    "a NaN array": PythonCase(
        edit(image=np.full((8, 8, 3), np.nan)),
        ImageInputError,
        "The image cannot be used: a float image array must hold values from 0 to 1.",
        "image",
    ),
    "a 5-channel array": PythonCase(
        edit(image=np.zeros((8, 8, 5), np.uint8)),
        ImageInputError,
        "The image cannot be used: an image array must be HxW, HxWx3 (RGB) or HxWx4 (RGBA); this one is (8, 8, 5).",
        "image",
    ),
    "a path that does not exist": PythonCase(
        edit(image="/no/such/picture.png"),
        ImageInputError,
        "The image cannot be used: there is no file '/no/such/picture.png'.",
        "image",
    ),
    "a mask that is not an image": PythonCase(
        lambda: engine.edit(
            image=png(), mask=b"\xff\xd8\xff\xe0" + b"0" * 50, prompt="a fox", model="dall-e-2"
        ),
        ImageInputError,
        "The mask cannot be used: the image file is damaged (Truncated File Read).",
        "mask",
    ),
    "the second of two images broken": PythonCase(
        edit(image=[png(), b"oops"]),
        ImageInputError,
        "The image 2 of 2 cannot be used: this file is text, not an image.",
        "image",
    ),
    "17 input images": PythonCase(
        edit(image=[png()] * 17),
        ValidationError,
        "gpt-image-2 takes at most 16 input image(s), got 17.",
        "image",
    ),
    "an opaque dall-e-2 picture and no mask": PythonCase(
        lambda: engine.edit(image=png(), prompt="a fox", model="dall-e-2"),
        ValidationError,
        "dall-e-2 edits the transparent part of the image, and this image has none: send a mask whose "
        "transparent pixels mark the area to change, or erase that area to transparency.",
        "mask",
    ),
    "an empty prompt": PythonCase(
        generate(prompt=""), ValidationError, "The prompt is empty: describe the image you want.", "prompt"
    ),
    "a blank prompt": PythonCase(
        generate(prompt=" \n\t"),
        ValidationError,
        "The prompt is empty: describe the image you want.",
        "prompt",
    ),
    "a prompt that is a number": PythonCase(
        generate(prompt=42), ValidationError, "The prompt must be text (a string), got int 42.", "prompt"
    ),
    "a lone surrogate in the prompt": PythonCase(
        generate(prompt="a \udc80 fox"),
        ValidationError,
        "The prompt holds \\udc80 at character 3, half of a character pair that is not valid text: "
        "retype or remove it.",
        "prompt",
    ),
    "a prompt too long": PythonCase(
        generate(prompt="a" * 1001, model="dall-e-2"),
        ValidationError,
        "The prompt has 1001 characters; dall-e-2 takes at most 1000. Shorten it.",
        "prompt",
    ),
    "n = 0": PythonCase(
        generate(n=0), ValidationError, "n must be a whole number of at least 1, got 0.", "n"
    ),
    "n = 11": PythonCase(
        generate(n=11),
        ValidationError,
        "n must be between 1 and 10 for gpt-image-2, got 11: ask for fewer, or send several requests.",
        "n",
    ),
    "n as text": PythonCase(
        generate(n="2"), ValidationError, "n must be a whole number of at least 1, got '2'.", "n"
    ),
    "n = True": PythonCase(
        generate(n=True), ValidationError, "n must be a whole number of at least 1, got True.", "n"
    ),
    "size 00x00": PythonCase(
        generate(model="dall-e-2", size="00x00"),
        ValidationError,
        "size must be one of '256x256', '512x512', '1024x1024' for dall-e-2, got '00x00'.",
        "size",
    ),
    "size as a number": PythonCase(generate(size=1024), ValidationError, GPT2_SIZES + "1024.", "size"),
    "size too large": PythonCase(
        generate(size="3840x3840"), ValidationError, GPT2_SIZES + "'3840x3840'.", "size"
    ),
    "an unknown quality": PythonCase(
        generate(quality="ultra"),
        ValidationError,
        "quality must be one of 'auto', 'low', 'medium', 'high' for gpt-image-2, got 'ultra'.",
        "quality",
    ),
    "output_compression 101": PythonCase(
        generate(output_format="jpeg", output_compression=101),
        ValidationError,
        "output_compression must be a whole number from 0 to 100, got 101.",
        "output_compression",
    ),
    "a transparent JPEG": PythonCase(
        generate(model="gpt-image-2.6-flare", background="transparent", output_format="jpeg"),
        ValidationError,
        "A transparent background needs output_format 'png' or 'webp' (JPEG has no transparency).",
        "background",
    ),
    "partial_images 9": PythonCase(
        generate(partial_images=9),
        ValidationError,
        "partial_images must be from 0 to 3, got 9.",
        "partial_images",
    ),
    "response_format for a GPT image model": PythonCase(
        generate(response_format="url"),
        ValidationError,
        "gpt-image-2 always returns base64 images: leave response_format unset.",
        "response_format",
    ),
    "a model that is a number": PythonCase(
        generate(model=5), ValidationError, "model must be a model name, got 5.", "model"
    ),
    "two SVG drawings in one request": PythonCase(
        generate(model="gpt-image-2.6-flare", output_format="svg", n=2),
        ValidationError,
        "SVG output makes one image per request (n=1), got n=2.",
        "n",
    ),
    "a variation from a model without them": PythonCase(
        lambda: engine.create_variation(image=png(), model="gpt-image-2"),
        ValidationError,
        "gpt-image-2 does not do variations. Models that do: 'dall-e-2'.",
        "model",
    ),
    "a model OpenAI shut down": PythonCase(
        lambda: OpenAIClient(api_key=KEY).generate(prompt="a fox", model="gpt-image-1"),
        ModelShutDownError,
        "gpt-image-1 was shut down on 2026-10-23: use gpt-image-2.5-sunburst or gpt-image-2.5-flare instead.",
        "model",
    ),
    "a negative timeout": PythonCase(
        generate(timeout=-1), ConfigurationError, "timeout must be a positive number of seconds, got -1."
    ),
    "a timeout as text": PythonCase(
        lambda: OpenAIClient(api_key=KEY, timeout="10"),  # type: ignore[arg-type]
        ConfigurationError,
        "timeout must be seconds (a number) or a (connect, read) pair of seconds, got '10'.",
    ),
}


@pytest.mark.parametrize("case", PYTHON_CASES.values(), ids=PYTHON_CASES.keys())
def test_bad_input_in_python_raises_a_typed_error_that_says_what_to_do(case: PythonCase) -> None:
    with pytest.raises(case.error) as caught:
        case.call()
    assert str(caught.value) == case.message
    assert getattr(caught.value, "param", None) == case.param
    assert KEY not in describe_error(caught.value)


@pytest.mark.parametrize("mode", ["I;16", "P", "CMYK", "LA", "1"])
def test_odd_image_modes_are_edited_not_refused(mode: str) -> None:
    result = engine.edit(image=odd_mode(mode), prompt="a fox", model="gpt-image-2")
    assert Image.open(io.BytesIO(result[0].data)).size == (64, 64)


def test_a_mask_of_another_size_is_scaled_to_its_image() -> None:
    mask = np.zeros((128, 128), dtype=bool)
    mask[:64] = True  # the top half, at half the image's size
    result = engine.edit(
        image=png(colour=(0, 0, 255, 255)), mask=mask, prompt="a red fox", model="dall-e-2", size="256x256"
    )
    pixels = np.asarray(Image.open(io.BytesIO(result[0].data)).convert("RGB"))
    assert pixels.shape == (256, 256, 3)
    assert (pixels[140:] == (0, 0, 255)).all() and not (pixels[:100] == (0, 0, 255)).all()


def test_a_gallery_keeps_a_prompt_with_a_lone_surrogate_readably(tmp_path) -> None:
    from ipyimagegen.api.types import GeneratedImage, GenerateRequest
    from ipyimagegen.gallery import Gallery

    with Gallery(tmp_path) as gallery:
        request = GenerateRequest(prompt="a \ud800 fox", model="dall-e-2")
        item = gallery.save(GeneratedImage(data=png(), request=request))
        assert gallery.get(item.id).prompt == "a \ufffd fox"  # stored as text, the broken half replaced


# --- the widgets ----------------------------------------------------------------------------------

WIDGET_UPLOADS = {
    "notes.txt": (b"just some text", "notes.txt: This file is text, not an image. Use an image file: "),
    "doc.pdf": (b"%PDF-1.4 x", "doc.pdf: This file is a PDF document, not an image. Use an image file: "),
    "a.zip": (b"PK\x03\x04abc", "a.zip: This file is a ZIP archive (or an Office document), not an image."),
    "bomb.png": (
        png_header(100_000, 100_000),
        "bomb.png: The image is 100000x100000 (10000 megapixels); ipyimagegen opens images of at most 50 "
        "megapixels. Scale it down (to at most 7071x7071, say) in an image editor first.",
    ),
    "broken.png": (
        png_header(64, 64),
        "broken.png: This PNG file is damaged: its picture cannot be read. Export or download the image "
        "again, then retry.",
    ),
    "cut.png": (
        png_bytes(picture(64, 64))[:200],
        "cut.png: The image file is incomplete: it ends before the picture does (image file is truncated). "
        "Export or download the image again, then retry.",
    ),
    "empty.png": (
        b"",
        "empty.png: The image file is empty (0 bytes). The upload or download failed: get the file again.",
    ),
}


@pytest.mark.parametrize("name", WIDGET_UPLOADS)
def test_a_bad_upload_in_the_edit_tab_says_why_and_keeps_the_picture(name: str) -> None:
    data, told = WIDGET_UPLOADS[name]
    tab = EditTab(RecordingPreviewEngine(), JobRunner(), ResultGrid())
    tab.use_image(picture(64, 48))
    tab.upload.receive([upload_entry(name, data)])
    assert tab.upload.problem.value.startswith(html.escape(told, quote=False))  # beside the upload button
    assert tab.painter.image.size == (64, 48)
    tab.close()


@pytest.mark.parametrize(
    ("prompt", "told"),
    [
        (
            "a \ud800 fox",
            "The prompt holds \\ud800 at character 3, half of a character pair that is not valid text: retype or remove it.",
        ),
        ("  \n ", "The prompt is empty: describe the image you want."),
    ],
    ids=["lone surrogate", "blank"],
)
def test_a_bad_prompt_in_the_studio_says_why_and_keeps_the_prompt(prompt: str, told: str) -> None:
    studio = Studio(PreviewEngine())
    tab = studio.generate_tab
    tab.prompt_box.textarea.value = prompt
    tab.controls.run_button.click()
    assert studio.runner.wait(WAIT_S)
    assert tab.prompt_box.problem.value == html.escape(told, quote=False)  # under the prompt
    assert tab.status.value == '<span class="ipyimagegen-error">Not sent: see the prompt.</span>'
    assert tab.prompt_box.textarea.value == prompt and studio.grid.tiles == []
    studio.close()


# --- the server -----------------------------------------------------------------------------------

JSON = {"Content-Type": "application/json"}


@dataclass
class ServerCase:
    route: str
    send: dict[str, Any]
    status: int
    message: str
    param: str | None = None
    code: str | None = "invalid_value"
    method: str = "POST"
    type: str = "invalid_request_error"


def files(*parts: tuple[str, bytes], **fields: str) -> dict[str, Any]:
    sent: list[tuple[str, Any]] = [(name, (None, value)) for name, value in fields.items()]
    sent += [(name, (f"{name.strip('[]')}.png", data, "image/png")) for name, data in parts]
    return {"files": sent}


SERVER_CASES = {
    "a JSON array": ServerCase(
        "images/generations", {"data": "[1, 2]", "headers": JSON}, 400,
        "The body must be a JSON object of parameters, got an array.", code=None,
    ),
    "malformed JSON": ServerCase(
        "images/generations", {"data": '{"prompt": "a", ', "headers": JSON}, 400,
        "We could not parse the JSON body of your request: send a JSON object of parameters with "
        "'Content-Type: application/json'.", code=None,
    ),
    "an empty body": ServerCase(
        "images/generations", {"data": "", "headers": JSON}, 400,
        "We could not parse the JSON body of your request: send a JSON object of parameters with "
        "'Content-Type: application/json'.", code=None,
    ),
    "JSON nested 100,000 deep": ServerCase(
        "images/generations",
        {"data": '{"prompt": "a", "svg": ' + "[" * 100_000 + "]" * 100_000 + "}", "headers": JSON},
        400, "The JSON body is nested too deeply to read: send a flat object of parameters.", code=None,
    ),
    "a lone surrogate": ServerCase(
        "images/generations", {"data": '{"prompt": "\\ud800 x"}', "headers": JSON}, 400,
        "The prompt holds \\ud800 at character 1, half of a character pair that is not valid text: "
        "retype or remove it.", "prompt",
    ),
    "an unknown parameter": ServerCase(
        "images/generations", {"json": {"prompt": "a", "colour": "red"}}, 400,
        "Unknown parameter: 'colour'.", "colour", "unknown_parameter",
    ),
    "n as a string": ServerCase(
        "images/generations", {"json": {"prompt": "a", "n": "2"}}, 400,
        "Invalid type for 'n': expected an integer, but got a string instead.", "n", "invalid_type",
    ),
    "n as a decimal": ServerCase(
        "images/generations", {"json": {"prompt": "a", "n": 1.5}}, 400,
        "Invalid type for 'n': expected an integer, but got a decimal number instead.", "n", "invalid_type",
    ),
    "n = 0": ServerCase(
        "images/generations", {"json": {"prompt": "a", "n": 0}}, 400,
        "n must be a whole number of at least 1, got 0.", "n",
    ),
    "no prompt": ServerCase(
        "images/generations", {"json": {"model": "dall-e-2"}}, 400,
        "Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter",
    ),
    "a prompt that is a number": ServerCase(
        "images/generations", {"json": {"prompt": 7}}, 400,
        "Invalid type for 'prompt': expected a string, but got an integer instead.", "prompt", "invalid_type",
    ),
    "size 00x100": ServerCase(
        "images/generations", {"json": {"prompt": "a", "model": "dall-e-2", "size": "00x100"}}, 400,
        "size must be one of '256x256', '512x512', '1024x1024' for dall-e-2, got '00x100'.", "size",
    ),
    "size 99999x99999": ServerCase(
        "images/generations", {"json": {"prompt": "a", "model": "gpt-image-2", "size": "99999x99999"}}, 400,
        GPT2_SIZES + "'99999x99999'.", "size",
    ),
    "a model the server does not serve": ServerCase(
        "images/generations", {"json": {"prompt": "a", "model": "sd-xl"}}, 404,
        f"The model 'sd-xl' does not exist on this server. It serves: {SERVED}.", "model", "model_not_found",
    ),
    "two SVG drawings in one request": ServerCase(
        "images/generations",
        {"json": {"prompt": "a", "model": "gpt-image-2.6-flare", "output_format": "svg", "n": 2}},
        400, "SVG output makes one image per request (n=1), got n=2.", "n",
    ),
    "stream from dall-e-2": ServerCase(
        "images/generations", {"json": {"prompt": "a", "model": "dall-e-2", "stream": True}}, 400,
        "dall-e-2 does not stream: leave 'stream' unset.", "stream",
    ),
    "text/plain to the JSON route": ServerCase(
        "images/generations", {"data": '{"prompt": "a"}', "headers": {"Content-Type": "text/plain"}}, 415,
        "Send this endpoint's parameters as a JSON object with 'Content-Type: application/json'.",
        code="unsupported_content_type",
    ),
    "JSON to the upload route": ServerCase(
        "images/edits", {"json": {"prompt": "a"}}, 415,
        "Send this endpoint's parameters and image files as multipart/form-data.", code="unsupported_content_type",
    ),
    "an edit without an image": ServerCase(
        "images/edits", files(prompt="a"), 400,
        "Missing required parameter: 'image'.", "image", "missing_required_parameter",
    ),
    "an image sent as a text field": ServerCase(
        "images/edits", {"files": [("prompt", (None, "a")), ("image", (None, "not a file"))]}, 400,
        "'image' must be a file upload, not a text field.", "image",
    ),
    "an empty image file": ServerCase(
        "images/edits", files(("image", b""), prompt="a"), 400,
        "The 'image' file is empty.", "image", "invalid_image",
    ),
    "a PDF as the image": ServerCase(
        "images/edits", files(("image", b"%PDF-1.4 a document"), prompt="a"), 400,
        "The 'image' file ('image.png') is not a PNG, JPEG or WebP image.", "image", "invalid_image_format",
    ),
    "an image over 36 megapixels": ServerCase(
        "images/edits", files(("image", png_header(6001, 6001)), prompt="a", model="gpt-image-2"), 400,
        "The 'image' image is 6001x6001 pixels; this server takes at most 36 million pixels. Use a smaller image.",
        "image", "image_too_large",
    ),
    "an image whose pixels are garbage": ServerCase(
        "images/edits", files(("image", png_header(64, 64)), prompt="a", model="gpt-image-2"), 400,
        "The 'image' upload cannot be used: this PNG file is damaged: its picture cannot be read.",
        "image", "invalid_image",
    ),
    "two masks": ServerCase(
        "images/edits", files(("image", png()), ("mask", png()), ("mask", png()), prompt="a", model="gpt-image-2"),
        400, "Send one 'mask' (it applies to the first image).", "mask",
    ),
    "a mask of another size": ServerCase(
        "images/edits", files(("image", png()), ("mask", png((128, 128))), prompt="a", model="dall-e-2"), 400,
        "The mask is 128x128 but the image is 256x256: they must be the same size.", "mask",
    ),
    "a JPEG mask": ServerCase(
        "images/edits", {"files": [("prompt", (None, "a")), ("model", (None, "gpt-image-2")),
                                   ("image", ("i.png", png(), "image/png")), ("mask", ("m.jpg", jpeg(), "image/jpeg"))]},
        400, "The mask must be a PNG with an alpha channel.", "mask",
    ),
    "a field given twice": ServerCase(
        "images/edits", {"files": [("image", ("i.png", png(), "image/png")), ("prompt", (None, "a")), ("prompt", (None, "b"))]},
        400, "'prompt' is given more than once.", "prompt",
    ),
    "n as words in a form": ServerCase(
        "images/edits", files(("image", png()), prompt="a", n="two"), 400,
        "Invalid type for 'n': expected an integer, but got 'two' instead.", "n", "invalid_type",
    ),
    "stream as maybe": ServerCase(
        "images/edits", files(("image", png()), prompt="a", stream="maybe"), 400,
        "Invalid type for 'stream': expected a boolean, but got 'maybe' instead.", "stream", "invalid_type",
    ),
    "svg as one text field": ServerCase(
        "images/edits", files(("image", png()), prompt="a", svg="x"), 400,
        "Send 'svg' as form fields such as 'svg[model]', not as one text field.", "svg",
    ),
    "a variation of two images": ServerCase(
        "images/variations", files(("image", png()), ("image", png()), model="dall-e-2"), 400,
        "A variation is made from one 'image'.", "image",
    ),
    "a variation from gpt-image-2": ServerCase(
        "images/variations", files(("image", png()), model="gpt-image-2"), 400,
        "gpt-image-2 does not do variations. Models that do: 'dall-e-2'.", "model",
    ),
    "a body over the upload limit": ServerCase(
        "images/edits", files(("image", b"\x89PNG" + b"0" * (2 * 1024 * 1024)), prompt="a"), 413,
        "The request body is 2.0 MB; this server takes at most 1 MB per request. Send smaller or fewer images.",
        code="request_too_large",
    ),
    "an unknown route": ServerCase(
        "images/upscale", {"json": {}}, 404,
        "Unknown endpoint: this server speaks the OpenAI Images API under /v1.", code="not_found",
    ),
    "the wrong method": ServerCase(
        "images/generations", {}, 405, "This endpoint does not take that HTTP method.",
        code="method_not_allowed", method="GET",
    ),
    "a foreign Host header (DNS rebinding)": ServerCase(
        "images/generations", {"json": {"prompt": "a"}, "headers": {"Host": "evil.example"}}, 403,
        "Blocking a request for the unknown host 'evil.example': this server answers to 127.0.0.1, ::1, "
        "localhost. Start it with --allow-host NAME to answer to another name.", code="host_not_allowed",
    ),
    "a page on another origin": ServerCase(
        "images/generations", {"json": {"prompt": "a"}, "headers": {"Origin": "https://evil.example"}}, 403,
        "Blocking a cross-origin request from 'https://evil.example': a web page may not call this server. "
        "Start it with --cors-origin ORIGIN to allow a page you trust.", code="origin_not_allowed",
    ),
    "an expired result URL": ServerCase(
        "files/nope.png", {}, 404, "This image URL has expired (they last 60 min) or never existed.",
        code="not_found", method="GET",
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread(make_app(PreviewEngine(), ServerConfig(max_upload_bytes=1024 * 1024))) as running:
        yield running


@pytest.mark.parametrize("case", SERVER_CASES.values(), ids=SERVER_CASES.keys())
def test_bad_input_to_the_server_is_a_4xx_with_the_apis_error_json(
    server: ServerThread, case: ServerCase
) -> None:
    answer = requests.request(case.method, f"{server.base_url}/{case.route}", timeout=30, **case.send)
    assert answer.status_code == case.status
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {
        "error": {"message": case.message, "type": case.type, "param": case.param, "code": case.code}
    }
    assert requests.get(f"{server.url}/health", timeout=10).json()["status"] == "ok"  # and it serves on


# --- faults of the network, as the client meets them ---------------------------------------------


def error_body(message: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}


def images_body() -> dict[str, Any]:
    import base64

    return {"created": 1, "data": [{"b64_json": base64.b64encode(png((32, 32))).decode()}]}


@dataclass
class Fault:
    replies: list[Reply]
    error: type[Exception]
    message: str
    options: dict[str, Any] = field(default_factory=dict)


FAULTS = {
    "429 three times": Fault(
        [Reply(status=429, body=error_body("Rate limit reached for images per minute.", "rate_limit_exceeded"),
               headers={"Retry-After": "1"})] * 3,
        RateLimitError, "Rate limit reached for images per minute. (HTTP 429, code=rate_limit_exceeded)",
    ),
    "500 three times": Fault(
        [Reply(status=500, body=error_body("The server had an error."))] * 3,
        InternalServerError, "The server had an error. (HTTP 500)",
    ),
    "a content policy refusal": Fault(
        [Reply(status=400, body=error_body("Your request was rejected by the safety system.", "moderation_blocked"))],
        ContentPolicyError, "Your request was rejected by the safety system. (HTTP 400, code=moderation_blocked)",
    ),
    "a key echoed back in the error": Fault(
        [Reply(status=401, body={"error": {"message": f"Incorrect API key provided: {KEY}.", "type": "invalid_request_error",
                                           "param": KEY, "code": "invalid_api_key"}}, headers={"x-request-id": f"req_{KEY}"})],
        Exception, "Incorrect API key provided: ***. (HTTP 401, code=invalid_api_key, param=***, request_id=req_***)",
    ),
    "a body dropped half way": Fault(
        [Reply(body=images_body(), cut_after=20)] * 3, APIConnectionError, "",
    ),
    "a body trickled a byte at a time": Fault(
        [Reply(body=images_body(), trickle=0.05)], APITimeoutError, "{host} did not finish its answer within 1 s.",
        {"timeout": 1.0},
    ),
    "a server that stalls before answering": Fault(
        [Reply(body=images_body(), delay=5)], APITimeoutError, "{host} did not answer within 1 s.", {"timeout": 1.0},
    ),
    "an answer that is not JSON": Fault(
        [Reply(status=200, body="<html>maintenance</html>")], Exception,
        "The server answered HTTP 200 with something that is not JSON (text/plain; charset=utf-8): "
        "is the base URL an Images API? (HTTP 200)",
    ),
}  # fmt: skip


@pytest.mark.timeout(30)
@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
def test_network_faults_end_in_a_clear_error_without_the_key(fault: Fault) -> None:
    api = FakeImagesAPI().start()
    try:
        api.reply(*fault.replies)
        client = OpenAIClient(api_key=KEY, base_url=api.base_url, sleep=lambda seconds: None)
        with pytest.raises(fault.error) as caught:
            client.generate(prompt="a fox", model="gpt-image-2", **fault.options)
        told = describe_error(caught.value)
        if fault.message:
            assert str(caught.value) == fault.message.format(host=api.host)
        else:
            assert str(caught.value).startswith(f"The connection to {api.host} failed (")
        assert KEY not in told and KEY not in repr(caught.value.__dict__)
        client.close()
    finally:
        api.close()
