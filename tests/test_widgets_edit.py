"""The Edit tab in pure Python, on the offline preview engine: input, preparation, mask, edit, errors."""

from __future__ import annotations

import numpy as np
import pytest

from edit_helpers import (
    GenerationsOnlyBackend,
    RecordingPreviewEngine,
    drag,
    holds_no_file,
    picture,
    png_bytes,
    upload_entry,
)
from ipyimagegen.api.types import EditRequest, GeneratedImage
from ipyimagegen.errors import ImageInputError
from ipyimagegen.gallery import Gallery
from ipyimagegen.imaging import image_size, open_image, read_mask
from ipyimagegen.session import JobRunner
from ipyimagegen.widgets.edit_changes import ChangeBatch
from ipyimagegen.widgets.edit_tab import EditTab
from ipyimagegen.widgets.result_grid import ResultGrid
from ipyimagegen.widgets.studio import Studio
from widget_helpers import WAIT_S


def _tab(backend=None, gallery=None) -> EditTab:
    return EditTab(backend or RecordingPreviewEngine(), JobRunner(), ResultGrid(), gallery=gallery)


def _dalle2(tab: EditTab, size: str = "256x256") -> None:
    tab.params.model = "dall-e-2"
    tab.params.size = size


def _run(tab: EditTab, prompt: str = "a red balloon") -> None:
    tab.prompt_box.value = prompt
    tab.controls.run_button.click()
    assert tab.runner.wait(WAIT_S)


def _status(tab: EditTab) -> str:
    return tab.status.value


# --- input ----------------------------------------------------------------------------------


def test_use_image_accepts_a_path_bytes_an_array_and_a_result(tmp_path) -> None:
    tab = _tab()
    array = picture(200, 100)
    path = tmp_path / "photo.png"
    path.write_bytes(png_bytes(array))
    result = GeneratedImage(data=png_bytes(picture(64, 64, seed=3)))
    for source, size in [
        (path, (200, 100)),
        (png_bytes(array), (200, 100)),
        (array, (200, 100)),
        (result, (64, 64)),
    ]:
        tab.use_image(source)
        assert tab.painter.image.size == size  # gpt-image: sent as it is
        assert tab.prepared.picture.size == size
    assert np.array_equal(np.asarray(tab.painter.image.convert("RGB")), np.asarray(open_image(result.data)))


def test_dalle2_gets_a_square_png_cropped_or_padded_and_the_painter_shows_it() -> None:
    tab = _tab()
    _dalle2(tab, "256x256")
    tab.use_image(picture(400, 200))
    assert tab.fit == "crop"
    prepared = tab.prepared.input
    assert prepared.mime_type == "image/png" and image_size(prepared.data) == (256, 256)
    assert tab.painter.image.size == (256, 256)
    assert "cropped to a square from 400×200" in tab.summary.value and "256×256 PNG" in tab.summary.value
    cropped = open_image(prepared.data)
    assert not np.any(np.asarray(cropped.convert("RGBA"))[..., 3] == 0)  # crop: no transparent pixels

    tab.fit = "pad"
    padded = open_image(tab.prepared.input.data)
    assert padded.mode == "RGBA" and padded.size == (256, 256)
    alpha = np.asarray(padded.getchannel("A"))
    assert (alpha[:32] == 0).all() and (alpha[-32:] == 0).all() and (alpha[100:150] == 255).all()
    assert "padded to a square" in tab.summary.value
    assert str(len(tab.prepared.input.data)) in tab.summary.value or "KB" in tab.summary.value

    tab.params.size = "512x512"
    assert image_size(tab.prepared.input.data) == (512, 512)


def test_painting_survives_a_change_of_size() -> None:
    tab = _tab()
    _dalle2(tab, "256x256")
    tab.use_image(picture(256, 256))
    drag(tab.painter, [(20, 20), (120, 20)])
    before = tab.painter.painted_fraction
    tab.params.size = "512x512"
    assert tab.painter.image.size == (512, 512)
    assert tab.painter.painted_fraction == pytest.approx(before, rel=0.05)


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("notes.txt", b"just some text, not a picture", "not an image"),
        ("broken.png", png_bytes(picture(64, 64))[:200], "incomplete"),
        ("empty.png", b"", "empty"),
    ],
)
def test_a_bad_upload_says_why_and_keeps_the_image_and_mask(name: str, data: bytes, words: str) -> None:
    tab = _tab()
    tab.use_image(picture(120, 80))
    drag(tab.painter, [(10, 10), (60, 10)])
    image_before, mask_before = np.asarray(tab.painter.image), tab.painter.mask
    tab.upload.receive([upload_entry(name, data)])
    problem = tab.upload.problem.value  # said beside the button that chose the file
    assert (
        tab.upload.problem.layout.display is None
        and "ipyimagegen-field-error" in tab.upload.problem._dom_classes
    )
    assert name in problem and (words in problem or words in problem.lower())
    assert "ipyimagegen-error" not in _status(tab)  # not far away, at the run button
    assert np.array_equal(np.asarray(tab.painter.image), image_before)
    assert np.array_equal(tab.painter.mask, mask_before)
    assert holds_no_file(tab.upload)


def test_an_oversize_upload_is_refused_with_the_limit() -> None:
    tab = EditTab(RecordingPreviewEngine(), JobRunner(), ResultGrid(), max_file_bytes=10_000)
    tab.use_image(picture(64, 64))
    big = png_bytes(picture(400, 400))
    assert len(big) > 10_000
    tab.upload.receive([upload_entry("huge.png", big)])
    assert "largest image file accepted" in tab.upload.problem.value
    assert tab.painter.image.size == (64, 64)


def test_an_upload_is_used_and_its_bytes_leave_the_widget() -> None:
    tab = _tab()
    tab.upload.receive([upload_entry("garden.png", png_bytes(picture(150, 90)))])
    assert (
        holds_no_file(tab.upload) and tab.upload.upload.note == "garden.png"
    )  # the button says what it took
    assert tab.painter.image.size == (150, 90)
    assert "garden.png" in _status(tab)


def test_use_image_with_a_non_image_raises_and_says_so() -> None:
    tab = _tab()
    tab.use_image(picture(50, 50))
    with pytest.raises(ImageInputError, match="not an image"):
        tab.use_image(b"%PDF-1.4 a document")
    assert "PDF" in _status(tab) and tab.painter.image.size == (50, 50)


# --- masks ------------------------------------------------------------------------------------


def test_run_with_nothing_painted_refuses_with_a_message() -> None:
    backend = RecordingPreviewEngine()
    tab = _tab(backend)
    tab.use_image(picture(64, 64))
    _run(tab)
    assert "paint the area to change first" in _status(tab).lower() and "ipyimagegen-error" in _status(tab)
    assert backend.requests == [] and tab.grid.tiles == []


def test_run_without_an_image_refuses_with_a_message() -> None:
    tab = _tab()
    _run(tab)
    assert "No image yet" in _status(tab) and "Upload an image" in _status(tab)


def test_an_imported_mask_of_another_size_is_refused_and_the_painting_kept() -> None:
    tab = _tab()
    tab.use_image(picture(100, 80))
    drag(tab.painter, [(10, 10), (50, 10)])
    painted = tab.painter.mask
    wrong = np.zeros((30, 30), dtype=bool)
    with pytest.raises(ImageInputError, match="30x30 but the image is 100x80"):
        tab.use_mask(wrong)
    assert "same size" in _status(tab)
    assert np.array_equal(tab.painter.mask, painted)
    right = np.zeros((80, 100), dtype=bool)
    right[:, :50] = True
    tab.use_mask(right)
    assert tab.painter.painted_fraction == pytest.approx(0.5)


def test_a_mask_of_the_original_size_follows_the_square_crop() -> None:
    tab = _tab()
    _dalle2(tab, "256x256")
    tab.use_image(picture(400, 200))
    original = np.zeros((200, 400), dtype=bool)
    original[:, 200:] = True  # the right half of the original
    tab.use_mask(original)
    mask = tab.painter.mask
    assert mask.shape == (256, 256)
    assert mask[:, 140:].all() and not mask[:, :110].any()  # the crop keeps the centre 200 columns


def test_all_transparent_mask_warns_but_edits() -> None:
    tab = _tab()
    tab.use_image(picture(64, 64))
    tab.painter.fill()
    _run(tab)
    assert "whole image is painted" in _status(tab) and "1 image" in _status(tab)
    assert len(tab.grid.tiles) == 1


# --- the edit ---------------------------------------------------------------------------------


def test_an_edit_changes_only_painted_pixels_and_lands_in_the_grid() -> None:
    backend = RecordingPreviewEngine()
    tab = _tab(backend)
    _dalle2(tab, "256x256")
    tab.use_image(picture(256, 256))
    drag(tab.painter, [(40, 128), (200, 128)])
    painted = tab.painter.mask
    _run(tab, "a yellow sun")
    (request,) = backend.requests
    assert (
        isinstance(request, EditRequest) and request.model == "dall-e-2" and request.prompt == "a yellow sun"
    )
    assert np.array_equal(read_mask(request.mask.data, "alpha"), painted)
    (tile,) = tab.grid.tiles
    assert tile.is_filled and "ipyimagegen-ok" in _status(tab)
    before = np.asarray(open_image(request.images[0].data).convert("RGB"))
    after = np.asarray(tile.image.to_pil().convert("RGB"))
    changed = np.any(before != after, axis=-1)
    assert changed.any() and not changed[~painted].any()
    assert tab.painter.painted_fraction > 0  # the painting stays for another try


def test_n_and_size_reach_the_request_and_the_grid() -> None:
    backend = RecordingPreviewEngine()
    tab = _tab(backend)
    _dalle2(tab, "256x256")
    tab.use_image(picture(64, 64))
    tab.painter.fill()
    tab.params.n = 3
    _run(tab)
    (request,) = backend.requests
    assert (request.n, request.size) == (3, "256x256")
    assert len(tab.grid.tiles) == 3 and all(t.image.size == (256, 256) for t in tab.grid.tiles)


def test_gpt_image_sends_reference_images_after_the_masked_one() -> None:
    backend = RecordingPreviewEngine()
    tab = _tab(backend)
    tab.params.model = "gpt-image-2.5-flare"
    tab.use_image(picture(96, 64))
    tab.add_reference(picture(40, 40, seed=1))
    tab.reference_upload.receive([upload_entry("ref.png", png_bytes(picture(30, 30, seed=2)))])
    assert len(tab.references) == 2 and holds_no_file(tab.reference_upload)
    assert "2 reference image(s)" in tab.summary.value
    drag(tab.painter, [(5, 5), (50, 5)])
    _run(tab)
    (request,) = backend.requests
    assert [image_size(i.data) for i in request.images] == [(96, 64), (40, 40), (30, 30)]
    assert image_size(request.mask.data) == (96, 64)


def test_an_error_in_the_call_keeps_the_painting() -> None:
    tab = _tab()
    tab.use_image(picture(64, 64))
    drag(tab.painter, [(5, 5), (40, 5)])
    painted = tab.painter.mask
    _run(tab, "")  # an empty prompt is refused before the call, and said under the prompt
    assert "prompt is empty" in tab.prompt_box.problem.value and "see the prompt" in _status(tab)
    assert np.array_equal(tab.painter.mask, painted)


def test_outpainting_frame_gives_a_border_mask() -> None:
    backend = RecordingPreviewEngine()
    tab = _tab(backend)
    _dalle2(tab, "512x512")
    tab.use_image(picture(200, 100))
    tab.frame_control.value = "512x512"
    tab.scale_control.value = 0.5
    tab.outpaint_control.value = True
    mask = tab.painter.mask
    assert mask.shape == (512, 512) and tab.painter.image.size == (512, 512)
    # the image fills half the frame's width, centred: 256 x 128 in the middle
    assert not mask[192:320, 128:384].any()
    assert mask[:190].all() and mask[322:].all() and mask[:, :126].all() and mask[:, 386:].all()
    assert "frame" in tab.summary.value
    alpha = np.asarray(open_image(tab.prepared.input.data).getchannel("A"))
    assert (alpha[mask] == 0).all() and (alpha[~mask] == 255).all()
    _run(tab, "a wide meadow")
    (request,) = backend.requests
    assert np.array_equal(read_mask(request.mask.data, "alpha"), mask)


def test_results_are_saved_with_input_mask_and_parent_then_edit_again(tmp_path) -> None:
    gallery = Gallery(tmp_path / "gallery")
    s = Studio(RecordingPreviewEngine(), gallery=gallery)
    tab = s.edit_tab
    tab.use_image(picture(64, 64))
    tab.painter.fill()
    _run(tab, "a blue door")
    (item,) = gallery.items()
    assert item.endpoint == "edits" and item.input_ids and item.mask_id and item.parent_id is None
    tile = s.grid.tiles[0]
    s.grid.act(tile, "edit")  # continue from the result
    assert s.tabs.selected_index == 1
    assert np.array_equal(np.asarray(tab.painter.image), np.asarray(tile.image.to_pil()))
    tab.painter.fill()
    _run(tab, "a green door")
    newest = max(gallery.items(), key=lambda i: i.created)
    assert newest.parent_id == item.id


def test_a_backend_without_edits_says_so() -> None:
    tab = _tab(GenerationsOnlyBackend())
    assert "does not edit images" in _status(tab)
    tab.use_image(picture(32, 32))
    tab.painter.fill()
    _run(tab)
    assert "does not edit images" in _status(tab) and tab.grid.tiles == []


def test_the_studio_offers_only_models_that_edit() -> None:
    tab = Studio(RecordingPreviewEngine()).edit_tab
    assert "dall-e-3" not in tab.params.offered_models
    assert "dall-e-2" in tab.params.offered_models
    tab.params.model = "dall-e-2"
    assert tab.prompt_box.limit == 1000 and tab.rows["references"].layout.display == "none"
    assert tab.rows["fit"].layout.display is None
    assert "ipyimagegen-edit-run" in tab.controls.run_button._dom_classes


# --- changes made together ----------------------------------------------------------------------


def test_work_asked_for_in_a_batch_runs_once_at_its_end_in_order() -> None:
    changes, done = ChangeBatch(), []
    prepare, keep = (lambda: done.append("prepare")), (lambda: done.append("keep"))
    with changes.batch():
        changes.run(keep)
        with changes.batch():  # nested: still waiting for the outermost
            changes.run(prepare)
            changes.run(keep)
        assert done == []
    assert done == ["keep", "prepare"]
    changes.run(prepare)  # outside a batch: at once
    assert done == ["keep", "prepare", "prepare"]

    with changes.batch():
        changes.run(keep)
        changes.drop(keep)  # done already
    with pytest.raises(RuntimeError), changes.batch():
        changes.run(prepare)
        raise RuntimeError("a change failed")
    assert done == ["keep", "prepare", "prepare"]


def test_an_extend_click_prepares_the_picture_once() -> None:
    tab = _tab()
    tab.params.model = "gpt-image-2"
    tab.use_image(picture(600, 400))
    shown, set_image = [], tab.painter.set_image

    def showing(image) -> None:  # records each picture the painter is given, then shows it
        shown.append(image)
        set_image(image)

    tab.painter.set_image = showing
    tab.extend_buttons["right"].click()  # the toggle, frame and scale change: one picture made
    assert len(shown) == 1 and shown[0] is tab.prepared.picture
    frame = tuple(int(side) for side in tab.frame_control.value.split("x"))
    assert tab.painter.image.size == tab.prepared.picture.size == frame and frame[0] > frame[1]
    assert tab.outpaint_control.value and tab.prepared.border is not None


def test_extending_into_the_same_frame_brings_the_size_back_to_it() -> None:
    tab = _tab()
    tab.params.model = "gpt-image-2"
    tab.use_image(picture(1024, 1024))
    tab.extend("right", 0.5)
    assert tab.frame_control.value == tab.params.size == "1536x1024"
    tab.params.size = "1024x1024"  # chosen by hand afterwards
    tab.extend("left", 0.05)  # still closest to 3:2: the frame stays, the size follows it again
    assert tab.frame_control.value == tab.params.size == "1536x1024"
    assert tab.prepared.picture.size == (1536, 1024)


def test_a_new_picture_resets_what_belonged_to_the_last_and_says_what_it_kept() -> None:
    tab = _tab()
    tab.params.model = "gpt-image-2"
    tab.upload.receive([upload_entry("garden.png", png_bytes(picture(300, 200)))])
    assert tab.upload.upload.note == "garden.png"
    tab.outpaint_control.value = True
    tab.prompt_box.value = "the garden in snow"
    drag(tab.painter, [(10, 10), (60, 10)])
    tab.controls.show_status("an earlier edit's status", "ok")
    tab.use_image(picture(600, 400, seed=3))  # as Edit on a result does
    assert tab.outpaint_control.value is False and not tab.painter.mask.any()
    assert tab.upload.upload.note == "" and tab.upload.problem.layout.display == "none"
    status = _status(tab)
    assert "earlier edit" not in status and "the outpainting frame is off" in status
    assert "Kept the prompt, gpt-image-2 at" in status
    assert tab.prompt_box.value == "the garden in snow"
