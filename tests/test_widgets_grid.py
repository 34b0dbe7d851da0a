"""ResultGrid: placeholders, thumbnails only, enlarge/save/delete and the tile actions."""

from __future__ import annotations

import io
from pathlib import Path

import ipywidgets as widgets
from PIL import Image

from ipyimagegen.api.types import GeneratedImage, GenerateRequest, ImagesResponse, PartialImage
from ipyimagegen.widgets.result_grid import ResultGrid
from widget_helpers import make_png


def _response(request: GenerateRequest, revised: str | None = None) -> ImagesResponse:
    images = [
        GeneratedImage(data=make_png(512, i), index=i, revised_prompt=revised, request=request)
        for i in range(request.n)
    ]
    return ImagesResponse(data=images, request=request)


def _request(n: int = 2, prompt: str = "a blue heron", model: str = "gpt-image-1.5") -> GenerateRequest:
    return GenerateRequest(prompt=prompt, model=model, n=n, size="1024x1024")


def test_placeholders_appear_at_once_and_are_filled_in_order() -> None:
    grid = ResultGrid()
    batch = grid.start(_request(n=3))
    assert len(grid.tiles) == 3 and not any(tile.is_filled for tile in grid.tiles)
    assert all("waiting" in tile.label.value for tile in grid.tiles)
    response = _response(_request(n=3))
    batch.fill(response)
    assert grid.images == response.data
    assert [tile.label_text() for tile in grid.tiles] == [
        "#1 · gpt-image-1.5 · 1024x1024 · 1/3",
        "#1 · gpt-image-1.5 · 1024x1024 · 2/3",
        "#1 · gpt-image-1.5 · 1024x1024 · 3/3",
    ]
    assert all("ipyimagegen-tile" in tile._dom_classes for tile in grid.tiles)
    assert "ipyimagegen-grid" in grid.tiles_box._dom_classes


def test_newest_request_comes_first() -> None:
    grid = ResultGrid()
    first = grid.start(_request(n=1, prompt="first"))
    second = grid.start(_request(n=2, prompt="second"))
    first.fill(_response(_request(n=1, prompt="first")))
    second.fill(_response(_request(n=2, prompt="second")))
    assert [tile.prompt for tile in grid.tiles] == ["second", "second", "first"]
    assert [tile.number for tile in grid.tiles] == [2, 2, 1]


def test_tiles_hold_small_thumbnails_not_the_full_image() -> None:
    grid = ResultGrid()
    request = _request(n=1)
    grid.start(request).fill(_response(request))
    tile = grid.tiles[0]
    assert tile.picture is not None and "ipyimagegen-tile-image" in tile.picture._dom_classes
    full = len(tile.image.data)
    assert len(tile.picture.value) * 10 < full


def test_prompt_shows_the_revised_prompt_with_the_full_text_as_tooltip() -> None:
    grid = ResultGrid()
    request = _request(n=1, prompt="short")
    revised = "A detailed painting of a short bird " + "with many words " * 20
    grid.start(request).fill(_response(request, revised=revised))
    tile = grid.tiles[0]
    assert tile.prompt == revised
    assert f'title="{revised}"' in tile.prompt_html.value
    assert "…" in tile.prompt_html.value  # the visible text is shortened


def test_partial_previews_fill_placeholders_until_the_result_arrives() -> None:
    grid = ResultGrid()
    request = _request(n=2)
    batch = grid.start(request)
    batch.show_partial(PartialImage(index=1, partial_index=0, data=make_png(64, 3)))
    second = grid.tiles[1]
    assert second.picture is not None and len(second.picture.value) > 0
    assert "preview 1" in second.label.value
    assert grid.tiles[0].picture is None
    batch.show_partial(PartialImage(index=7, partial_index=0, data=make_png(64, 3)))  # out of range: ignored
    batch.fill(_response(request))
    assert "preview" not in second.label.value and second.is_filled


def test_fewer_results_than_placeholders_removes_the_rest() -> None:
    grid = ResultGrid()
    batch = grid.start(_request(n=4))
    batch.fill(_response(_request(n=3)))
    assert len(grid.tiles) == 3 and all(tile.is_filled for tile in grid.tiles)


def test_discard_removes_placeholders_only() -> None:
    grid = ResultGrid()
    done = grid.start(_request(n=1))
    done.fill(_response(_request(n=1)))
    failed = grid.start(_request(n=2))
    failed.discard()
    assert len(grid.tiles) == 1 and grid.tiles[0].is_filled


def test_enlarge_sends_the_full_image_and_close_frees_it() -> None:
    grid = ResultGrid()
    request = _request(n=1)
    grid.start(request).fill(_response(request))
    tile = grid.tiles[0]
    assert tile.enlarge_button.disabled is False
    tile.enlarge_button.click()
    shown = grid.preview_slot.children[0]
    assert isinstance(shown, widgets.Image)
    assert bytes(shown.value) == tile.image.data
    assert grid.preview.layout.display is None
    assert "512×512" in grid.preview_caption.value
    grid.preview_close.click()
    assert grid.preview_slot.children == () and grid.preview.layout.display == "none"
    assert shown.comm is None  # closed


def test_save_writes_the_full_image_and_offers_a_download_on_demand(tmp_path: Path) -> None:
    grid = ResultGrid(save_dir=tmp_path)
    request = _request(n=1)
    grid.start(request).fill(_response(request))
    tile = grid.tiles[0]
    tile.save_button.click()
    saved = list(tmp_path.iterdir())
    assert len(saved) == 1 and saved[0].read_bytes() == tile.image.data
    assert str(saved[0]) in grid.notice.value and "data:" not in grid.notice.value
    button = grid.download
    assert button is not None and button.filename == saved[0].name
    assert grid.notice_row.children == (grid.notice, button)
    state = button.get_state()
    assert max(len(str(value)) for value in state.values()) < 2000  # no image bytes in the synced state
    sent: list[tuple[dict, list]] = []
    button.send = lambda content, buffers=None: sent.append((content, buffers))  # type: ignore[method-assign]
    button._handle_message(button, {"event": "download"}, [])  # the page's click
    assert sent == [({"event": "file", "name": saved[0].name, "mime": "image/png"}, [saved[0].read_bytes()])]
    tile.save_button.click()
    assert len(list(tmp_path.iterdir())) == 2  # never overwrites
    assert button.comm is None and grid.download is not button  # the old button is closed


def test_save_reports_a_folder_it_cannot_write(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    grid = ResultGrid(save_dir=blocker / "sub")
    request = _request(n=1)
    grid.start(request).fill(_response(request))
    assert grid.save(grid.tiles[0]) is None
    assert "Could not save" in grid.notice.value


def test_tile_actions_fire_callbacks_with_the_image() -> None:
    grid = ResultGrid()
    request = _request(n=2)
    response = _response(request)
    batch = grid.start(request)
    events: list[tuple[str, object]] = []
    grid.on_edit(lambda image: events.append(("edit", image)))
    grid.on_variations(lambda image: events.append(("variations", image)))
    grid.on_use_prompt(lambda prompt: events.append(("prompt", prompt)))
    placeholder = grid.tiles[0]
    assert placeholder.edit_button.disabled  # nothing to act on yet
    batch.fill(response)
    second = grid.tiles[1]
    second.edit_button.click()
    second.variations_button.click()
    second.use_prompt_button.click()
    assert events == [("edit", response[1]), ("variations", response[1]), ("prompt", "a blue heron")]


def test_delete_removes_the_tile_and_closes_its_image() -> None:
    grid = ResultGrid()
    request = _request(n=2)
    grid.start(request).fill(_response(request))
    tile = grid.tiles[0]
    picture = tile.picture
    tile.enlarge_button.click()
    tile.delete_button.click()
    assert tile not in grid.tiles and len(grid.tiles) == 1
    assert picture is not None and picture.comm is None and tile.comm is None
    assert grid.preview_slot.children == ()  # its enlarged view went with it
    grid.clear()
    assert grid.tiles == []


def test_transparent_results_keep_a_small_thumbnail() -> None:
    buffer = io.BytesIO()
    Image.new("RGBA", (600, 400), (10, 200, 30, 0)).save(buffer, format="PNG")
    grid = ResultGrid()
    request = _request(n=1)
    grid.start(request).fill(ImagesResponse(data=[GeneratedImage(data=buffer.getvalue(), request=request)]))
    tile = grid.tiles[0]
    assert tile.picture is not None and tile.picture.format in ("webp", "png")


def test_a_placeholder_removed_while_waiting_stays_removed() -> None:
    grid = ResultGrid()
    request = _request(n=3)
    batch = grid.start(request)
    grid.tiles[1].delete_button.click()
    batch.fill(_response(request))
    assert [tile.index for tile in grid.tiles] == [0, 2]
    assert all(tile.is_filled for tile in grid.tiles)


def test_a_single_image_request_is_labelled_without_a_count() -> None:
    grid = ResultGrid()
    grid.start(_request(n=1))
    (tile,) = grid.tiles
    assert tile.label_text() == "#1 · gpt-image-1.5 · 1024x1024"
