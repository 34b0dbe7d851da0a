"""The Variations tab in pure Python, on the offline preview engine."""

from __future__ import annotations

import numpy as np
import pytest

from edit_helpers import (
    GenerationsOnlyBackend,
    RecordingPreviewEngine,
    holds_no_file,
    picture,
    png_bytes,
    upload_entry,
)
from ipyimagegen.api.types import VariationRequest
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.errors import ImageInputError
from ipyimagegen.gallery import Gallery
from ipyimagegen.imaging import image_size, open_image
from ipyimagegen.session import JobRunner
from ipyimagegen.widgets.result_grid import ResultGrid
from ipyimagegen.widgets.studio import Studio
from ipyimagegen.widgets.variations_tab import VariationsTab
from widget_helpers import WAIT_S


def _tab(backend=None) -> VariationsTab:
    return VariationsTab(backend or RecordingPreviewEngine(), JobRunner(), ResultGrid())


def _run(tab: VariationsTab) -> None:
    tab.controls.run_button.click()
    assert tab.runner.wait(WAIT_S)


def test_variations_make_n_tiles_of_the_chosen_size() -> None:
    backend = RecordingPreviewEngine()
    tab = _tab(backend)
    assert tab.params.offered_models == ["dall-e-2"]
    tab.use_image(picture(300, 200))
    tab.params.size = "256x256"
    tab.params.n = 3
    assert image_size(tab.prepared.data) == (256, 256)
    assert "cropped to a square from 300×200" in tab.summary.value
    _run(tab)
    (request,) = backend.requests
    assert isinstance(request, VariationRequest) and request.n == 3 and request.size == "256x256"
    assert len(tab.grid.tiles) == 3 and all(t.is_filled for t in tab.grid.tiles)
    assert all(t.image.size == (256, 256) for t in tab.grid.tiles)
    assert "3 images" in tab.status.value
    assert len({t.image.data for t in tab.grid.tiles}) == 3


def test_pad_keeps_the_whole_image() -> None:
    tab = _tab()
    tab.params.size = "256x256"
    tab.use_image(picture(300, 150))
    tab.fit = "pad"
    alpha = np.asarray(open_image(tab.prepared.data).getchannel("A"))
    assert (alpha[:40] == 0).all() and (alpha[100:150] == 255).all()


def test_upload_is_read_cleared_and_bad_files_keep_the_image() -> None:
    tab = _tab()
    tab.upload.receive([upload_entry("cat.png", png_bytes(picture(64, 64)))])
    assert holds_no_file(tab.upload) and tab.prepared is not None
    first = tab.prepared
    tab.upload.receive([upload_entry("cat.txt", b"miaow")])
    assert "cat.txt" in tab.status.value and "ipyimagegen-error" in tab.status.value
    assert (
        tab.prepared is first and holds_no_file(tab.upload) and tab.upload.upload.note == "not used: cat.txt"
    )
    with pytest.raises(ImageInputError):
        tab.use_image(png_bytes(picture(64, 64))[:100])
    assert tab.prepared is first


def test_run_without_an_image_says_what_to_do() -> None:
    tab = _tab()
    _run(tab)
    assert "No image yet" in tab.status.value and tab.grid.tiles == []


def test_a_backend_without_variations_says_so() -> None:
    tab = _tab(GenerationsOnlyBackend())
    assert "makes neither variations nor edits" in tab.status.value
    tab.use_image(picture(64, 64))
    tab.controls.run_button.click()
    tab.make_variations()
    assert "makes neither variations nor edits" in tab.status.value and tab.grid.tiles == []


def test_variations_from_a_tile_are_saved_with_their_parent(tmp_path) -> None:
    gallery = Gallery(tmp_path / "gallery")
    s = Studio(RecordingPreviewEngine(), gallery=gallery)
    s.edit_tab.use_image(picture(64, 64))
    s.edit_tab.painter.fill()
    s.edit_tab.prompt_box.value = "an orange cat"
    s.edit_tab.controls.run_button.click()
    assert s.runner.wait(WAIT_S)
    (parent,) = gallery.items()
    s.grid.act(s.grid.tiles[0], "variations")
    assert s.tabs.selected_index == 2
    tab = s.variations_tab
    tab.params.n = 2
    _run(tab)
    children = [item for item in gallery.items() if item.endpoint == "variations"]
    assert len(children) == 2 and all(c.parent_id == parent.id and c.input_ids for c in children)
    assert len(s.grid.tiles) == 3


def test_variations_default_to_the_size_of_a_square_image_and_say_they_have_no_prompt() -> None:
    s = Studio(PreviewEngine(), gallery=False)
    source = PreviewEngine().generate(prompt="a cat on a sofa", model="dall-e-2", size="512x512")[0]
    s.variations_tab.use_image(source)
    assert s.variations_tab.params.size == "512x512"
    s.variations_tab.params.n = 2
    assert s.variations_tab.make_variations() is not None
    assert s.runner.wait(30)
    assert {image.size for image in s.grid.images} == {(512, 512)}
    assert all(
        shown["prompt"] == "" for shown in s.grid.view.tiles
    )  # the page says "a variation (no prompt)"
    s.variations_tab.use_image(PreviewEngine().generate(prompt="a dog", model="dall-e-2", size="256x256")[0])
    assert s.variations_tab.params.size == "256x256"
    assert image_size(s.variations_tab.prepared.data) == (256, 256)


class NoVariationsEngine(RecordingPreviewEngine):
    """Like OpenAI today: generations and edits, but no model serves variations."""

    def models(self, endpoint: str = "generations") -> list[str]:
        return (
            [] if endpoint == "variations" else [m for m in super().models(endpoint) if m.startswith("gpt")]
        )


def test_where_no_model_serves_variations_they_are_edits_of_the_whole_picture(tmp_path) -> None:
    backend = NoVariationsEngine()
    gallery = Gallery(tmp_path / "gallery")
    tab = VariationsTab(backend, JobRunner(), ResultGrid(), gallery=gallery)
    assert tab.by_edit and tab.params.offered_models == backend.models("edits")
    assert tab.params.model == "gpt-image-2.6-flare" and "makes them as edits" in tab.method_note.value
    assert tab.words.layout.display is None and not tab.controls.run_button.disabled
    tab.use_image(picture(300, 200))
    tab.words.value = "in autumn colours"
    tab.params.n = 2
    _run(tab)
    (request,) = backend.requests
    assert request.endpoint == "edits" and request.mask is None and request.model == "gpt-image-2.6-flare"
    assert request.prompt.startswith("A variation of this image") and request.prompt.endswith(
        "in autumn colours"
    )
    assert len(tab.grid.tiles) == 2 and all(t.is_filled for t in tab.grid.tiles)
    saved = gallery.items()
    assert len(saved) == 2 and {item.metadata["details"]["variation_method"] for item in saved} == {"edit"}


def test_real_variations_are_labelled_so() -> None:
    tab = _tab()
    assert not tab.by_edit and tab.words.layout.display == "none"
    tab.use_image(picture(64, 64))
    _run(tab)
    assert {t.image.metadata["variation_method"] for t in tab.grid.tiles} == {"variations"}
