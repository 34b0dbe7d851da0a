"""Bad input gets the API's error JSON with a 4xx status: never a 500, never a crash."""

from __future__ import annotations

import io
import json

import pytest
import requests
from PIL import Image

from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.server import ServerThread, make_app
from ipyimagegen.server.config import ServerConfig

UPLOAD_LIMIT = 256 * 1024


def png_bytes(size: tuple[int, int] = (256, 256), mode: str = "RGBA") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def base_url():
    with ServerThread(make_app(PreviewEngine(), ServerConfig(max_upload_bytes=UPLOAD_LIMIT))) as running:
        yield running.base_url
        # whatever came before, the server still answers
        assert requests.get(running.url + "/health", timeout=10).status_code == 200


def error_of(answer: requests.Response, status: int) -> dict:
    """The error object of an answer, checked to have the API's shape and the expected status."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    return error


def post_json(base_url: str, body: object, endpoint: str = "generations") -> requests.Response:
    return requests.post(f"{base_url}/images/{endpoint}", json=body, timeout=10)


def post_form(base_url: str, endpoint: str, fields: dict, files: list) -> requests.Response:
    """A multipart form (always: text fields are sent as parts without a filename)."""
    parts = [
        (name, (None, value))
        for name, values in fields.items()
        for value in ([values] if isinstance(values, str) else values)
    ]
    return requests.post(f"{base_url}/images/{endpoint}", files=parts + files, timeout=10)


# -- JSON bodies ---------------------------------------------------------------------------------


def test_unparseable_json(base_url):
    answer = requests.post(
        f"{base_url}/images/generations",
        data=b'{"prompt": ',
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert "JSON" in error_of(answer, 400)["message"]


def test_json_that_is_not_an_object(base_url):
    assert "object" in error_of(post_json(base_url, ["a fox"]), 400)["message"]


def test_unknown_parameter(base_url):
    error = error_of(post_json(base_url, {"prompt": "a fox", "foo": 1}), 400)
    assert (error["message"], error["param"], error["code"]) == (
        "Unknown parameter: 'foo'.",
        "foo",
        "unknown_parameter",
    )


def test_missing_prompt(base_url):
    error = error_of(post_json(base_url, {"model": "dall-e-2"}), 400)
    assert (error["param"], error["code"]) == ("prompt", "missing_required_parameter")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": "a fox", "n": "2"}, "n"),
        ({"prompt": "a fox", "n": True}, "n"),
        ({"prompt": "a fox", "n": 1.5}, "n"),
        ({"prompt": 42}, "prompt"),
        ({"prompt": "a fox", "stream": "yes"}, "stream"),
    ],
)
def test_wrong_types(base_url, body, param):
    error = error_of(post_json(base_url, body), 400)
    assert (error["param"], error["code"]) == (param, "invalid_type")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": "a fox", "model": "dall-e-2", "n": 0}, "n"),
        ({"prompt": "a fox", "model": "dall-e-2", "size": "huge"}, "size"),
        ({"prompt": "   ", "model": "dall-e-2"}, "prompt"),
        ({"prompt": "a fox", "model": "dall-e-3", "n": 2}, "n"),
        ({"prompt": "a fox", "model": "gpt-image-1", "quality": "ultra"}, "quality"),
        ({"prompt": "a fox", "model": "dall-e-3", "partial_images": 2}, "partial_images"),
    ],
)
def test_values_the_model_does_not_take(base_url, body, param):
    assert error_of(post_json(base_url, body), 400)["param"] == param


def test_unknown_route_and_wrong_method(base_url):
    assert error_of(requests.get(f"{base_url}/images/nothing", timeout=10), 404)["code"] == "not_found"
    error_of(requests.get(f"{base_url}/images/generations", timeout=10), 405)


# -- multipart forms -------------------------------------------------------------------------------


def test_edit_needs_multipart(base_url):
    assert "multipart" in error_of(post_json(base_url, {"prompt": "a fox"}, "edits"), 415)["message"]


def test_malformed_multipart(base_url):
    body = b"--xyz\r\nContent-Disposition: form-data\r\n\r\nvalue\r\n--xyz--\r\n"  # a part without a name
    answer = requests.post(
        f"{base_url}/images/edits",
        data=body,
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
        timeout=10,
    )
    error_of(answer, 400)


def test_multipart_without_boundary(base_url):
    answer = requests.post(
        f"{base_url}/images/variations",
        data=b"garbage",
        headers={"Content-Type": "multipart/form-data"},
        timeout=10,
    )
    error_of(answer, 400)


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"%PDF-1.4 not an image at all", "invalid_image_format"),
        (b"", "invalid_image"),
        (png_bytes()[:200], "invalid_image"),  # a PNG cut short
    ],
)
def test_uploads_that_are_not_images(base_url, content, code):
    answer = post_form(
        base_url, "variations", {"model": "dall-e-2"}, [("image", ("photo.png", content, "image/png"))]
    )
    error = error_of(answer, 400)
    assert (error["param"], error["code"]) == ("image", code)


def test_image_with_too_many_pixels(base_url):
    huge = png_bytes((7000, 7000), mode="1")  # small file, 49 million pixels
    answer = post_form(
        base_url, "variations", {"model": "dall-e-2"}, [("image", ("big.png", huge, "image/png"))]
    )
    assert error_of(answer, 400)["code"] == "image_too_large"


def test_unknown_form_field(base_url):
    answer = post_form(
        base_url,
        "edits",
        {"prompt": "a fox", "colour": "red"},
        [("image", ("a.png", png_bytes(), "image/png"))],
    )
    assert error_of(answer, 400)["param"] == "colour"


def test_image_sent_as_text_and_prompt_as_file(base_url):
    as_text = post_form(base_url, "edits", {"prompt": "a fox", "image": "photo.png"}, [])
    assert error_of(as_text, 400)["param"] == "image"
    as_file = post_form(
        base_url,
        "edits",
        {},
        [("image", ("a.png", png_bytes(), "image/png")), ("prompt", ("p.txt", b"a fox", "text/plain"))],
    )
    assert error_of(as_file, 400)["param"] == "prompt"


def test_missing_image_and_repeated_field(base_url):
    assert error_of(post_form(base_url, "edits", {"prompt": "a fox"}, []), 400)["param"] == "image"
    repeated = post_form(
        base_url,
        "edits",
        {"prompt": ["a fox", "a cat"]},
        [("image", ("a.png", png_bytes(), "image/png"))],
    )
    assert error_of(repeated, 400)["param"] == "prompt"


def test_form_number_that_is_not_a_number(base_url):
    answer = post_form(
        base_url,
        "variations",
        {"model": "dall-e-2", "n": "two"},
        [("image", ("a.png", png_bytes(), "image/png"))],
    )
    assert error_of(answer, 400)["param"] == "n"


def test_variation_takes_one_image(base_url):
    files = [("image", ("a.png", png_bytes(), "image/png")), ("image", ("b.png", png_bytes(), "image/png"))]
    assert error_of(post_form(base_url, "variations", {"model": "dall-e-2"}, files), 400)["param"] == "image"


def test_dalle2_mask_of_another_size(base_url):
    files = [
        ("image", ("a.png", png_bytes((256, 256)), "image/png")),
        ("mask", ("m.png", png_bytes((512, 512)), "image/png")),
    ]
    answer = post_form(base_url, "edits", {"model": "dall-e-2", "prompt": "a fox"}, files)
    assert error_of(answer, 400)["param"] == "mask"


def test_dalle2_needs_a_square_image(base_url):
    files = [("image", ("a.png", png_bytes((300, 200)), "image/png"))]
    answer = post_form(base_url, "edits", {"model": "dall-e-2", "prompt": "a fox"}, files)
    assert error_of(answer, 400)["param"] == "image"


# -- size limits ---------------------------------------------------------------------------------


def test_oversize_upload_by_content_length(base_url):
    too_big = b"\x89PNG\r\n\x1a\n" + bytes(UPLOAD_LIMIT)
    answer = post_form(base_url, "edits", {"prompt": "a fox"}, [("image", ("big.png", too_big, "image/png"))])
    error = error_of(answer, 413)
    assert error["code"] == "request_too_large"
    assert "0.2 MB" in error["message"] or "256" in error["message"]


def test_oversize_body_without_content_length(base_url):
    """A chunked body is counted as it arrives, and refused once past the limit."""

    def chunks():
        yield json.dumps({"prompt": "a fox", "user": ""}).encode()[:-2]
        for _ in range(UPLOAD_LIMIT // 16384 + 2):
            yield b"x" * 16384
        yield b'"}'

    answer = requests.post(
        f"{base_url}/images/generations",
        data=chunks(),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert "Content-Length" not in answer.request.headers
    assert error_of(answer, 413)["code"] == "request_too_large"


def test_body_within_limit_is_fine(base_url):
    answer = post_json(base_url, {"prompt": "a fox " * 100, "model": "dall-e-2", "size": "256x256"})
    assert answer.status_code == 200
    assert len(answer.json()["data"]) == 1
