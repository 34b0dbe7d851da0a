"""ResultGrid: placeholders, thumbnails only, the viewer, save/delete, pages and the tile actions.

The page's side is :class:`widget_helpers.Page`: the tiles' JSON and thumbnails the grid sends,
and clicks sent back as the page script sends them."""

from __future__ import annotations

import base64
import gc
import io
import json
import weakref
from pathlib import Path

import ipywidgets as widgets
import pytest
from PIL import Image

from ipyimagegen.api.types import GeneratedImage, GenerateRequest, ImagesResponse, PartialImage
from ipyimagegen.gallery import Gallery
from ipyimagegen.session import save_to_gallery
from ipyimagegen.widgets.result_grid import ResultGrid
from ipyimagegen.widgets.tile_model import TileModel
from widget_helpers import Page, iter_widgets, make_png


def _response(request: GenerateRequest, revised: str | None = None) -> ImagesResponse:
    images = [
        GeneratedImage(data=make_png(512, i), index=i, revised_prompt=revised, request=request)
        for i in range(request.n)
    ]
    return ImagesResponse(data=images, request=request)


def _request(n: int = 2, prompt: str = "a blue heron", model: str = "gpt-image-1.5") -> GenerateRequest:
    return GenerateRequest(prompt=prompt, model=model, n=n, size="1024x1024")


def _filled_grid(batches: int, page_size: int) -> tuple[ResultGrid, Page]:
    """A grid of ``batches`` filled requests of two images each, and its page."""
    grid = ResultGrid(page_size=page_size)
    page = Page(grid.view)
    for _ in range(batches):
        request = _request(n=2)
        grid.start(request).fill(_response(request))
    return grid, page


def test_placeholders_appear_at_once_and_are_filled_in_order() -> None:
    grid = ResultGrid()
    page = Page(grid.view)
    batch = grid.start(_request(n=3))
    assert len(grid.tiles) == 3 and not any(tile.is_filled for tile in grid.tiles)
    assert all(page.tile(tile)["label"].endswith("waiting") for tile in grid.tiles)
    assert all(page.tile(tile)["picture"] == 0 and page.enabled(tile) == {"delete"} for tile in grid.tiles)
    response = _response(_request(n=3))
    batch.fill(response)
    assert grid.images == response.data
    assert [page.tile(tile)["label"] for tile in grid.tiles] == [
        "#1 · gpt-image-1.5 · 1024x1024 · 1/3",
        "#1 · gpt-image-1.5 · 1024x1024 · 2/3",
        "#1 · gpt-image-1.5 · 1024x1024 · 3/3",
    ]
    assert all(page.picture(tile) for tile in grid.tiles)
    assert all(
        {"enlarge", "save", "edit", "variations", "use_prompt"} <= page.enabled(tile) for tile in grid.tiles
    )


def test_newest_request_comes_first() -> None:
    grid = ResultGrid()
    first = grid.start(_request(n=1, prompt="first"))
    second = grid.start(_request(n=2, prompt="second"))
    first.fill(_response(_request(n=1, prompt="first")))
    second.fill(_response(_request(n=2, prompt="second")))
    assert [tile.prompt for tile in grid.tiles] == ["second", "second", "first"]
    assert [tile.number for tile in grid.tiles] == [2, 2, 1]
    assert [shown["prompt"] for shown in grid.view.tiles] == ["second", "second", "first"]


def test_tiles_hold_small_thumbnails_not_the_full_image() -> None:
    grid = ResultGrid()
    page = Page(grid.view)
    request = _request(n=1)
    grid.start(request).fill(_response(request))
    tile = grid.tiles[0]
    thumbnail = page.picture(tile)
    assert thumbnail is not None and Image.open(io.BytesIO(thumbnail)).size == (256, 256)
    assert len(thumbnail) * 10 < len(tile.image.data)
    state = grid.view.get_state()
    assert len(str(state["tiles"])) < 2000  # the page's JSON carries no image bytes


def test_a_page_that_lacks_a_thumbnail_gets_it_when_it_asks() -> None:
    grid = ResultGrid()
    request = _request(n=2)
    grid.start(request).fill(_response(request))
    page = Page(grid.view)  # a page opened afterwards (a reload): it has the JSON, not the pictures
    assert page.pictures == {}
    page.send({"event": "want", "ids": [tile.id for tile in grid.tiles] + ["t-unknown"]})
    assert set(page.pictures) == {tile.id for tile in grid.tiles}
    assert all(page.pictures[tile.id][0] == page.tile(tile)["picture"] for tile in grid.tiles)


def test_the_prompt_shown_and_reused_is_the_users_and_the_revised_one_is_in_the_viewer() -> None:
    grid = ResultGrid()
    page = Page(grid.view)
    request = _request(n=1, prompt="short")
    revised = "A detailed painting of a short bird " + "with many words " * 20
    grid.start(request).fill(_response(request, revised=revised))
    tile = grid.tiles[0]
    assert tile.prompt == "short" and page.tile(tile)["prompt"] == "short"
    used: list[str] = []
    grid.on_action("use_prompt", used.append)
    page.click(tile, "use_prompt")
    assert used == ["short"]
    page.click(tile, "enlarge")
    assert grid.view.viewer["prompt"] == "short" and grid.view.viewer["revised_prompt"] == revised


def test_partial_previews_fill_placeholders_until_the_result_arrives() -> None:
    grid = ResultGrid()
    page = Page(grid.view)
    request = _request(n=2)
    batch = grid.start(request)
    batch.show_partial(PartialImage(index=1, partial_index=0, data=make_png(64, 3)))
    second = grid.tiles[1]
    preview = page.picture(second)
    assert preview is not None and page.tile(second)["label"].endswith("preview 1")
    assert page.picture(grid.tiles[0]) is None
    batch.show_partial(PartialImage(index=7, partial_index=0, data=make_png(64, 3)))  # out of range: ignored
    batch.fill(_response(request))
    assert "preview" not in page.tile(second)["label"] and second.is_filled
    assert page.picture(second) != preview and page.tile(second)["picture"] == 2


def test_a_tile_goes_from_waiting_through_previews_and_saving_to_filled() -> None:
    grid = ResultGrid()
    request = _request(n=1)
    batch = grid.start(request)
    (tile,) = grid.tiles
    assert tile.state == "waiting" and tile.status_text().endswith(" · waiting")
    for number in (1, 2):
        batch.show_partial(PartialImage(index=0, partial_index=number - 1, data=make_png(64, number)))
        assert (tile.state, tile.previews) == ("preview", number)
        assert tile.status_text().endswith(f" · preview {number}")
    response = _response(request)
    batch.show_ready(0, response.data[0])
    assert tile.state == "saving" and tile.status_text().endswith(" · saving")
    batch.fill(response)
    assert tile.state == "filled" and tile.status_text() == tile.label_text()


def test_fewer_results_than_placeholders_removes_the_rest() -> None:
    grid = ResultGrid()
    batch = grid.start(_request(n=4))
    batch.fill(_response(_request(n=3)))
    assert len(grid.tiles) == 3 and all(tile.is_filled for tile in grid.tiles)
    assert len(grid.view.tiles) == 3


def test_discard_removes_placeholders_only() -> None:
    grid = ResultGrid()
    done = grid.start(_request(n=1))
    done.fill(_response(_request(n=1)))
    failed = grid.start(_request(n=2))
    failed.discard()
    assert len(grid.tiles) == 1 and grid.tiles[0].is_filled


def test_enlarge_opens_the_viewer_with_the_full_image_and_close_frees_it() -> None:
    grid = ResultGrid()
    page = Page(grid.view)
    request = _request(n=2)
    grid.start(request).fill(_response(request))
    first, second = grid.tiles
    page.click(first, "enlarge")
    viewer = grid.view.viewer
    assert viewer["open"] and viewer["id"] == first.id and bytes(grid.view.viewer_image) == first.image.data
    assert ["Size", "512×512"] in viewer["facts"] and viewer["title"] == first.label_text()
    assert viewer["has_next"] and not viewer["has_previous"]
    assert set(viewer["actions"]) == {"edit", "variations", "use_prompt"}
    page.send({"event": "viewer", "do": "step", "by": 1})  # the right arrow key
    assert grid.view.viewer["id"] == second.id and bytes(grid.view.viewer_image) == second.image.data
    page.send({"event": "viewer", "do": "step", "by": 1})  # past the last: stays
    assert grid.view.viewer["id"] == second.id
    page.send({"event": "viewer", "do": "close"})  # Esc
    assert grid.view.viewer == {"open": False} and grid.view.viewer_image == b""


def test_the_viewer_steps_across_pages() -> None:
    grid, page = _filled_grid(batches=2, page_size=2)
    assert grid.page_index == 0 and grid.pages == 2
    page.click(grid.tiles[1], "enlarge")
    page.send({"event": "viewer", "do": "step", "by": 1})
    assert grid.page_index == 1 and grid.view.viewer["id"] == grid.tiles[2].id
    assert [shown["id"] for shown in grid.view.tiles] == [tile.id for tile in grid.tiles[2:]]


def test_save_writes_the_full_image_and_downloads_it_in_the_page(tmp_path: Path) -> None:
    grid = ResultGrid(save_dir=tmp_path)
    page = Page(grid.view)
    request = _request(n=1)
    grid.start(request).fill(_response(request))
    tile = grid.tiles[0]
    page.click(tile, "save")
    saved = list(tmp_path.iterdir())
    assert len(saved) == 1 and saved[0].read_bytes() == tile.image.data
    assert page.files == [(saved[0].name, "image/png", tile.image.data)]
    assert str(saved[0]) in grid.notice_html and grid.view.notice["html"] == grid.notice_html
    assert grid.view.notice["kind"] == "ok"
    state = grid.view.get_state()
    assert tile.image.data not in [value for value in state.values() if isinstance(value, bytes)]
    page.click(tile, "save")
    assert len(list(tmp_path.iterdir())) == 2  # never overwrites
    assert grid.view.notice["nonce"] == 2  # a new notice, shown again


def test_save_reports_a_folder_it_cannot_write(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    grid = ResultGrid(save_dir=blocker / "sub")
    request = _request(n=1)
    grid.start(request).fill(_response(request))
    assert grid.save(grid.tiles[0]) is None
    assert "Could not save" in grid.notice_html and grid.view.notice["kind"] == "error"


def test_tile_actions_fire_callbacks_with_the_image() -> None:
    grid = ResultGrid()
    page = Page(grid.view)
    request = _request(n=2)
    response = _response(request)
    batch = grid.start(request)
    events: list[tuple[str, object]] = []
    grid.on_action("edit", lambda image: events.append(("edit", image)))
    grid.on_action("variations", lambda image: events.append(("variations", image)))
    grid.on_action("use_prompt", lambda prompt: events.append(("prompt", prompt)))
    placeholder = grid.tiles[0]
    assert "edit" not in page.enabled(placeholder)
    page.click(placeholder, "edit")  # a click that raced the page: nothing to act on yet
    assert events == []
    batch.fill(response)
    second = grid.tiles[1]
    page.click(second, "edit")
    page.click(second, "variations")
    page.click(second, "use_prompt")
    assert events == [("edit", response[1]), ("variations", response[1]), ("prompt", "a blue heron")]


def test_actions_from_the_viewer_close_it() -> None:
    grid = ResultGrid()
    page = Page(grid.view)
    request = _request(n=1)
    grid.start(request).fill(_response(request))
    edited: list[object] = []
    grid.on_action("edit", edited.append)
    page.click(grid.tiles[0], "enlarge")
    page.send({"event": "action", "id": grid.tiles[0].id, "name": "edit", "from": "viewer"})
    assert len(edited) == 1 and grid.view.viewer == {"open": False}


def test_delete_removes_the_tile_and_its_viewer() -> None:
    grid = ResultGrid()
    page = Page(grid.view)
    request = _request(n=2)
    grid.start(request).fill(_response(request))
    tile = grid.tiles[0]
    page.click(tile, "enlarge")
    page.click(tile, "delete")
    assert tile not in grid.tiles and len(grid.tiles) == 1
    assert [shown["id"] for shown in grid.view.tiles] == [grid.tiles[0].id]
    assert grid.view.viewer == {"open": False}  # its enlarged view went with it
    grid.clear()
    assert grid.tiles == [] and grid.view.tiles == []


def test_clear_results_says_where_the_images_are() -> None:
    grid = ResultGrid()
    request = _request(n=2)
    grid.start(request).fill(_response(request))
    assert grid.toolbar.layout.display is None
    grid.clear_button.click()
    assert grid.tiles == [] and "Cleared 2 results" in grid.notice_html
    assert grid.toolbar.layout.display == "none"


def test_ticking_tiles_offers_compare() -> None:
    grid = ResultGrid()
    page = Page(grid.view)
    request = _request(n=3)
    batch = grid.start(request)
    page.tick(grid.tiles[0])  # a placeholder cannot be ticked
    assert not page.tile(grid.tiles[0])["selected"]
    batch.fill(_response(request))
    page.tick(grid.tiles[0])
    page.tick(grid.tiles[2])
    assert grid.selected_tiles == [grid.tiles[0], grid.tiles[2]] and page.tile(grid.tiles[2])["selected"]
    assert not grid.compare_button.disabled and grid.compare_button.description == "Compare (2)"
    page.tick(grid.tiles[2], False)
    assert grid.compare_button.disabled


def test_pages_hold_a_bounded_number_of_tiles() -> None:
    grid, page = _filled_grid(batches=5, page_size=4)
    assert len(grid.tiles) == 10 and len(grid.view.tiles) == 4
    assert grid.view.page == {"index": 0, "pages": 3, "total": 10, "first": 1, "last": 4}
    page.send({"event": "page", "by": 1})
    assert grid.view.page["index"] == 1 and [t["id"] for t in grid.view.tiles] == [
        t.id for t in grid.tiles[4:8]
    ]
    page.send({"event": "page", "by": 1})
    page.send({"event": "page", "by": 1})  # past the last: stays
    assert grid.view.page == {"index": 2, "pages": 3, "total": 10, "first": 9, "last": 10}
    grid.start(_request(n=1))  # a new request: back to the first page, where it is
    assert grid.page_index == 0 and grid.view.tiles[0]["id"] == grid.tiles[0].id


def test_a_tile_off_the_page_sends_nothing_when_it_changes() -> None:
    grid = ResultGrid(page_size=2)
    page = Page(grid.view)
    old = grid.start(_request(n=1))
    grid.start(_request(n=2))
    page.messages.clear()
    old.fill(_response(_request(n=1)))  # its tile is on page 2
    assert page.pictures == {} and page.messages == []


def test_transparent_results_keep_a_small_thumbnail() -> None:
    buffer = io.BytesIO()
    Image.new("RGBA", (600, 400), (10, 200, 30, 0)).save(buffer, format="PNG")
    grid = ResultGrid()
    request = _request(n=1)
    grid.start(request).fill(ImagesResponse(data=[GeneratedImage(data=buffer.getvalue(), request=request)]))
    tile = grid.tiles[0]
    assert tile.picture is not None and tile.picture[1] in ("image/webp", "image/png")


def test_a_placeholder_removed_while_waiting_stays_removed() -> None:
    grid = ResultGrid()
    page = Page(grid.view)
    request = _request(n=3)
    batch = grid.start(request)
    page.click(grid.tiles[1], "delete")
    batch.fill(_response(request))
    assert [tile.index for tile in grid.tiles] == [0, 2]
    assert all(tile.is_filled for tile in grid.tiles)


def test_a_single_image_request_is_labelled_without_a_count() -> None:
    grid = ResultGrid()
    grid.start(_request(n=1))
    (tile,) = grid.tiles
    assert tile.label_text() == "#1 · gpt-image-1.5 · 1024x1024"


def test_a_grid_keeps_thumbnails_of_saved_results_and_the_results_themselves_only_without_a_gallery(
    tmp_path: Path,
) -> None:
    with Gallery(tmp_path / "gallery") as gallery:
        for kept_by in (gallery, None):
            grid = ResultGrid()
            grid.gallery = kept_by
            request = _request(n=2)
            batch = grid.start(request)
            response = _response(request)
            save_to_gallery(kept_by, response, None, on_thumbnail=batch.show_ready)  # as the studio does
            batch.fill(response)
            made = [weakref.ref(image) for image in response.data]
            full = [  # the file in the gallery (its metadata embedded), or the result as it came
                kept_by.get(image.metadata["gallery_id"]).data if kept_by is not None else image.data
                for image in response.data
            ]
            del response
            gc.collect()
            assert [ref() is not None for ref in made] == [kept_by is None] * 2
            assert [tile.is_stored for tile in grid.tiles] == [kept_by is not None] * 2
            assert all(tile.picture is not None for tile in grid.tiles)
            assert [tile.image.data for tile in grid.tiles] == full


def _saved_state(root: widgets.Widget) -> str:
    """The widget state of ``root`` and everything it shows, as Jupyter saves it in a notebook."""
    return json.dumps(widgets.Widget.get_manager_state(widgets=list(iter_widgets(root))))


def test_a_notebook_saved_with_the_viewer_open_keeps_no_full_picture() -> None:
    grid = ResultGrid()
    Page(grid.view)
    request = GenerateRequest(prompt="a blue heron", model="gpt-image-1.5", n=1, size="1024x1024")
    picture = make_png(1024)
    grid.start(request).fill(
        ImagesResponse(data=[GeneratedImage(data=picture, request=request)], request=request)
    )
    closed = len(_saved_state(grid))
    grid.act(grid.tiles[0], "enlarge")
    assert grid.preview_open and bytes(grid.view.viewer_image) == picture
    saved = _saved_state(grid)
    assert len(saved) < closed + 20_000 and len(saved) * 20 < len(picture), (len(saved), len(picture))
    assert base64.b64encode(picture[5000:8000]).decode()[4:1000] not in saved


def test_the_viewer_picture_crosses_as_a_message_before_the_details_that_name_it() -> None:
    grid, page = _filled_grid(batches=1, page_size=4)
    order: list[str] = []
    grid.view.observe(lambda _change: order.append("details"), "viewer")
    sending = grid.view.send

    def noted(content: dict[str, object], buffers: list[bytes] | None = None) -> None:
        order.append(str(content["event"]))
        sending(content, buffers=buffers)

    grid.view.send = noted  # type: ignore[method-assign]
    first, second = grid.tiles
    page.click(first, "enlarge")
    page.send({"event": "viewer", "do": "step", "by": 1})
    sent = [
        (m, b) for m, b in zip(page.messages, page.buffers, strict=True) if m["event"] == "viewer_picture"
    ]
    assert [buffers for _m, buffers in sent] == [[first.image.data], [second.image.data]]
    assert [m["mime"] for m, _b in sent] == ["image/png", "image/png"]
    assert sent[-1][0]["picture"] == grid.view.viewer["picture"] > sent[0][0]["picture"]
    pictures = [event for event in order if event in ("viewer_picture", "details")]
    assert pictures == ["viewer_picture", "details"] * 2  # the page has the picture when it draws its details


@pytest.mark.parametrize("open_viewer", [True, False])
def test_a_page_opened_later_asks_for_the_viewer_picture(open_viewer: bool) -> None:
    grid, _ = _filled_grid(batches=1, page_size=4)
    if open_viewer:
        grid.act(grid.tiles[1], "enlarge")
    late = Page(grid.view)  # a page opened afterwards (a reload): it has the details, not the picture
    late.send({"event": "viewer", "do": "want"})
    sent = [
        (m, b) for m, b in zip(late.messages, late.buffers, strict=True) if m["event"] == "viewer_picture"
    ]
    if open_viewer:
        assert sent == [
            ({"event": "viewer_picture", "picture": grid.view.viewer["picture"], "mime": "image/png"},
             [grid.tiles[1].image.data])
        ]  # fmt: skip
    else:
        assert sent == []  # a closed viewer has no picture to send


def test_on_action_refuses_a_name_it_does_not_know() -> None:
    grid = ResultGrid()
    with pytest.raises(ValueError, match="No grid action 'edt': choose one of edit, variations"):
        grid.on_action("edt", print)


def test_on_action_can_unregister_a_callback() -> None:
    grid, page = _filled_grid(batches=1, page_size=4)
    used: list[str] = []
    grid.on_action("use_prompt", used.append)
    page.click(grid.tiles[0], "use_prompt")
    grid.on_action("use_prompt", used.append, remove=True)
    page.click(grid.tiles[0], "use_prompt")
    assert used == ["a blue heron"]


def test_the_tile_model_lays_out_pages_from_plain_python() -> None:
    pages: list[tuple[list[str], dict[str, int]]] = []
    pictures: list[str] = []
    filled: list[ImagesResponse] = []
    model = TileModel(
        on_page=lambda tiles, where: pages.append(([tile["label"] for tile in tiles], where)),
        on_picture=pictures.append,
        on_filled=filled.append,
        page_size=2,
    )
    request = _request(n=3)
    batch = model.start(request, 3)
    assert pages[-1] == (
        ["#1 · gpt-image-1.5 · 1024x1024 · 1/3 · waiting", "#1 · gpt-image-1.5 · 1024x1024 · 2/3 · waiting"],
        {"index": 0, "pages": 2, "total": 3, "first": 1, "last": 2},
    )
    laid_out = len(pages)
    response = _response(request)
    batch.fill(response)
    assert len(pages) == laid_out + 1  # three tiles filled, one page laid out
    assert filled == [response] and pictures == [tile.id for tile in model.tiles[:2]]  # the page's only
    model.show_page(1)
    assert pages[-1] == (
        ["#1 · gpt-image-1.5 · 1024x1024 · 3/3"],
        {"index": 1, "pages": 2, "total": 3, "first": 3, "last": 3},
    )
    model.remove(model.tiles[2])
    assert model.page_index == 0 and pages[-1][1]["total"] == 2


def test_the_page_size_can_be_changed_on_a_grid_in_use() -> None:
    grid, _ = _filled_grid(batches=3, page_size=24)
    grid.page_size = 4
    grid.start(_request(n=1))
    assert grid.page_size == 4 and grid.pages == 2 and len(grid.view.tiles) == 4
    assert grid.view.page == {"index": 0, "pages": 2, "total": 7, "first": 1, "last": 4}
