"""The History browser, driven in pure Python: pages, filters, tile actions, delete, lineage, refresh."""

from __future__ import annotations

import io
from pathlib import Path

import ipywidgets as widgets
import numpy as np
import pytest
from PIL import Image

from ipyimagegen.api.types import GeneratedImage, GenerateRequest, InputImage, VariationRequest
from ipyimagegen.gallery import Gallery, GalleryItem
from ipyimagegen.widgets.history import HistoryBrowser, HistoryTile


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


def test_tiles_show_the_cached_thumbnail_and_the_prompt_with_a_tooltip(gallery: Gallery) -> None:
    long_prompt = "a very long prompt about a <castle> " + "with many towers and flags " * 10
    item = save(gallery, long_prompt)
    browser = HistoryBrowser(gallery)
    (tile,) = browser.tiles
    assert "ipyimagegen-history-tile" in tile._dom_classes
    assert isinstance(tile.picture, widgets.Image)
    assert (tile.picture.value, "image/" + tile.picture.format) == gallery.thumbnail(item.id, max_side=256)
    assert len(tile.picture.value) < len(item.data) / 3
    assert "…" in tile.prompt_html.value and "&lt;castle&gt;" in tile.prompt_html.value
    assert f'title="{long_prompt.replace("<", "&lt;").replace(">", "&gt;")}"' in tile.prompt_html.value
    assert "dall-e-2" in tile.label.value and "320x320" in tile.label.value


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
    assert browser.tiles == [] and browser.tiles_box.children == (browser.empty_note,)
    assert "No image matches" in browser.empty_note.value
    browser.search.value = ""
    browser.model_filter.value = ""
    assert browser.total == 30


def test_tile_actions_fire_callbacks_with_the_item(filled: Gallery) -> None:
    browser = HistoryBrowser(filled)
    got: dict[str, list[GalleryItem]] = {"reuse": [], "edit": [], "variations": []}
    browser.on_reuse(got["reuse"].append)
    browser.on_edit(got["edit"].append)
    browser.on_variations(got["variations"].append)
    first, second = browser.tiles[:2]
    first.reuse_button.click()
    second.edit_button.click()
    second.variations_button.click()
    assert got["reuse"] == [first.item] and isinstance(first.item, GalleryItem)
    assert got["edit"] == [second.item] and got["variations"] == [second.item]
    assert got["reuse"][0].to_request().prompt == "picture 29 of a owl"
    browser.on_reuse(got["reuse"].append, remove=True)
    first.reuse_button.click()
    assert len(got["reuse"]) == 1


def test_delete_asks_once_then_removes_the_image_and_its_tile(filled: Gallery) -> None:
    browser = HistoryBrowser(filled, page_size=12)
    tile = browser.tiles[0]
    item = tile.item
    tile.delete_button.click()
    assert tile.delete_button.description == "Delete?" and item.id in filled
    tile.delete_button.click()
    assert item.id not in filled and not item.path.exists()
    assert item.id not in [t.item.id for t in browser.tiles]
    assert len(browser.tiles) == 12 and browser.total == 29
    assert is_closed(tile) and is_closed(tile.picture)


def test_refresh_shows_new_images_and_keeps_the_tiles_already_shown(filled: Gallery) -> None:
    browser = HistoryBrowser(filled, page_size=12)
    before = browser.tiles
    newest = save(filled, "a brand new heron", model="gpt-image-1", seed=99)
    browser.refresh()
    assert browser.tiles[0].item.id == newest.id
    assert browser.tiles[1:] == before[:11]  # the same widgets: their thumbnails are not sent again
    assert is_closed(before[11]) and not is_closed(before[0])
    assert "gpt-image-1" in [value for _, value in browser.model_filter.options]
    assert browser.page_label.value == "page 1 of 3 · 31 images"


def test_lineage_shows_the_chain_of_parents(gallery: Gallery) -> None:
    root = save(gallery, "root image", seed=1)
    child = save(gallery, "an edit of it", seed=2, parent=root.id)
    grandchild = save(gallery, "a variation of the edit", seed=3, parent=child.id)
    browser = HistoryBrowser(gallery)
    tile = next(t for t in browser.tiles if t.item.id == grandchild.id)
    tile.lineage_button.click()
    assert browser.lineage.layout.display is None
    steps = [part for part in browser.lineage_steps.children if isinstance(part, widgets.VBox)]
    assert len(steps) == 3
    assert all(isinstance(step.children[0], widgets.Image) for step in steps)
    assert "root image" in steps[0].children[1].value and "variation" in steps[2].children[1].value
    assert "2 steps" in browser.lineage_title.value
    browser.lineage_close.click()
    assert browser.lineage.layout.display == "none" and all(is_closed(step) for step in steps)
    tile.lineage_button.click()
    middle = next(t for t in browser.tiles if t.item.id == child.id)
    middle.delete_button.click()
    middle.delete_button.click()
    assert browser.lineage.layout.display == "none"


def test_errors_go_to_the_status_line(gallery: Gallery, capsys: pytest.CaptureFixture[str]) -> None:
    item = save(gallery, "its file will vanish")
    item.path.unlink()  # behind the gallery's back
    browser = HistoryBrowser(gallery)
    (tile,) = browser.tiles
    assert isinstance(tile.picture, widgets.HTML) and "no preview" in tile.picture.value
    gallery.close()
    browser.refresh()
    assert "Could not read the gallery" in browser.status.value and "open it again" in browser.status.value
    tile.delete_button.click()
    tile.delete_button.click()
    assert "Could not delete the image" in browser.status.value
    assert capsys.readouterr().out == ""


def test_an_empty_gallery_says_so(gallery: Gallery) -> None:
    browser = HistoryBrowser(gallery)
    assert browser.tiles == [] and "No saved images yet" in browser.empty_note.value
    assert browser.page_label.value == "page 1 of 1 · 0 images"
    assert browser.prev_button.disabled and browser.next_button.disabled
    save(gallery, "the first one")
    browser.refresh()
    assert [type(child) for child in browser.tiles_box.children] == [HistoryTile]


def test_a_variation_without_a_prompt_says_what_it_is(gallery: Gallery) -> None:
    request = VariationRequest(image=InputImage.from_bytes(png(1, side=64)), model="dall-e-2")
    gallery.save(GeneratedImage(data=png(2), request=request))
    (tile,) = HistoryBrowser(gallery).tiles
    assert "(variation, no prompt)" in tile.prompt_html.value
