"""The studio with its gallery: results on disk before they are shown, History, reuse, lineage and Compare."""

from __future__ import annotations

import gc
import io
import os
import threading
import weakref
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pytest
from PIL import Image

from ipyimagegen.api.types import EditRequest, GeneratedImage, GenerateRequest, ImagesResponse
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.gallery import Gallery, GalleryItem
from ipyimagegen.widgets.compare import ComparePanel
from ipyimagegen.widgets.history import HistoryBrowser
from ipyimagegen.widgets.params_panel import ParamsPanel
from ipyimagegen.widgets.studio import Studio, studio
from waiting import wait_until
from widget_helpers import WAIT_S, FakeBackend, Page, make_png


def _generate(s: Studio, prompt: str, **params: Any) -> None:
    tab = s.generate_tab
    tab.prompt_box.value = prompt
    for name, value in params.items():
        setattr(tab.params, name, value)
    tab.controls.run_button.click()
    assert s.runner.wait(WAIT_S)
    assert "ipyimagegen-ok" in tab.status.value, tab.status.value


class OrderCheckingGallery(Gallery):
    """A real gallery that records, at each save, whether the files exist and what the grid shows."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.grid: Any = None
        self.checks: list[tuple[bool, int]] = []

    def save_response(self, response: ImagesResponse, parent_id: str | None = None) -> list[GalleryItem]:
        items = super().save_response(response, parent_id=parent_id)
        filled = sum(tile.is_filled for tile in self.grid.tiles)
        self.checks.append((all(item.path.is_file() for item in items), filled))
        return items


def test_results_are_on_disk_before_the_tiles_are_filled_and_a_new_gallery_lists_them(tmp_path: Path) -> None:
    gallery = OrderCheckingGallery(tmp_path / "gallery")
    s = Studio(PreviewEngine(), gallery=gallery)
    gallery.grid = s.grid
    _generate(s, "a lighthouse at dusk", model="dall-e-2", size="256x256", n=2)
    _generate(s, "a harbour in fog", model="dall-e-2", size="256x256", n=1)
    assert gallery.checks == [(True, 0), (True, 1), (True, 2)]  # each saved first, then shown
    assert len(s.grid.images) == 3
    assert s.grid.save_dir == gallery.root

    history_index = s.tabs.titles.index("History")
    assert not isinstance(s.tabs.children[history_index], HistoryBrowser)  # made when first opened
    s.select("History")
    assert [tile.item.prompt for tile in s.history.tiles] == ["a harbour in fog"] + [
        "a lighthouse at dusk"
    ] * 2
    gallery.close()
    with Gallery(tmp_path / "gallery") as reopened:  # as after a kernel restart
        browser = HistoryBrowser(reopened)
        assert [tile.item.prompt for tile in browser.tiles] == [
            "a harbour in fog",
            "a lighthouse at dusk",
            "a lighthouse at dusk",
        ]
        on_disk = sorted(path.name for path in (tmp_path / "gallery" / "images").iterdir())
        assert on_disk == sorted(tile.item.path.name for tile in browser.tiles)
        assert {Image.open(tile.item.path).size for tile in browser.tiles} == {(256, 256)}


def test_studio_opens_the_default_gallery_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "from-env"
    monkeypatch.setenv("IPYIMAGEGEN_GALLERY", str(folder))
    s = studio()  # the preview engine: no key in the tests
    assert isinstance(s.gallery, Gallery) and s.gallery.root == folder.resolve()
    assert isinstance(s.tab("History"), HistoryBrowser)
    _generate(s, "a paper boat", model="dall-e-2", size="256x256")
    assert len(list((folder / "images").glob("*.png"))) == 1
    assert s.grid.notice_html == "" and "gallery" not in s.header.value
    s.close()
    with pytest.raises(RuntimeError, match="closed"):
        s.gallery.count()  # the studio closes the gallery it opened


def test_without_the_environment_the_gallery_is_next_to_the_notebook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IPYIMAGEGEN_GALLERY")
    monkeypatch.chdir(tmp_path)
    s = Studio(FakeBackend(side=64))
    assert s.gallery.root == (tmp_path / "ipyimagegen-gallery").resolve()
    s.close()


def test_gallery_false_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    default = Path(os.environ["IPYIMAGEGEN_GALLERY"])
    s = Studio(FakeBackend(side=64), gallery=False)
    _generate(s, "not kept", n=2)
    assert len(s.grid.images) == 2 and s.gallery is None
    assert not default.exists() and list(tmp_path.iterdir()) == []
    history = s.tab("History")
    assert not isinstance(history, HistoryBrowser) and "gallery=False" in history.value
    s.grid.act(s.grid.tiles[0], "save")  # Save still works: into the current folder
    assert len(list(tmp_path.glob("*-not-kept.png"))) == 1


def test_a_gallery_that_cannot_be_opened_leaves_a_working_studio_and_a_notice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("IPYIMAGEGEN_GALLERY", str(blocker / "gallery"))
    s = Studio(FakeBackend(side=64))
    assert s.gallery is None
    notice = s.header.value
    assert "Could not open the gallery" in notice and "IPYIMAGEGEN_GALLERY" in notice
    assert "ipyimagegen-warning" in notice
    assert "Could not open the gallery" in s.tab("History").value
    _generate(s, "still works")
    assert len(s.grid.images) == 1


def test_a_folder_without_permission_leaves_a_working_studio_and_a_notice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder the user may not write to (simulated: as root every folder is writable)."""
    real_mkdir = Path.mkdir

    def refuse(self: Path, *args: Any, **kwargs: Any) -> None:
        if self.is_relative_to(tmp_path / "locked"):
            raise PermissionError(13, "Permission denied", str(self))
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", refuse)
    monkeypatch.setenv("IPYIMAGEGEN_GALLERY", str(tmp_path / "locked" / "gallery"))
    s = Studio(FakeBackend(side=64))
    assert s.gallery is None and "Could not open the gallery" in s.header.value
    assert "Permission denied" in s.header.value
    _generate(s, "still works")
    assert len(s.grid.images) == 1


def test_reuse_settings_fills_the_generate_tab(tmp_path: Path) -> None:
    s = Studio(PreviewEngine(), gallery=tmp_path / "gallery")
    _generate(s, "a tall tower", model="dall-e-3", size="1024x1792", quality="hd", style="natural")
    params = s.generate_tab.params
    params.model = "dall-e-2"
    params.n = 3
    s.generate_tab.prompt_box.value = "something else"
    s.select("History")
    (tile,) = s.history.tiles
    s.history.act(tile, "reuse")
    assert s.tabs.selected_index == 0
    assert s.generate_tab.prompt_box.value == "a tall tower"
    assert (params.model, params.size, params.quality, params.style, params.n) == (
        "dall-e-3",
        "1024x1792",
        "hd",
        "natural",
        1,
    )
    assert tile.item.id in s.generate_tab.status.value


def test_reuse_skips_values_the_model_does_not_take_and_says_so(tmp_path: Path) -> None:
    s = Studio(FakeBackend(side=64), gallery=tmp_path / "gallery")
    request = GenerateRequest(prompt="made elsewhere", model="my-local-model", size="640x640", style="vivid")
    item = s.gallery.save(GeneratedImage(data=make_png(64, 1), request=request))
    s.generate_tab.params.model = "gpt-image-2.5-flare"
    skipped = s.reuse_settings(item)
    assert skipped == ["model", "size", "style"]
    assert (
        s.generate_tab.params.model == "gpt-image-2.5-flare"
        and s.generate_tab.prompt_box.value == "made elsewhere"
    )
    status = s.generate_tab.status.value
    assert "does not take its model, size, style" in status and "ipyimagegen-warning" in status


def test_params_panel_apply_sets_what_the_model_takes() -> None:
    panel = ParamsPanel(FakeBackend())
    skipped = panel.apply(
        {"model": "gpt-image-2.5-flare", "size": "1536x1024", "quality": "low", "background": "transparent",
         "output_format": "jpeg", "n": 4, "style": "vivid", "seed": 7}
    )  # fmt: skip
    assert skipped == ["style", "output_format"]  # gpt-image has no style; JPEG has no transparency
    assert (panel.model, panel.size, panel.quality, panel.background, panel.n) == (
        "gpt-image-2.5-flare",
        "1536x1024",
        "low",
        "transparent",
        4,
    )
    assert panel.output_format == "png"


def test_history_actions_go_to_the_tabs_and_lineage_shows_the_parent(tmp_path: Path) -> None:
    s = Studio(PreviewEngine(), gallery=tmp_path / "gallery")
    s.select("History")
    _generate(s, "a red kite", model="dall-e-2", size="256x256")
    (original,) = s.history.tiles  # the open History tab shows a result at once
    s.history.act(original, "variations")  # from the History tab...
    assert s.tabs.selected_index == s.tabs.titles.index("Variations")
    s.variations_tab.params.n = 1
    s.variations_tab.make_variations()
    assert s.runner.wait(WAIT_S)
    s.grid.act(s.grid.tiles[0], "edit")  # ...and from a result tile
    assert s.tabs.selected_index == s.tabs.titles.index("Edit")
    s.select("History")
    s.history.act(s.history.tiles[0], "edit")
    assert s.tabs.selected_index == s.tabs.titles.index("Edit")

    variation = s.history.tiles[0]  # the newest: the variation, saved with its parent
    assert variation.item.endpoint == "variations" and variation.item.parent_id == original.item.id
    s.history.act(variation, "lineage")
    assert s.history.lineage.layout.display is None
    assert "1 step from its first image" in s.history.lineage_title.value
    steps = [w for w in s.history.lineage_steps.children if isinstance(w, widgets.VBox)]
    assert len(steps) == 2 and "a red kite" in steps[0].children[1].value


def test_compare_two_ticked_tiles_shows_a_sheet_and_saves_a_pdf(tmp_path: Path) -> None:
    s = Studio(PreviewEngine(), gallery=tmp_path / "gallery")
    _generate(s, "a blue heron", model="dall-e-2", size="256x256", n=1)
    _generate(s, "a grey heron", model="dall-e-2", size="256x256", n=2)
    grid = s.grid
    assert grid.toolbar.layout.display is None and grid.compare_button.disabled
    first, second, third = grid.tiles
    grid.select(first)
    assert grid.compare_button.disabled  # one is not a comparison
    grid.select(third)
    assert not grid.compare_button.disabled and grid.compare_button.description == "Compare (2)"
    grid.compare_button.click()
    panel = grid.comparison
    assert isinstance(panel, ComparePanel) and grid.compare_slot.children == (panel,)
    image_axes = [ax for ax in panel.figure.axes if ax.images]
    assert len(image_axes) == 2
    assert [ax.get_title() for ax in image_axes] == [
        "a grey heron\ndall-e-2 · 256×256",
        "a blue heron\ndall-e-2 · 256×256",
    ]
    shown = [bytes(cell.children[0].value) for cell in panel.sheet.children]
    assert len(shown) == 2 and all(Image.open(io.BytesIO(data)).size == (256, 256) for data in shown)

    panel.save_button.click()
    path = panel.saved_path
    assert path is not None and path.parent == s.gallery.root and path.suffix == ".pdf"
    assert path.read_bytes().startswith(b"%PDF") and str(path) in panel.notice.value
    assert f"Downloaded <code>{path.name}</code>" in panel.notice.value  # the grid handed it to the browser
    panel.close_button.click()
    assert grid.comparison is None and grid.compare_slot.children == ()
    assert second.selected is False


def test_compare_needs_two_images_and_removed_tiles_leave_the_selection(tmp_path: Path) -> None:
    s = Studio(FakeBackend(side=64), gallery=False)
    _generate(s, "pair", n=2)
    grid = s.grid
    for tile in grid.tiles:
        grid.select(tile)
    assert not grid.compare_button.disabled
    grid.remove(grid.tiles[0])
    assert grid.compare_button.disabled and grid.compare() is None
    assert "Tick two or more" in grid.notice_html
    with pytest.raises(ValueError, match="at least 2 images"):
        ComparePanel([grid.images[0]], ["one"])


def test_a_placeholder_cannot_be_ticked() -> None:
    s = Studio(FakeBackend(side=64), gallery=False)
    batch = s.grid.start(None, total=1)
    s.grid.select(batch.tiles[0])
    assert not batch.tiles[0].selected and not s.grid.view.tiles[0]["selectable"]
    assert s.grid.toolbar.layout.display == "none"


def test_each_result_is_decoded_once_for_the_grid_and_the_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ipyimagegen import imaging

    decoded: list[int] = []
    real_thumbnail = imaging.thumbnail

    def counting_thumbnail(source: Any, max_side: int = 256) -> tuple[bytes, str]:
        decoded.append(max_side)
        return real_thumbnail(source, max_side=max_side)

    monkeypatch.setattr(imaging, "thumbnail", counting_thumbnail)
    s = Studio(FakeBackend(side=512), gallery=tmp_path / "gallery")
    _generate(s, "three pears", model="dall-e-2", size="512x512", n=3)
    s.select("History")
    assert len(s.history.tiles) == 3 and all(tile.picture is not None for tile in s.grid.tiles)
    assert len(decoded) == 3
    kept = sorted(path.name for path in (tmp_path / "gallery" / "thumbnails").iterdir())
    assert kept == sorted(f"{tile.item.id}-256.jpg" for tile in s.history.tiles)


def test_tiles_keep_thumbnails_and_read_full_images_back_from_the_gallery(tmp_path: Path) -> None:
    s = Studio(FakeBackend(side=512), gallery=tmp_path / "gallery")
    _generate(s, "two lemons", model="dall-e-2", size="512x512", n=2)
    first, second = s.grid.tiles
    assert first._image is None and first._stored_at is not None  # no full bytes held in memory
    full = first._stored_at.read_bytes()
    s.grid.act(first, "enlarge")
    assert bytes(s.grid.view.viewer_image) == full
    assert s.grid.images[0].data == full and s.grid.images[0].prompt == "two lemons"
    edited: list[GeneratedImage] = []
    s.grid.on_action("edit", edited.append)
    second._stored_at.unlink()  # the file deleted behind the studio's back
    s.grid.act(second, "edit")
    assert edited == [] and "no longer in the gallery" in s.grid.notice_html
    assert second.is_filled and second.picture is not None  # the tile still shows its thumbnail


def test_without_a_gallery_tiles_keep_the_full_images(tmp_path: Path) -> None:
    backend = FakeBackend(side=64)
    s = Studio(backend, gallery=False)
    _generate(s, "one plum", model="dall-e-2", size="256x256")
    (tile,) = s.grid.tiles
    assert tile._stored_at is None and tile.image is not None and tile.image.data == make_png(64, 0)


def test_compare_says_when_a_ticked_image_was_deleted_from_the_gallery(tmp_path: Path) -> None:
    s = Studio(PreviewEngine(), gallery=tmp_path / "gallery")
    _generate(s, "a lighthouse", model="dall-e-2", size="256x256", n=2)
    for tile in s.grid.tiles:
        s.grid.select(tile)
    assert s.grid.compare_button.description == "Compare (2)"
    s.gallery.delete(s.gallery.items()[0].id)  # deleted behind the studio's back
    assert s.grid.compare() is None
    assert "1 of the 2 ticked images no longer has a file in the gallery" in s.grid.notice_html


class SlowSavingGallery(Gallery):
    """A real gallery whose saves wait until the test lets them finish (a slow disk)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.release = threading.Event()
        self.saving = threading.Event()

    def save_response(self, response: ImagesResponse, parent_id: str | None = None) -> list[GalleryItem]:
        self.saving.set()
        assert self.release.wait(WAIT_S)
        return super().save_response(response, parent_id=parent_id)


def test_each_thumbnail_shows_while_the_results_are_still_being_saved(tmp_path: Path) -> None:
    gallery = SlowSavingGallery(tmp_path / "gallery")
    s = Studio(FakeBackend(side=256), gallery=gallery)
    tab = s.generate_tab
    tab.prompt_box.value = "a kite over the dunes"
    tab.params.model, tab.params.size, tab.params.n = "dall-e-2", "256x256", 3
    tab.controls.run_button.click()
    assert gallery.saving.wait(WAIT_S)
    wait_until(lambda: all(tile.picture is not None for tile in s.grid.tiles))

    shown = s.grid.tiles
    assert len(shown) == 3 and all(tile.picture is not None for tile in shown)  # first pixels, not yet saved
    assert all(
        shown_json["enabled"] == ["delete"] for shown_json in s.grid.view.tiles
    )  # nothing to act on yet
    assert not any(tile.is_filled for tile in shown)
    assert len(gallery) == 0

    gallery.release.set()
    assert s.runner.wait(WAIT_S)
    assert len(gallery) == 3
    assert all(
        tile.is_filled and "save" in shown["enabled"]
        for tile, shown in zip(s.grid.tiles, s.grid.view.tiles, strict=True)
    )
    s.close()
    gallery.close()


def gated_backend(calls: int) -> tuple[list[threading.Event], FakeBackend]:
    """A backend whose calls each wait for their own gate, handed out in the order the calls come."""
    gates = [threading.Event() for _ in range(calls)]
    handed = iter(gates)
    lock = threading.Lock()

    def gate(_request: GenerateRequest) -> threading.Event:
        with lock:
            return next(handed)

    return gates, FakeBackend(side=128, gate=gate)


def test_each_part_of_a_parallel_job_shows_as_soon_as_it_arrives(tmp_path: Path) -> None:
    gates, backend = gated_backend(3)
    s = Studio(backend, gallery=tmp_path / "gallery")
    tab = s.generate_tab
    tab.prompt_box.value = "three lanterns"
    tab.params.model, tab.params.size, tab.params.n = "dall-e-3", "1024x1024", 3  # three requests of one
    tab.controls.run_button.click()
    for _ in range(3):
        assert backend.calls_started.acquire(timeout=WAIT_S)

    gates[0].set()  # one request finishes; the other two are still at work
    wait_until(lambda: sum(tile.is_filled for tile in s.grid.tiles) >= 1)  # saved, then shown
    assert sum(tile.picture is not None for tile in s.grid.tiles) == 1 and len(s.gallery) == 1
    assert sum(tile.is_filled for tile in s.grid.tiles) == 1 and s.runner.busy

    for event in gates[1:]:
        event.set()
    assert s.runner.wait(WAIT_S)
    assert len(s.grid.tiles) == 3 and all(tile.is_filled for tile in s.grid.tiles)
    s.close()


def test_cancel_keeps_the_images_done_and_saves_those_that_arrive_after(tmp_path: Path) -> None:
    gates, backend = gated_backend(3)
    s = Studio(backend, gallery=tmp_path / "gallery")
    tab = s.generate_tab
    tab.prompt_box.value = "three lanterns"
    tab.params.model, tab.params.size, tab.params.n = "dall-e-3", "1024x1024", 3
    tab.controls.run_button.click()
    for _ in range(3):
        assert backend.calls_started.acquire(timeout=WAIT_S)
    gates[0].set()  # one image is done, the others are still being made
    wait_until(lambda: any(tile.picture is not None for tile in s.grid.tiles))

    tab.controls.cancel_button.click()
    wait_until(lambda: "kept" in tab.status.value)
    assert "Cancelled: kept 1 of 3." in tab.status.value
    (kept,) = s.grid.tiles
    assert kept.is_filled and kept.picture is not None and "save" in s.grid.view.tiles[0]["enabled"]
    assert len(s.gallery) == 1

    gates[1].set()
    gates[2].set()  # sent before the cancel, so paid for: they are saved when they come
    wait_until(lambda: len(s.gallery) >= 3)
    assert len(s.gallery) == 3 and len(s.grid.tiles) == 1
    assert "arrived after Cancel: they are in the gallery" in tab.status.value
    s.close()


def test_deleting_in_history_removes_the_result_tile_too(tmp_path: Path) -> None:
    s = Studio(PreviewEngine(), gallery=tmp_path / "gallery")
    _generate(s, "a lighthouse", model="dall-e-2", size="256x256", n=2)
    s.select("History")
    newest = s.history.tiles[0]
    shown = [tile for tile in s.grid.tiles if tile.details.metadata["gallery_id"] == newest.id]
    assert len(shown) == 1
    s.grid.act(shown[0], "enlarge")
    s.history.act(newest, "delete")
    s.history.act(newest, "delete")  # confirmed
    assert len(s.grid.tiles) == 1 and shown[0] not in s.grid.tiles
    assert not s.grid.preview_open  # its viewer went with it
    s.close()


def _zip_names(data: bytes) -> tuple[list[str], dict[str, Any]]:
    import json
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return sorted(archive.namelist()), json.loads(archive.read("manifest.json"))


def test_download_all_sends_one_zip_of_the_results_or_of_the_ticked_ones(tmp_path: Path) -> None:
    from widget_helpers import Page

    for gallery in (tmp_path / "gallery", False):
        s = Studio(PreviewEngine(), gallery=gallery)
        page = Page(s.grid.view)
        _generate(s, "three pears", model="dall-e-2", size="256x256", n=3)
        assert s.grid.download_button.description == "Download all"
        s.grid.download_button.click()
        ((name, mime, data),) = page.files
        names, manifest = _zip_names(data)
        assert mime == "application/zip" and name.endswith(".zip") and name in s.grid.notice_html
        assert sum(n.startswith("images/") for n in names) == 3
        assert [item["prompt"] for item in manifest["items"]] == ["three pears"] * 3
        s.grid.select(s.grid.tiles[1])
        assert s.grid.download_button.description == "Download (1)"
        s.grid.download_button.click()
        names, manifest = _zip_names(page.files[-1][2])
        assert sum(n.startswith("images/") for n in names) == 1 and len(manifest["items"]) == 1
        s.close()


def _watch_results(s: Studio) -> list[weakref.ref[GeneratedImage]]:
    """Weak references to every result the grid is given: they die once nothing in the studio holds the
    results themselves."""
    made: list[weakref.ref[GeneratedImage]] = []
    s.grid.on_action("filled", lambda response: made.extend(weakref.ref(image) for image in response.data))
    return made


def test_once_saved_no_tile_grid_or_job_holds_a_results_bytes(tmp_path: Path) -> None:
    s = Studio(FakeBackend(side=256), gallery=tmp_path / "gallery")
    page = Page(s.grid.view)
    made = _watch_results(s)
    _generate(s, "two pears", model="dall-e-2", size="256x256", n=2)
    _generate(s, "one fig", model="dall-e-2", size="256x256", n=1)
    gc.collect()
    assert len(made) == 3 and [ref() for ref in made] == [None] * 3  # the results themselves are gone
    for tile in s.grid.tiles:
        assert tile._image is None and tile.details is not None and tile.details.data == b""
        assert tile.picture is not None and page.tile(tile)["picture"]  # the thumbnail stays

    # Every action still gets the full bytes: read back from the gallery, the file as it is on disk.
    tile = s.grid.tiles[0]
    on_disk = s.gallery.get(tile.details.metadata["gallery_id"]).data
    assert Image.open(io.BytesIO(on_disk)).size == (256, 256)
    s.grid.act(tile, "enlarge")
    assert bytes(s.grid.view.viewer_image) == on_disk
    s.grid.close_preview()
    assert s.grid.save(tile, tmp_path / "saved") is not None
    assert page.files[-1][2] == on_disk and (tmp_path / "saved" / page.files[-1][0]).read_bytes() == on_disk
    edited: list[GeneratedImage] = []
    varied: list[GeneratedImage] = []
    s.on_edit(edited.append)
    s.on_variations(varied.append)
    s.grid.act(tile, "edit")
    assert s.tabs.selected_index == s.tabs.titles.index("Edit")
    s.grid.act(tile, "variations")
    assert [image.data for image in edited + varied] == [on_disk, on_disk]
    assert varied[0].metadata["gallery_id"] == tile.details.metadata["gallery_id"]  # its lineage follows


def test_a_tile_showing_its_thumbnail_before_the_save_ends_holds_no_result(tmp_path: Path) -> None:
    gallery = SlowSavingGallery(tmp_path / "gallery")
    s = Studio(FakeBackend(side=256), gallery=gallery)
    made = _watch_results(s)
    tab = s.generate_tab
    tab.prompt_box.value = "a kite over the dunes"
    tab.params.model, tab.params.size, tab.params.n = "dall-e-2", "256x256", 2
    tab.controls.run_button.click()
    assert gallery.saving.wait(WAIT_S)
    wait_until(lambda: all(tile.picture is not None for tile in s.grid.tiles))
    assert all(tile.is_shown and not tile.is_filled for tile in s.grid.tiles)
    gallery.release.set()
    assert s.runner.wait(WAIT_S)
    gc.collect()
    assert len(made) == 2 and [ref() for ref in made] == [None, None]


def test_an_edit_made_from_a_tile_keeps_its_input_in_the_gallery_not_in_the_tiles(tmp_path: Path) -> None:
    s = Studio(PreviewEngine(), gallery=tmp_path / "gallery")
    page = Page(s.grid.view)
    _generate(s, "a white jug", model="dall-e-2", size="256x256")
    s.grid.act(s.grid.tiles[0], "edit")
    edit = s.edit_tab
    edit.painter.fill()
    edit.prompt_box.value = "a blue jug"
    edit.params.n = 2
    edit.controls.run_button.click()
    assert s.runner.wait(WAIT_S)
    edited = [tile for tile in s.grid.tiles if isinstance(tile.request, EditRequest)]
    assert len(edited) == 2
    item = s.gallery.get(edited[0].details.metadata["gallery_id"])
    sent_input = s.gallery.input_data(item.input_ids[0])  # the picture the edit was sent
    for tile in edited:
        assert tile.request.images == [] and tile.request.mask is None
        assert tile.details.request.images == [] and tile.details.request.prompt == "a blue jug"
    assert s.grid.model.batches[0].request.images == []

    page.click(edited[0], "enlarge")
    assert s.grid.view.viewer["has_before"]
    page.send({"event": "viewer", "do": "before"})  # the Before button: read back from the gallery
    [(message, (before,))] = [
        (m, b) for m, b in zip(page.messages, page.buffers, strict=True) if m.get("event") == "before"
    ]
    assert message["id"] == edited[0].id and message["mime"] == "image/png" and before == sent_input
    s.grid.act(edited[0], "edit")  # its settings stay with the tile: Edit carries them on
    assert edit.prompt_box.value == "a blue jug"


def test_a_saved_edits_before_is_said_missing_when_its_input_file_is_gone(tmp_path: Path) -> None:
    s = Studio(PreviewEngine(), gallery=tmp_path / "gallery")
    page = Page(s.grid.view)
    _generate(s, "a white jug", model="dall-e-2", size="256x256")
    s.grid.act(s.grid.tiles[0], "edit")
    s.edit_tab.painter.fill()
    s.edit_tab.prompt_box.value = "a blue jug"
    s.edit_tab.controls.run_button.click()
    assert s.runner.wait(WAIT_S)
    tile = s.grid.tiles[0]
    for stored in (tmp_path / "gallery" / "inputs").iterdir():
        stored.unlink()  # deleted behind the studio's back
    page.click(tile, "enlarge")
    page.send({"event": "viewer", "do": "before"})
    assert not [m for m in page.messages if m.get("event") == "before"]
    assert "no longer in the gallery" in s.grid.notice_html
