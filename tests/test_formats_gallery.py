"""GIF and SVG results in the gallery: saved as .gif and .svg with their metadata inside (a GIF
comment, an SVG <metadata> element), read back, indexed again from the files alone, exported,
and given raster thumbnails; an SVG from elsewhere is read safely and drawn without its outside
references."""

from __future__ import annotations

import io
import json
import re
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from defusedxml.ElementTree import fromstring
from PIL import Image, ImageSequence

from ipyimagegen import imaging, svg
from ipyimagegen.api.types import GeneratedImage, GenerateRequest
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.gallery import Gallery, embed_gif_metadata, read_metadata
from ipyimagegen.pngtext import gif_timing, read_gif_comments

MODEL = "gpt-image-2.6-flare"
HOSTILE = 'a fox </metadata><script>alert(1)</script> "quoted" & <b>bold</b> ünïcode'


@pytest.fixture()
def gallery(tmp_path: Path) -> Gallery:
    with Gallery(tmp_path / "gallery") as opened:
        yield opened


@pytest.fixture(scope="module")
def engine() -> PreviewEngine:
    return PreviewEngine()


def decoded_frames(data: bytes) -> list[bytes]:
    with Image.open(io.BytesIO(data)) as image:
        return [frame.convert("RGBA").tobytes() for frame in ImageSequence.Iterator(image)]


def outside_svg(tmp_path: Path) -> bytes:
    """An SVG such as another backend might send: a script, an outside picture, no metadata."""
    red = tmp_path / "red.png"
    Image.new("RGB", (8, 8), (255, 0, 0)).save(red)
    return (
        '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" '
        'xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 400 200">'
        '<script>alert("hi")</script><rect width="400" height="200" fill="#1e90ff"/>'
        f'<image href="{red}" width="400" height="200"/>'
        f'<image xlink:href="file://{red}" width="400" height="200"/></svg>'
    ).encode()


def test_a_gif_is_saved_as_gif_with_its_metadata_in_a_comment(
    gallery: Gallery, engine: PreviewEngine
) -> None:
    response = engine.generate(prompt=HOSTILE, model=MODEL, output_format="gif", frame_count=4, seed=8)
    (item,) = gallery.save_response(response)
    original = response.data[0].data
    assert item.path.suffix == ".gif" and item.mime_type == "image/gif" and item.size == "1024x1024"
    saved = item.path.read_bytes()
    assert decoded_frames(saved) == decoded_frames(original)  # the animation is as it came
    assert gif_timing(saved) == gif_timing(original) == ([200] * 4, 0)
    for source in (item.path, saved):
        metadata = read_metadata(source)
        assert metadata["prompt"] == HOSTILE and metadata["model"] == MODEL and metadata["seed"] == 8
        assert metadata["options"]["frame_count"] == 4 and metadata["options"]["output_format"] == "gif"
        assert metadata["size"] == "1024x1024" and metadata["mime_type"] == "image/gif"
    assert not item.path.with_suffix(".json").exists()
    ours = [text for text in read_gif_comments(saved) if text.startswith("ipyimagegen:")]
    assert len(ours) == 1 and json.loads(ours[0].removeprefix("ipyimagegen:"))["id"] == item.id


def test_an_svg_is_saved_as_svg_with_its_metadata_escaped_inside(
    gallery: Gallery, engine: PreviewEngine
) -> None:
    response = engine.generate(prompt=HOSTILE, model=MODEL, output_format="svg", size="1024x1536", seed=2)
    (item,) = gallery.save_response(response)
    saved = item.path.read_bytes()
    assert item.path.suffix == ".svg" and item.mime_type == "image/svg+xml" and item.size == "1024x1536"
    root = fromstring(saved)  # still one well-formed drawing, its metadata text and never markup
    assert not [element for element in root.iter() if "script" in element.tag]
    assert b"</metadata><script>" not in saved
    metadata = read_metadata(item.path)
    assert metadata == read_metadata(saved) and metadata["prompt"] == HOSTILE and metadata["seed"] == 2
    assert metadata["options"]["output_format"] == "svg" and metadata["id"] == item.id
    # the drawing itself is untouched: the file is the original with one element added
    added = re.fullmatch(rb'(.*?)<metadata id="ipyimagegen-metadata">[^<]*</metadata>(.*)', saved, re.S)
    assert added is not None and added.group(1) + added.group(2) == response.data[0].data


def test_saving_metadata_again_replaces_it(gallery: Gallery, engine: PreviewEngine) -> None:
    drawing = engine.generate(prompt="a kite", model=MODEL, output_format="svg")[0].data
    once = svg.with_metadata(drawing, {"prompt": "first"})
    twice = svg.with_metadata(once, {"prompt": "second"})
    assert svg.read_metadata(twice) == {"prompt": "second"} and twice.count(b"<metadata") == 1
    animation = engine.generate(prompt="a kite", model=MODEL, output_format="gif", frame_count=2)[0].data
    again = embed_gif_metadata(embed_gif_metadata(animation, {"prompt": "first"}), {"prompt": "second"})
    assert read_metadata(again) == {"prompt": "second"}
    assert read_gif_comments(again) == [
        "ipyimagegen offline preview engine",
        'ipyimagegen:{"prompt": "second"}',
    ]


def test_a_reopened_gallery_indexes_gifs_and_svgs_from_the_files_alone(
    tmp_path: Path, engine: PreviewEngine
) -> None:
    folder = tmp_path / "gallery"
    with Gallery(folder) as gallery:
        gif = gallery.save_response(engine.generate(prompt="a gif fox", model=MODEL, output_format="gif"))[0]
        drawing = gallery.save_response(
            engine.generate(prompt="an svg owl", model=MODEL, output_format="svg")
        )[0]
    (folder / "index.sqlite").unlink()
    for extra in folder.glob("index.sqlite-*"):
        extra.unlink()
    with Gallery(folder) as reopened:
        assert reopened.wait_tidy(30)
        assert {item.id for item in reopened.items()} == {gif.id, drawing.id}
        assert reopened.get(gif.id).prompt == "a gif fox" and reopened.get(gif.id).mime_type == "image/gif"
        found = reopened.items(text="owl")
        assert [item.id for item in found] == [drawing.id] and found[0].size == "1024x1024"
        assert found[0].to_request().output_format == "svg"  # type: ignore[union-attr]


def test_export_zips_gifs_and_svgs_with_the_manifest(
    gallery: Gallery, engine: PreviewEngine, tmp_path: Path
) -> None:
    items = gallery.save_response(
        engine.generate(prompt="a gif", model=MODEL, output_format="gif", frame_count=2)
    )
    items += gallery.save_response(engine.generate(prompt="an svg", model=MODEL, output_format="svg"))
    archive = zipfile.ZipFile(gallery.export([item.id for item in items], tmp_path / "out.zip"))
    names = archive.namelist()
    assert f"images/{items[0].id}.gif" in names and f"images/{items[1].id}.svg" in names
    manifest = json.loads(archive.read("manifest.json"))
    assert [entry["mime_type"] for entry in manifest["items"]] == ["image/gif", "image/svg+xml"]
    assert archive.read(f"images/{items[1].id}.svg") == items[1].path.read_bytes()


def test_thumbnails_are_a_gifs_first_frame_and_a_picture_of_an_svg(
    gallery: Gallery, engine: PreviewEngine
) -> None:
    gif = gallery.save_response(
        engine.generate(prompt="a red kite", model=MODEL, output_format="gif", seed=1)
    )[0]
    data, mime = gallery.thumbnail(gif.id, 128)
    assert mime == "image/jpeg"
    with Image.open(gif.path) as image:
        first = np.asarray(image.convert("RGB").resize((128, 128), Image.Resampling.BOX), np.float32)
    assert np.abs(np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), np.float32) - first).mean() < 6

    response = engine.generate(
        prompt="a red kite", model=MODEL, output_format="svg", size="1536x1024", seed=1
    )
    drawing = gallery.save_response(response)[0]
    data, mime = gallery.thumbnail(drawing.id, 192)
    picture = Image.open(io.BytesIO(data)).convert("RGB")
    still = engine.generate(prompt="a red kite", model=MODEL, size="1536x1024", seed=1)[0].to_pil()
    expected = np.asarray(still.convert("RGB").resize(picture.size, Image.Resampling.BOX), np.float32)
    assert picture.size == (192, 128) and np.abs(np.asarray(picture, np.float32) - expected).mean() < 8
    assert gallery.thumbnail(drawing.id, 192) == (data, mime)  # kept, not made again


def test_an_svg_from_elsewhere_is_saved_and_drawn_without_its_script_or_outside_files(
    gallery: Gallery, tmp_path: Path
) -> None:
    request = GenerateRequest(prompt="a blue card", model=MODEL, output_format="svg")
    result = GeneratedImage(data=outside_svg(tmp_path), mime_type="image/svg+xml", request=request)
    item = gallery.save(result, backend="OpenAI")
    assert item.path.suffix == ".svg" and item.size == "400x200"
    assert read_metadata(item.path)["prompt"] == "a blue card"
    data, _mime = gallery.thumbnail(item.id, 100)
    picture = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), np.int16)
    assert picture.shape == (50, 100, 3)
    assert np.abs(picture - (30, 144, 255)).max() < 12  # all blue: the outside red picture was not read


def test_an_svg_with_entities_is_never_expanded(gallery: Gallery) -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
        b'<svg xmlns="http://www.w3.org/2000/svg" width="32" height="64"><text>&c;</text></svg>'
    )
    started = time.perf_counter()
    assert read_metadata(bomb) == {}
    with pytest.raises(svg.SvgError, match="entities"):
        svg.rasterise(bomb)
    result = GeneratedImage(
        data=bomb, mime_type="image/svg+xml", request=GenerateRequest(prompt="x", model=MODEL)
    )
    item = gallery.save(result)  # kept as it came, its metadata beside it
    assert item.path.read_bytes() == bomb and read_metadata(item.path)["prompt"] == "x"
    with pytest.raises(svg.SvgError, match="entities"):
        svg.size(bomb)  # not even its root is read: its size is unknown
    data, _mime = gallery.thumbnail(item.id, 64)  # a card that says SVG, "size unknown"
    card = Image.open(io.BytesIO(data))
    assert card.size == (64, 32) == svg.placeholder(None, 64).size  # the unknown size's, not 32x64's
    assert card.size != svg.placeholder((32, 64), 64).size
    assert time.perf_counter() - started < 5


def test_without_a_rasteriser_an_svg_gets_a_card_with_its_size(monkeypatch: pytest.MonkeyPatch) -> None:
    drawing = PreviewEngine().generate(prompt="an owl", model=MODEL, output_format="svg", size="1536x1024")[0]
    drawn = imaging.thumbnail(drawing.data, 96)
    monkeypatch.setattr(svg, "_rasteriser", lambda: None)
    assert not svg.can_rasterise()
    with pytest.raises(svg.SvgError, match="resvg-py"):
        svg.rasterise(drawing.data)
    data, _mime = imaging.thumbnail(drawing.data, 96)
    card = Image.open(io.BytesIO(data)).convert("RGB")
    assert card.size == (96, 64) and data != drawn[0]
    grey = np.asarray(card, np.int16)
    assert np.abs(grey[20, 4] - (236, 238, 242)).max() < 6  # the card's colour, not the scene's
    assert (np.abs(grey - (70, 76, 90)).max(axis=-1) < 30).any()  # and its dark "SVG" lettering


def test_a_damaged_gif_is_kept_with_its_metadata_beside_it(gallery: Gallery) -> None:
    whole = PreviewEngine().generate(prompt="a kite", model=MODEL, output_format="gif", frame_count=2)[0].data
    damaged = whole[: len(whole) // 2]
    result = GeneratedImage(
        data=damaged, mime_type="image/gif", request=GenerateRequest(prompt="cut", model=MODEL)
    )
    item = gallery.save(result)
    assert item.path.read_bytes() == damaged and item.path.with_suffix(".json").exists()
    assert read_metadata(item.path)["prompt"] == "cut"


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ('width="1536" height="1024"', (1536, 1024)),
        ('width="512px" height="10cm"', (512, 378)),
        ('viewBox="0 0 1024 1536"', (1024, 1536)),
        ('width="100%" height="100%" viewBox="0,0,400,300"', (400, 300)),
        ('width="800" viewBox="0 0 400 300"', (800, 600)),
        ('height="90" viewBox="0 0 400 300"', (120, 90)),
        ("", (300, 150)),
    ],
)
def test_an_svgs_size_is_what_it_asks_to_be_shown_at(attributes: str, expected: tuple[int, int]) -> None:
    drawing = (
        f'<svg xmlns="http://www.w3.org/2000/svg" {attributes}><rect width="1" height="1"/></svg>'.encode()
    )
    assert svg.size(drawing) == expected == imaging.image_size(drawing)


@pytest.mark.parametrize(
    "drawing",
    [
        b'<svg:svg xmlns:svg="http://www.w3.org/2000/svg" width="10" height="5"/>',
        b'<?xml version="1.0"?>\n<!-- a > b --><!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
        b'"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">'
        b'<svg xmlns="http://www.w3.org/2000/svg" data-note="a>b" viewBox="0 0 30 20"><rect width="3" height="3"/></svg>',
    ],
    ids=["empty, with a prefix", "declaration, comment and doctype first"],
)
def test_metadata_goes_into_any_well_formed_svg(drawing: bytes) -> None:
    document = {"prompt": "</metadata><x>&"}
    marked = svg.with_metadata(drawing, document)
    assert svg.read_metadata(marked) == document and svg.size(marked) == svg.size(drawing)
    assert svg.parse(marked).tag == svg.parse(drawing).tag


def test_what_is_not_an_svg_gets_no_metadata() -> None:
    for data in (
        b"<html><body/></html>",
        b"<svg",
        "<svg xmlns='http://www.w3.org/2000/svg'/>".encode("utf-16"),
    ):
        with pytest.raises(svg.SvgError):
            svg.with_metadata(data, {"prompt": "x"})
        assert svg.read_metadata(data) == {}
