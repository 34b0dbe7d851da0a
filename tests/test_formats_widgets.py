"""GIF and SVG in the studio, in pure Python: the formats and frame controls offered, a GIF's tile
playing (an animated thumbnail) and its viewer, an SVG's raster thumbnail and its drawing in the
viewer, Save, Download all, Compare, and Edit from an SVG."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from ipyimagegen.api.types import GeneratedImage, GenerateRequest, ImagesResponse
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.gallery import Gallery
from ipyimagegen.widgets.params_panel import ParamsPanel
from ipyimagegen.widgets.result_grid import ResultGrid
from ipyimagegen.widgets.studio import Studio
from widget_helpers import WAIT_S, Page

MODEL = "gpt-image-2.6-flare"


@pytest.fixture(scope="module")
def engine() -> PreviewEngine:
    return PreviewEngine()


def shown(grid: ResultGrid, response: ImagesResponse) -> Page:
    page = Page(grid.view)
    grid.start(response.request).fill(response)
    return page


def made(engine: PreviewEngine, **options: Any) -> ImagesResponse:
    return engine.run(GenerateRequest(prompt="a red kite over the sea", model=MODEL, seed=5, **options))


# --- the params panel ------------------------------------------------------------------------------


def test_gif_and_svg_are_offered_for_the_models_that_take_them(engine: PreviewEngine) -> None:
    panel = ParamsPanel(engine, model=MODEL)
    assert list(panel.format_control.options) == ["png", "jpeg", "webp", "gif", "svg"]
    panel.model = "gpt-image-2.6-sunburst"
    assert {"gif", "svg"} <= set(panel.format_control.options)
    panel.model = "gpt-image-2.5-flare"
    assert list(panel.format_control.options) == ["png", "jpeg", "webp"]


def test_frames_and_their_timing_are_offered_for_a_gif_only(engine: PreviewEngine) -> None:
    panel = ParamsPanel(engine, model=MODEL)
    assert not panel.is_shown("frame_count") and not panel.is_shown("frame_duration_ms")
    panel.format_control.value = "gif"  # as the user picks it
    assert (
        panel.output_format == "gif" and panel.is_shown("frame_count") and panel.is_shown("frame_duration_ms")
    )
    assert not panel.is_shown("partial_images") and not panel.is_shown("output_compression")
    request = panel.request("a kite")
    assert (request.frame_count, request.frame_duration_ms) == (None, None)  # the model's defaults
    shown = (panel.frame_count_control.label, panel.frame_duration_control.label)
    assert shown == ("model's default", "model's default")  # the boxes say so, never empty
    panel.frame_count_control.value = 6
    panel.frame_duration_control.value = 120
    request = panel.request("a kite")
    assert (request.output_format, request.frame_count, request.frame_duration_ms) == ("gif", 6, 120)
    assert panel.edit_request("a kite", []).frame_count == 6
    assert len(engine.generate(**request.options())[0].data) > 0  # what the panel sends is valid
    panel.format_control.value = "png"
    request = panel.request("a kite")
    assert (request.frame_count, request.frame_duration_ms) == (None, None)
    assert not panel.is_shown("frame_count")


def test_an_edit_panel_offers_no_gif_and_a_gifs_settings_carried_to_it_keep_a_still_format(
    engine: PreviewEngine,
) -> None:
    """The Edit tab paints a mask, and a mask cannot make a GIF: Edit on a GIF tile brings its other
    settings and a still format, so the edit runs."""
    panel = ParamsPanel(engine, model=MODEL, endpoint="edits")
    assert "gif" not in panel.format_control.options and "svg" in panel.format_control.options
    skipped = panel.apply({"model": MODEL, "output_format": "gif", "frame_count": 4, "quality": "low"})
    assert "output_format" in skipped and panel.output_format == "png" and panel.quality == "low"
    request = panel.edit_request("a kite", [])
    assert (request.output_format, request.frame_count) == ("png", None)


def test_svg_makes_one_drawing_per_request(engine: PreviewEngine) -> None:
    panel = ParamsPanel(engine, model=MODEL)
    panel.n = 4
    panel.format_control.value = "svg"
    assert panel.n == 1 and panel.n_control.disabled and "one drawing per request" in panel.n_note.value
    assert panel.request("an owl").n == 1
    panel.n_control.value = "3"  # typed anyway
    assert panel.n == 1 and "SVG output makes one image per request" in panel.n_note.value
    panel.format_control.value = "png"
    assert panel.n == 4 and not panel.n_control.disabled


def test_a_saved_gifs_settings_come_back(engine: PreviewEngine) -> None:
    panel = ParamsPanel(engine, model="gpt-image-2")
    skipped = panel.apply(
        {"model": MODEL, "output_format": "gif", "frame_count": 12, "frame_duration_ms": 130}
    )
    assert skipped == []
    assert (panel.frame_count_control.value, panel.frame_duration_control.value) == (12, 130)
    assert "130 ms (7.69 per second)" in [label for label, _value in panel.frame_duration_control.options]
    assert panel.apply({"frame_count": 40}) == ["frame_count"] and panel.frame_count == 12


# --- a GIF in the grid -----------------------------------------------------------------------------


def test_a_gifs_tile_plays_a_small_animation(engine: PreviewEngine) -> None:
    grid = ResultGrid()
    response = made(engine, output_format="gif", frame_count=6, frame_duration_ms=150)
    page = shown(grid, response)
    tile = grid.tiles[0]
    assert page.tile(tile)["badge"] == "GIF"
    version, data, mime = page.pictures[tile.id]
    assert mime == "image/gif" and len(data) * 2 < len(response.data[0].data)
    with Image.open(io.BytesIO(data)) as thumbnail:
        assert thumbnail.n_frames == 6 and max(thumbnail.size) == 256 and thumbnail.info["loop"] == 0
        assert thumbnail.info["duration"] == 150
    assert all(isinstance(value, (str, int, bool, list)) for value in page.tile(tile).values())


def test_a_gifs_viewer_shows_the_animation_and_its_timing(engine: PreviewEngine, tmp_path: Path) -> None:
    grid = ResultGrid(save_dir=tmp_path)
    response = made(engine, output_format="gif", frame_count=4)
    page = shown(grid, response)
    tile = grid.tiles[0]
    page.click(tile, "enlarge")
    viewer = grid.view.viewer
    assert viewer["mime"] == "image/gif" and viewer["filename"].endswith(".gif")
    assert bytes(grid.view.viewer_image) == response.data[0].data
    assert ["Animation", "4 frames × 200 ms, looping"] in viewer["facts"]
    assert ["Output format", "gif"] in viewer["facts"]
    page.send({"event": "viewer", "do": "close"})
    assert grid.view.viewer_image == b""
    page.click(tile, "save")
    (saved,) = tmp_path.iterdir()
    assert saved.suffix == ".gif" and page.files == [(saved.name, "image/gif", response.data[0].data)]
    assert saved.name == viewer["filename"]  # the viewer's Download and the tile's Save name it alike


# --- an SVG in the grid ----------------------------------------------------------------------------


def test_an_svgs_tile_shows_a_picture_and_its_viewer_the_drawing(
    engine: PreviewEngine, tmp_path: Path
) -> None:
    grid = ResultGrid(save_dir=tmp_path)
    response = made(engine, output_format="svg", size="1536x1024")
    page = shown(grid, response)
    tile = grid.tiles[0]
    assert page.tile(tile)["badge"] == "SVG"
    _version, data, mime = page.pictures[tile.id]
    assert mime in ("image/jpeg", "image/webp", "image/png")  # a raster copy: no markup reaches the page
    assert Image.open(io.BytesIO(data)).size == (256, 171) and b"<svg" not in data
    page.click(tile, "enlarge")
    viewer = grid.view.viewer
    assert viewer["mime"] == "image/svg+xml" and viewer["size"] == [1536, 1024]
    assert viewer["filename"].endswith(".svg") and bytes(grid.view.viewer_image) == response.data[0].data
    assert ["Size", "1536×1024 (SVG: it scales)"] in viewer["facts"]
    page.click(tile, "save")
    (saved,) = tmp_path.iterdir()
    assert saved.suffix == ".svg" and page.files == [(saved.name, "image/svg+xml", response.data[0].data)]


def test_download_all_writes_gif_and_svg_files(engine: PreviewEngine, tmp_path: Path) -> None:
    for gallery in (None, Gallery(tmp_path / "gallery")):
        grid = ResultGrid()
        grid.gallery = gallery
        page = Page(grid.view)
        for response in (made(engine, output_format="gif", frame_count=2), made(engine, output_format="svg")):
            if gallery is not None:
                gallery.save_response(response)  # the studio saves before it shows
                for image, item in zip(response.data, gallery.items(limit=1), strict=True):
                    image.metadata["gallery_id"] = item.id
            grid.start(response.request).fill(response)
        assert grid.download_zip() is not None
        name, mime, data = page.files[-1]
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        assert mime == "application/zip" and name.endswith(".zip")
        assert sum(n.endswith(".gif") for n in names) == 1 and sum(n.endswith(".svg") for n in names) == 1
        if gallery is not None:
            gallery.close()


def test_edit_and_variations_of_an_svg_get_a_png_of_it(engine: PreviewEngine) -> None:
    grid = ResultGrid()
    response = made(engine, output_format="svg", size="1024x1536")
    shown(grid, response)
    sent: list[GeneratedImage] = []
    grid.on_action("edit", sent.append)
    grid.on_action("variations", sent.append)
    grid.act(grid.tiles[0], "edit")
    grid.act(grid.tiles[0], "variations")
    assert [image.mime_type for image in sent] == ["image/png", "image/png"]
    assert Image.open(io.BytesIO(sent[0].data)).size == (1024, 1536)
    assert sent[0].request is response.data[0].request and sent[0].seed == response.data[0].seed


def test_compare_takes_gifs_and_svgs(engine: PreviewEngine) -> None:
    grid = ResultGrid()
    shown(grid, made(engine, output_format="gif", frame_count=2))
    shown(grid, made(engine, output_format="svg"))
    panel = grid.compare(grid.tiles)
    assert panel is not None  # the page gets pictures: a GIF's first frame, a raster copy of the drawing
    assert {mime for _data, mime in panel.pictures} <= {"image/jpeg", "image/webp", "image/png"}
    assert len([ax for ax in panel.figure.axes if ax.images]) == 2  # the saved sheet draws both
    panel.dispose()


def test_the_studio_makes_and_keeps_a_gif_and_an_svg(engine: PreviewEngine, tmp_path: Path) -> None:
    with Gallery(tmp_path / "gallery") as gallery:
        s = Studio(engine, gallery=gallery)
        page = Page(s.grid.view)
        tab = s.generate_tab
        tab.params.model = MODEL
        for output_format in ("gif", "svg"):
            tab.prompt_box.value = f"a {output_format} of a lighthouse"
            tab.params.format_control.value = output_format
            tab.controls.run_button.click()
            assert s.runner.wait(WAIT_S)
            assert "ipyimagegen-ok" in tab.status.value, tab.status.value
        svg_tile, gif_tile = s.grid.tiles
        assert page.pictures[gif_tile.id][2] == "image/gif" and page.tile(svg_tile)["badge"] == "SVG"
        assert sorted(item.path.suffix for item in gallery.items()) == [".gif", ".svg"]
        assert gif_tile.image is not None and gif_tile.image.data[:6] == b"GIF89a"  # read back from the file
        s.close()


@pytest.mark.parametrize(
    ("output_format", "extension"),
    [("png", "png"), ("jpeg", "jpg"), ("webp", "webp"), ("gif", "gif"), ("svg", "svg")],
)
def test_save_and_the_viewers_download_give_one_timestamped_name(
    engine: PreviewEngine, tmp_path: Path, output_format: str, extension: str
) -> None:
    grid = ResultGrid(save_dir=tmp_path)
    page = shown(grid, made(engine, output_format=output_format, size="1024x1024"))
    shown(grid, made(engine, output_format=output_format, size="1024x1024"))
    tile = grid.tiles[1]  # the first request's: #1
    page.click(tile, "enlarge")
    name = grid.view.viewer["filename"]  # no gallery: when it was made, a tag of its own, the prompt
    assert re.fullmatch(rf"\d{{8}}-\d{{6}}-[0-9a-f]{{8}}-a-red-kite-over-the-sea\.{extension}", name), name
    page.click(grid.tiles[0], "enlarge")
    assert grid.view.viewer["filename"] != name  # the other request's picture: another name
    page.click(tile, "enlarge")
    assert grid.view.viewer["filename"] == name
    page.click(tile, "save")
    page.click(tile, "save")  # a second Save does not overwrite the first
    assert [file for file, _mime, _data in page.files] == [
        name,
        name.replace(f".{extension}", f"-2.{extension}"),
    ]
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(file for file, _m, _d in page.files)


def test_an_svg_that_cannot_be_drawn_is_said_never_sent_on_as_a_grey_card(engine: PreviewEngine) -> None:
    grid = ResultGrid()
    response = made(engine, output_format="svg")
    deep = b"<g>" * 400 + b"</g>" * 400  # deeper than any drawing needs: refused before drawing
    response.data[0].data = (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">' + deep + b"</svg>"
    )
    shown(grid, response)
    sent: list[GeneratedImage] = []
    grid.on_action("edit", sent.append)
    grid.act(grid.tiles[0], "edit")
    assert sent == []
    assert grid.notice_kind == "error" and "This picture cannot be used" in grid.notice_html
