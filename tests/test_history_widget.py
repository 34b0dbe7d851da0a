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
from ipyimagegen.gallery import Gallery, GalleryItem
from ipyimagegen.widgets.history import HistoryBrowser
from widget_helpers import Page


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
    assert viewer["filename"] == first.item.path.name and viewer["prompt"] == "picture 29 of a owl"
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
