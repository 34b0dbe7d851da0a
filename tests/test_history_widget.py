"""The History browser, driven in pure Python: pages, filters, tile actions, the viewer, export,
delete, lineage, refresh. The page's side is :class:`widget_helpers.Page`."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import ipywidgets as widgets
import numpy as np
import pytest
from PIL import Image

from ipyimagegen.api.types import GeneratedImage, GenerateRequest, InputImage, VariationRequest
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.gallery import Gallery, GalleryItem
from ipyimagegen.widgets.download import slug
from ipyimagegen.widgets.history import HistoryBrowser
from ipyimagegen.widgets.studio import Studio
from widget_helpers import WAIT_S, Page


def png(seed: int, side: int = 320) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def save(gallery: Gallery, prompt: str, *, model: str = "dall-e-2", seed: int = 0, parent: str | None = None):
    request = GenerateRequest(prompt=prompt, model=model, size="256x256")
    return gallery.save(GeneratedImage(data=png(seed), request=request), parent_id=parent)


@pytest.fixture
def gallery(tmp_path: Path) -> Gallery:
    with Gallery(tmp_path / "gallery") as opened:
        yield opened


@pytest.fixture
def filled(gallery: Gallery) -> Gallery:
    for index in range(30):
        model = "dall-e-3" if index % 3 == 0 else "dall-e-2"
        animal = "fox" if index % 5 == 0 else "owl"
        save(gallery, f"picture {index:02d} of a {animal}", model=model, seed=index)
    return gallery


def prompts(browser: HistoryBrowser) -> list[str]:
    return [tile.item.prompt for tile in browser.tiles]


def is_closed(widget: widgets.Widget) -> bool:
    return widget.comm is None


def test_pages_of_thumbnails_newest_first(filled: Gallery) -> None:
    browser = HistoryBrowser(filled, page_size=12)
    assert "ipyimagegen-history" in browser._dom_classes
    assert len(browser.tiles) == 12
    assert prompts(browser)[:2] == ["picture 29 of a owl", "picture 28 of a owl"]
    assert browser.page_label.value == "page 1 of 3 · 30 images"
    assert browser.prev_button.disabled and not browser.next_button.disabled
    browser.next_button.click()
    assert browser.page_label.value.startswith("page 2 of 3")
    assert prompts(browser)[0] == "picture 17 of a owl"
    browser.next_button.click()
    assert len(browser.tiles) == 6 and browser.next_button.disabled
    assert prompts(browser)[-1] == "picture 00 of a fox"
    browser.prev_button.click()
    assert browser.page == 1 and len(browser.tiles) == 12


def test_tiles_show_the_cached_thumbnail_and_the_prompt(gallery: Gallery) -> None:
    long_prompt = "a very long prompt about a <castle> " + "with many towers and flags " * 10
    item = save(gallery, long_prompt)
    browser = HistoryBrowser(gallery)
    page = Page(browser.view)
    (tile,) = browser.tiles
    page.send({"event": "want", "ids": [tile.id]})  # the page asks for the thumbnails it lacks
    assert page.picture(tile) == gallery.thumbnail(item.id, max_side=256)[0]
    assert len(page.picture(tile)) < len(item.data) / 3
    shown = page.tile(tile)
    assert shown["prompt"] == long_prompt  # the page shortens it and shows all of it on hover
    assert "dall-e-2" in shown["label"] and "320x320" in shown["label"]


def test_search_and_model_filter(filled: Gallery) -> None:
    browser = HistoryBrowser(filled, page_size=12)
    browser.show_page(2)
    browser.search.value = "fox"
    assert browser.page == 0
    assert prompts(browser) == [f"picture {i:02d} of a fox" for i in (25, 20, 15, 10, 5, 0)]
    assert [label for label, _ in browser.model_filter.options] == ["All models", "dall-e-2", "dall-e-3"]
    browser.model_filter.value = "dall-e-3"
    assert prompts(browser) == [f"picture {i:02d} of a fox" for i in (15, 0)]
    browser.search.value = "giraffe"
    assert browser.tiles == [] and browser.view.tiles == []
    assert "No image matches" in browser.view.empty_text
    browser.search.value = ""
    browser.model_filter.value = ""
    assert browser.total == 30


def test_the_search_follows_typing_after_a_pause_and_enter_at_once(filled: Gallery) -> None:
    browser = HistoryBrowser(filled, page_size=12)
    helper = browser.search_as_you_type
    (toolbar,) = [box for box in browser.children if browser.search in getattr(box, "children", ())]
    assert helper in toolbar.children and helper.layout.display == "none"  # beside the box, unseen
    assert "ipyimagegen-history" in browser._dom_classes
    assert "ipyimagegen-history-search" in browser.search._dom_classes
    assert (helper.scope, helper.field, helper.delay_ms) == (
        "ipyimagegen-history",
        "ipyimagegen-history-search",
        300,
    )
    assert not browser.search.continuous_update  # the page sends the text once typing pauses, not per key
    assert "as you type" in browser.search.placeholder and "Enter searches at once" in browser.search.tooltip
    browser.show_page(1)
    browser.search.set_state({"value": "fox"})  # the text as the page sends it (after a pause, or on Enter)
    assert browser.page == 0 and browser.total == 6  # the list follows at once: nothing waits in the kernel
    browser.close()
    assert helper.comm is None


def test_tile_actions_fire_callbacks_with_the_item(filled: Gallery) -> None:
    browser = HistoryBrowser(filled)
    page = Page(browser.view)
    got: dict[str, list[GalleryItem]] = {"reuse": [], "edit": [], "variations": []}
    browser.on_reuse(got["reuse"].append)
    browser.on_edit(got["edit"].append)
    browser.on_variations(got["variations"].append)
    first, second = browser.tiles[:2]
    page.click(first, "reuse")
    page.click(second, "edit")
    page.click(second, "variations")
    assert got["reuse"] == [first.item] and isinstance(first.item, GalleryItem)
    assert got["edit"] == [second.item] and got["variations"] == [second.item]
    assert got["reuse"][0].to_request().prompt == "picture 29 of a owl"
    browser.on_reuse(got["reuse"].append, remove=True)
    page.click(first, "reuse")
    assert len(got["reuse"]) == 1


def test_enlarge_shows_the_full_image_with_its_details_and_steps_through_the_page(filled: Gallery) -> None:
    browser = HistoryBrowser(filled, page_size=4)
    page = Page(browser.view)
    first, second = browser.tiles[:2]
    page.click(first, "enlarge")
    viewer = browser.view.viewer
    assert viewer["open"] and bytes(browser.view.viewer_image) == first.item.data
    assert viewer["filename"] == f"{first.item.id}-picture-29-of-a-owl.png"  # as the grid's
    assert viewer["prompt"] == "picture 29 of a owl"
    assert ["Gallery id", first.item.id] in viewer["facts"]
    page.send({"event": "viewer", "do": "step", "by": 1})
    assert browser.view.viewer["id"] == second.id
    page.send({"event": "viewer", "do": "close"})
    assert browser.view.viewer == {"open": False} and browser.view.viewer_image == b""


def test_ticked_images_export_as_a_zip_downloaded_in_the_page(filled: Gallery) -> None:
    browser = HistoryBrowser(filled, page_size=4)
    page = Page(browser.view)
    assert browser.export_button.disabled
    page.tick(browser.tiles[0])
    browser.next_button.click()
    page.tick(browser.tiles[1])  # a selection spans pages
    assert browser.export_button.description == "Export (2)" and page.tile(browser.tiles[1])["selected"]
    browser.export_button.click()
    ((name, mime, data),) = page.files
    assert mime == "application/zip" and name.endswith(".zip") and name in browser.status.value
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        assert [entry["prompt"] for entry in manifest["items"]] == [
            "picture 29 of a owl",
            "picture 24 of a owl",
        ]
        assert "manifest.csv" in archive.namelist()
        assert sum(n.startswith("images/") for n in archive.namelist()) == 2
    browser.select_none()
    assert browser.selected_ids == [] and browser.export_button.disabled
    browser.select_page()
    assert browser.selected_ids == [tile.id for tile in browser.tiles]


def test_delete_asks_once_then_removes_the_image_and_its_tile(filled: Gallery) -> None:
    browser = HistoryBrowser(filled, page_size=12)
    page = Page(browser.view)
    deleted: list[str] = []
    browser.on_delete(deleted.append)
    tile = browser.tiles[0]
    item = tile.item
    page.click(tile, "delete")
    assert page.tile(tile)["labels"] == {"delete": "Delete?"} and item.id in filled
    page.click(tile, "reuse")  # another click on the tile: the question goes away
    assert page.tile(tile)["labels"] == {}
    page.click(tile, "delete")
    page.click(tile, "delete")
    assert item.id not in filled and not item.path.exists() and deleted == [item.id]
    assert item.id not in [t.item.id for t in browser.tiles]
    assert len(browser.tiles) == 12 and browser.total == 29


def test_refresh_shows_new_images_and_keeps_the_tiles_already_shown(filled: Gallery) -> None:
    browser = HistoryBrowser(filled, page_size=12)
    before = browser.tiles
    newest = save(filled, "a brand new heron", model="gpt-image-1", seed=99)
    browser.refresh()
    assert browser.tiles[0].item.id == newest.id
    assert browser.tiles[1:] == before[:11]  # the same tiles: their thumbnails are not read again
    assert "gpt-image-1" in [value for _, value in browser.model_filter.options]
    assert browser.page_label.value == "page 1 of 3 · 31 images"


def test_lineage_shows_parents_and_children(gallery: Gallery) -> None:
    root = save(gallery, "root image", seed=1)
    child = save(gallery, "an edit of it", seed=2, parent=root.id)
    grandchild = save(gallery, "a variation of the edit", seed=3, parent=child.id)
    browser = HistoryBrowser(gallery)
    page = Page(browser.view)
    tile = next(t for t in browser.tiles if t.item.id == grandchild.id)
    page.click(tile, "lineage")
    assert browser.lineage.layout.display is None
    steps = [part for part in browser.lineage_steps.children if isinstance(part, widgets.VBox)]
    assert len(steps) == 3
    assert all(isinstance(step.children[0], widgets.Image) for step in steps)
    assert "root image" in steps[0].children[1].value and "variation" in steps[2].children[1].value
    assert "2 steps" in browser.lineage_title.value
    browser.lineage_close.click()
    assert browser.lineage.layout.display == "none" and all(is_closed(step) for step in steps)
    page.click(next(t for t in browser.tiles if t.item.id == root.id), "lineage")  # the other way
    assert "1 image made from it" in browser.lineage_title.value
    assert len([p for p in browser.lineage_steps.children if isinstance(p, widgets.VBox)]) == 2
    middle = next(t for t in browser.tiles if t.item.id == child.id)
    page.click(middle, "delete")
    page.click(middle, "delete")
    assert browser.lineage.layout.display == "none"


def test_lineage_shows_an_edits_upload_and_mask(gallery: Gallery) -> None:
    from ipyimagegen.api.types import EditRequest

    upload = InputImage.from_bytes(png(5, side=64))
    mask = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    request = EditRequest(
        prompt="the same, in snow",
        images=[upload],
        mask=InputImage.from_bytes(buffer.getvalue()),
        model="dall-e-2",
    )
    edited = gallery.save(GeneratedImage(data=png(6, side=64), request=request))
    browser = HistoryBrowser(gallery)
    Page(browser.view).click(browser.tiles[0], "lineage")
    captions = [
        part.children[1].value for part in browser.lineage_steps.children if isinstance(part, widgets.VBox)
    ]
    assert len(captions) == 3 and "upload" in captions[0] and "mask" in captions[1] and "edit" in captions[2]
    browser.enlarge(edited)
    assert ["Inputs", "1 image and a mask"] in browser.view.viewer["facts"]


def test_errors_go_to_the_status_line(gallery: Gallery, capsys: pytest.CaptureFixture[str]) -> None:
    item = save(gallery, "its file will vanish")
    item.path.unlink()  # behind the gallery's back
    browser = HistoryBrowser(gallery)
    page = Page(browser.view)
    (tile,) = browser.tiles
    assert tile.picture is None and page.tile(tile)["placeholder"] == "no preview"
    gallery.close()
    browser.refresh()
    assert "Could not read the gallery" in browser.status.value and "open it again" in browser.status.value
    page.click(tile, "delete")
    page.click(tile, "delete")
    assert "Could not delete the image" in browser.status.value
    assert capsys.readouterr().out == ""


def test_an_empty_gallery_says_so(gallery: Gallery) -> None:
    browser = HistoryBrowser(gallery)
    assert browser.tiles == [] and "No saved images yet" in browser.view.empty_text
    assert browser.page_label.value == "page 1 of 1 · 0 images"
    assert browser.prev_button.disabled and browser.next_button.disabled
    save(gallery, "the first one")
    browser.refresh()
    assert len(browser.view.tiles) == 1


def test_a_variation_without_a_prompt_says_what_it_is(gallery: Gallery) -> None:
    request = VariationRequest(image=InputImage.from_bytes(png(1, side=64)), model="dall-e-2")
    gallery.save(GeneratedImage(data=png(2), request=request))
    browser = HistoryBrowser(gallery)
    assert browser.view.tiles[0]["prompt"] == "(variation, no prompt)"


# --- GIF and SVG, as the results grid shows them ---------------------------------------------------

FORMATS_MODEL = "gpt-image-2.6-flare"


def saved_formats(gallery: Gallery) -> tuple[GalleryItem, GalleryItem, GalleryItem]:
    """A PNG, then a GIF of 4 frames of 150 ms, then an SVG drawing of 1536×1024, from the preview engine."""
    engine = PreviewEngine()
    made = []
    for options in (
        {"output_format": "png"},
        {"output_format": "gif", "frame_count": 4, "frame_duration_ms": 150},
        {"output_format": "svg", "size": "1536x1024"},
    ):
        request = GenerateRequest(
            prompt=f"a red kite, {options['output_format']}", model=FORMATS_MODEL, seed=2, **options
        )
        made += gallery.save_response(engine.run(request))
    return made[0], made[1], made[2]


def test_a_gifs_tile_plays_and_gif_and_svg_tiles_carry_the_grids_badge(gallery: Gallery) -> None:
    still, gif, drawing = saved_formats(gallery)
    browser = HistoryBrowser(gallery)
    page = Page(browser.view)
    tiles = [browser.tile(item.id) for item in (still, gif, drawing)]
    assert [page.tile(tile)["badge"] for tile in tiles] == ["", "GIF", "SVG"]
    assert "plays" in page.tile(tiles[1])["badge_title"] and page.tile(tiles[0])["badge_title"] == ""
    page.send({"event": "want", "ids": [tile.id for tile in tiles]})
    _version, data, mime = page.pictures[gif.id]
    assert mime == "image/gif" and len(data) * 2 < len(gif.data)
    with Image.open(io.BytesIO(data)) as small:
        assert small.n_frames == 4 and max(small.size) == 256
        assert small.info["duration"] == 150 and small.info["loop"] == 0
    assert (gallery.thumbnails_dir / f"{gif.id}-256.gif").read_bytes() == data  # kept for the next page
    _version, data, mime = page.pictures[drawing.id]
    assert mime != "image/svg+xml" and b"<svg" not in data  # a raster copy: no markup reaches the page
    assert Image.open(io.BytesIO(data)).size == (256, 171)
    assert gallery.thumbnail(gif.id, 256)[1] == "image/jpeg"  # elsewhere a GIF's thumbnail is its first frame


def test_the_viewer_tells_a_gifs_animation_and_shows_an_svg_as_the_drawing_it_is(gallery: Gallery) -> None:
    _still, gif, drawing = saved_formats(gallery)
    browser = HistoryBrowser(gallery)
    page = Page(browser.view)
    page.click(browser.tile(gif.id), "enlarge")
    viewer = browser.view.viewer
    assert ["Animation", "4 frames × 150 ms, looping"] in viewer["facts"]
    assert ["Size", "1024×1024"] in viewer["facts"] and viewer["size"] == [1024, 1024]
    assert not [row for row in viewer["facts"] if row[0] in ("Frame count", "Frame duration ms")]
    assert viewer["filename"].endswith(".gif") and bytes(browser.view.viewer_image) == gif.data
    page.click(browser.tile(drawing.id), "enlarge")
    viewer = browser.view.viewer
    assert viewer["mime"] == "image/svg+xml" and viewer["size"] == [1536, 1024]  # the page sizes the <img>
    assert ["Size", "1536×1024 (SVG: it scales)"] in viewer["facts"]
    assert viewer["filename"].endswith(".svg") and bytes(browser.view.viewer_image) == drawing.data
    assert not any("<svg" in str(value) for value in viewer.values())  # the drawing goes as bytes only


def test_edit_and_variations_of_an_svg_get_a_png_of_it_with_the_items_settings(gallery: Gallery) -> None:
    _still, gif, drawing = saved_formats(gallery)
    browser = HistoryBrowser(gallery)
    sent: list[GalleryItem] = []
    browser.on_edit(sent.append)
    browser.on_variations(sent.append)
    browser.act(browser.tile(drawing.id), "edit")
    browser.act(browser.tile(drawing.id), "variations")
    browser.act(browser.tile(gif.id), "edit")
    edit, variation, of_gif = sent
    for picture in (edit, variation):
        assert isinstance(picture, GalleryItem) and picture.id == drawing.id
        assert picture.mime_type == "image/png" and picture.data[:8] == b"\x89PNG\r\n\x1a\n"
        assert Image.open(io.BytesIO(picture.data)).size == (1536, 1024)
        assert picture.to_request().prompt == drawing.prompt and picture.seed == drawing.seed
    assert of_gif is browser.tile(gif.id).item  # a raster file goes as it is
    assert drawing.path.read_bytes()[:5] != b"\x89PNG\r"  # the drawing itself is kept as it was


def test_the_studios_history_sends_a_png_of_an_svg_to_the_edit_and_variations_tabs(gallery: Gallery) -> None:
    _still, _gif, drawing = saved_formats(gallery)
    s = Studio(PreviewEngine(), gallery=gallery)
    history = s.history
    assert history is not None
    history.act(history.tile(drawing.id), "edit")
    prepared = s.edit_tab.prepared
    assert s.tabs.selected_index == 1 and prepared is not None
    assert prepared.input.data[:8] == b"\x89PNG\r\n\x1a\n"  # the model gets a picture, not SVG markup
    history.act(history.tile(drawing.id), "variations")
    assert (
        s.variations_tab.prepared is not None and s.variations_tab.prepared.data[:8] == b"\x89PNG\r\n\x1a\n"
    )
    s.close()


def test_size_and_cost_read_as_in_the_grids_viewer(gallery: Gallery) -> None:
    """The same picture, in the grid's viewer and in History's: the same words for its size and cost."""
    s = Studio(PreviewEngine(), gallery=gallery)
    tab = s.generate_tab
    tab.params.model = FORMATS_MODEL
    tab.params.format_control.value = "gif"
    tab.prompt_box.value = "a red kite over the sea"
    tab.controls.run_button.click()
    assert s.runner.wait(WAIT_S)
    (saved,) = gallery.items()
    assert (
        gallery.thumbnails_dir / f"{saved.id}-256.gif"
    ).exists()  # the grid's, kept: History need not make it
    grid_page, history = Page(s.grid.view), s.history
    assert history is not None
    history_page = Page(history.view)
    grid_page.click(s.grid.tiles[0], "enlarge")
    history_page.click(history.tiles[0], "enlarge")
    in_grid, in_history = s.grid.view.viewer, history.view.viewer
    for term in ("Size", "Animation", "Cost"):
        (grid_row,) = [row for row in in_grid["facts"] if row[0] == term]
        (history_row,) = [row for row in in_history["facts"] if row[0] == term]
        assert grid_row == history_row, term
    (cost,) = [value for term, value in in_history["facts"] if term == "Cost"]
    assert cost.startswith("free (≈ $") and cost.endswith(" on OpenAI)")  # the preview engine bills nothing
    assert in_grid["filename"] == in_history["filename"] == f"{saved.id}-{slug(saved.prompt)}.gif"
    s.close()
