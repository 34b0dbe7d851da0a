"""The editor's work in the Edit tab, in pure Python: the original kept outside the mask, how much
the model changed there, before/after, outpainting by direction and by dragging, and the draft
that survives a restart."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pytest
from PIL import Image

from edit_helpers import RecordingPreviewEngine, drag, picture, png_bytes
from ipyimagegen import masks
from ipyimagegen.api.types import CallHooks, EditRequest, GeneratedImage, ImagesResponse
from ipyimagegen.gallery import Gallery
from ipyimagegen.session import JobRunner
from ipyimagegen.widgets.edit_draft import DraftStore, draft_folder_name, notebook_identity
from ipyimagegen.widgets.edit_tab import EditTab
from ipyimagegen.widgets.result_grid import ResultGrid
from ipyimagegen.widgets.studio import Studio
from test_mask_painter import PageSide
from widget_helpers import WAIT_S


class RepaintsEverything(RecordingPreviewEngine):
    """An engine that, like the GPT image models, changes pixels outside the mask too: the preview
    engine's edit, then everything brightened (each image before it is handed over)."""

    def _result(self, image: Any, index: int, seed: int, request: Any, hooks: CallHooks) -> GeneratedImage:
        result = super()._result(image, index, seed, request, hooks)
        if not isinstance(request, EditRequest):
            return result
        pixels = np.asarray(result.to_pil().convert("RGB")).astype(np.int16)
        buffer = io.BytesIO()
        Image.fromarray(np.clip(pixels + 60, 0, 255).astype(np.uint8)).save(buffer, format="PNG")
        result.data = buffer.getvalue()
        return result


def _tab(backend=None, gallery=None) -> EditTab:
    return EditTab(backend or RecordingPreviewEngine(), JobRunner(), ResultGrid(), gallery=gallery)


def _edit(tab: EditTab, prompt: str = "a red balloon") -> ImagesResponse:
    responses: list[ImagesResponse] = []
    tab.on_result(responses.append)
    tab.prompt_box.value = prompt
    tab.controls.run_button.click()
    assert tab.runner.wait(WAIT_S)
    assert responses, tab.status.value
    return responses[-1]


def _painted_square(tab: EditTab) -> np.ndarray:
    mask = np.zeros(tab.painter.mask.shape, dtype=bool)
    mask[64:192, 64:192] = True
    tab.painter.set_mask(mask)
    return mask


# --- outside the mask ------------------------------------------------------------------------


def test_the_original_is_put_back_outside_the_mask_and_the_change_is_reported() -> None:
    tab = _tab(RepaintsEverything())
    tab.params.model, tab.params.size = "dall-e-2", "256x256"
    tab.use_image(picture(256, 256))
    mask = _painted_square(tab)
    shown = np.asarray(tab.prepared.picture.convert("RGB")).astype(int)
    response = _edit(tab)
    (image,) = response.data
    result = np.asarray(image.to_pil().convert("RGB")).astype(int)
    assert np.array_equal(result[~mask], shown[~mask])  # put back exactly (no feather)
    assert np.abs(result[mask] - shown[mask]).mean() > 20  # the edit itself is kept
    assert image.metadata["changed_outside_mask"] > 0.9 and image.metadata["pasted_back"] is True
    assert "Outside the mask, the model changed" in tab.status.value and "put back" in tab.status.value
    tab.grid.enlarge(tab.grid.tiles[-1])  # the viewer's facts
    facts = dict(tab.grid.view.viewer["facts"])
    assert "the original was put back" in facts["Outside the mask"]


def test_without_keep_outside_the_models_pixels_stay_and_the_change_is_still_said() -> None:
    tab = _tab(RepaintsEverything())
    tab.params.model, tab.params.size = "dall-e-2", "256x256"
    tab.use_image(picture(256, 256))
    mask = _painted_square(tab)
    tab.keep_outside.value = False
    shown = np.asarray(tab.prepared.picture.convert("RGB")).astype(int)
    (image,) = _edit(tab).data
    result = np.asarray(image.to_pil().convert("RGB")).astype(int)
    assert np.abs(result[~mask] - shown[~mask]).mean() > 40
    assert "pasted_back" not in image.metadata and image.metadata["changed_outside_mask"] > 0.9
    assert "changed 9" in tab.status.value or "changed 100" in tab.status.value


def test_the_feather_blends_the_edge_and_an_exact_engine_says_nothing_changed() -> None:
    tab = _tab(RepaintsEverything())
    tab.params.model, tab.params.size = "dall-e-2", "256x256"
    tab.use_image(picture(256, 256))
    mask = _painted_square(tab)
    tab.painter.feather = 6
    shown = np.asarray(tab.prepared.picture.convert("RGB")).astype(int)
    (image,) = _edit(tab).data
    result = np.asarray(image.to_pil().convert("RGB")).astype(int)
    far = masks.soften(mask, 6) < 0.001
    assert np.abs(result[far] - shown[far]).max() <= 1  # well outside: the original
    edge = np.abs(result[128, 56:72] - shown[128, 56:72]).mean(axis=1)
    assert edge[0] < edge[8] < edge[-1]  # across the edge: a ramp, no seam
    assert image.metadata["feather"] == 6

    exact = _tab()  # the preview engine keeps every pixel outside the mask
    exact.params.model, exact.params.size = "dall-e-2", "256x256"
    exact.use_image(picture(256, 256))
    _painted_square(exact)
    (kept,) = _edit(exact).data
    assert kept.metadata["changed_outside_mask"] == 0.0
    assert "Outside the mask" not in exact.status.value


def test_a_result_of_another_shape_is_left_as_the_model_made_it() -> None:
    tab = _tab(RepaintsEverything())
    tab.params.model = "gpt-image-2"
    tab.use_image(picture(600, 400))
    tab.painter.fill()
    tab.painter.undo()
    drag(tab.painter, [(20, 20), (200, 50)])
    tab.params.size = "1024x1024"  # square, from a 3:2 picture
    (image,) = _edit(tab).data
    assert "changed_outside_mask" not in image.metadata and "pasted_back" not in image.metadata
    assert "Outside the mask" not in tab.status.value


def test_paste_back_scales_the_original_to_a_result_of_another_size() -> None:
    original = Image.fromarray(picture(300, 200))
    edited = Image.new("RGB", (600, 400), (0, 0, 0))
    mask = np.zeros((200, 300), dtype=bool)
    mask[:, :150] = True
    blended = np.asarray(masks.paste_back(original, edited, mask))
    assert blended.shape == (400, 600, 3)
    assert (blended[:, :290] == 0).all()
    expected = np.asarray(original.resize((600, 400), Image.Resampling.LANCZOS).convert("RGB"))
    assert np.abs(blended[:, 310:].astype(int) - expected[:, 310:]).max() <= 1
    assert masks.changed_outside(original, edited, mask) > 0.9


def test_a_transparent_border_keeps_the_models_fill() -> None:
    frame = np.zeros((100, 100, 4), dtype=np.uint8)
    frame[25:75, 25:75] = (200, 10, 10, 255)
    edited = Image.new("RGBA", (100, 100), (0, 200, 0, 255))
    border = frame[..., 3] == 0
    blended = np.asarray(masks.paste_back(Image.fromarray(frame, "RGBA"), edited, border))
    assert (blended[border] == (0, 200, 0, 255)).all()
    assert (blended[~border] == (200, 10, 10, 255)).all()


# --- before and after ----------------------------------------------------------------------


def test_after_an_edit_the_painter_can_compare_it_with_its_picture() -> None:
    tab = _tab(RepaintsEverything())
    tab.params.model, tab.params.size = "dall-e-2", "256x256"
    tab.use_image(picture(256, 256))
    page = PageSide(tab.painter)
    mask = _painted_square(tab)
    before = np.asarray(tab.prepared.picture.convert("RGB")).astype(int)
    (image,) = _edit(tab).data
    assert page.after is not None and page.after.size == (256, 256)
    assert tab.painter.view.comparing == [True, 0.0]  # the result on the painter, as a candidate
    shown = np.asarray(page.after.convert("RGB")).astype(int)
    result = np.asarray(image.to_pil().convert("RGB")).astype(int)
    assert np.abs(shown - result)[mask].mean() < 10 < 30 < np.abs(shown - before)[mask].mean()  # JPEG-close
    tab.use_image(picture(128, 128, seed=2))  # another picture: nothing to compare with yet
    assert page.after is None


# --- outpainting ----------------------------------------------------------------------------


def test_extend_right_picks_the_frame_of_that_shape_and_marks_the_new_area() -> None:
    tab = _tab()
    tab.params.model = "gpt-image-2"
    tab.use_image(picture(1024, 1024))
    tab.extend("right", 0.5)
    assert tab.outpaint_control.value and tab.frame_control.value == "1536x1024"
    assert tab.params.size == "1536x1024"  # the model makes the picture of the frame
    assert tab.prepared.picture.size == (1536, 1024)
    mask = tab.painter.mask
    assert not mask[:, :1020].any() and mask[:, 1030:].all()
    assert tab.painter.view.placement == [0.0, 0.0, 1024.0, 1024.0]
    tab.extend("up", 0.5)  # both extensions kept
    mask = tab.painter.mask
    assert mask[0].all() and mask[:, -1].all() and not mask[-1, 0]


def test_extend_on_a_square_only_model_fits_the_shape_into_its_square() -> None:
    tab = _tab()
    tab.params.model, tab.params.size = "dall-e-2", "1024x1024"
    tab.use_image(picture(512, 512))
    tab.extend("left", 1.0)
    assert tab.frame_control.value == "1024x1024"
    x, y, width, height = tab.painter.view.placement
    assert (x + width, width) == (1024.0, 512.0) and y == 256.0
    with pytest.raises(ValueError, match="side"):
        tab.extend("sideways")


def test_dragging_the_picture_in_its_frame_moves_it_and_the_paint_with_it() -> None:
    tab = _tab()
    tab.params.model = "gpt-image-2"
    tab.use_image(picture(600, 400))
    tab.outpaint_control.value = True
    tab.frame_control.value = "1536x1024"
    x0, y0, w, h = tab.painter.view.placement
    drag(tab.painter, [(200, 150), (220, 150)])  # some paint on the picture itself
    painted_before = tab.painter.mask & ~tab.prepared.border
    page = PageSide(tab.painter)
    page.send({"kind": "move", "dx": -100, "dy": 50})
    x1, y1, _, _ = tab.painter.view.placement
    assert (x1, y1) == (x0 - 100, y0 + 50)
    painted_after = tab.painter.mask & ~tab.prepared.border
    assert painted_after.sum() == pytest.approx(painted_before.sum(), rel=0.05)
    rows, cols = np.nonzero(painted_after)
    rows0, cols0 = np.nonzero(painted_before)
    assert cols.mean() == pytest.approx(cols0.mean() - 100, abs=2) and rows.mean() == pytest.approx(
        rows0.mean() + 50, abs=2
    )
    page.send({"kind": "move", "dx": -5000, "dy": 0})  # as far as the frame goes, not out of it
    assert tab.painter.view.placement[0] == 0.0


def test_the_move_tool_comes_with_the_frame() -> None:
    tab = _tab()
    tab.params.model = "gpt-image-2"
    tab.use_image(picture(600, 400))
    values = lambda: [value for _label, value in tab.painter._tools.options]  # noqa: E731
    assert "move" not in values()
    tab.extend("down", 0.25)
    assert "move" in values()
    tab.outpaint_control.value = False
    assert "move" not in values() and tab.painter.view.placement == []


# --- the draft ------------------------------------------------------------------------------


def test_a_restart_brings_back_the_picture_mask_prompt_and_frame(tmp_path) -> None:
    gallery = Gallery(tmp_path)
    tab = _tab(gallery=gallery)
    tab.params.model = "gpt-image-2"
    tab.use_image(png_bytes(picture(600, 400)))
    drag(tab.painter, [(20, 20), (200, 50)])
    tab.extend("right", 0.25)
    tab.painter.feather = 5
    tab.keep_outside.value = False
    tab.prompt_box.value = "a red boat on the lake"
    assert tab.draft.wait()
    mask, shown = tab.painter.mask, np.asarray(tab.painter.image)
    gallery.close()

    again = _tab(gallery=Gallery(tmp_path))  # a new kernel, the same gallery folder
    assert again.prompt_box.value == "a red boat on the lake"
    assert again.outpaint_control.value and again.frame_control.value == tab.frame_control.value
    assert np.array_equal(np.asarray(again.painter.image), shown)
    assert np.array_equal(again.painter.mask, mask)
    assert again.painter.feather == 5 and again.keep_outside.value is False
    assert (
        "Your draft is back" in again.status.value
        and f"{again.painter.painted_fraction:.1%}" in again.status.value
    )


def test_the_draft_is_written_in_the_background_and_each_file_whole(tmp_path) -> None:
    tab = _tab(gallery=Gallery(tmp_path))
    tab.use_image(picture(300, 200))
    for x in range(0, 200, 20):
        drag(tab.painter, [(x, 10), (x + 10, 60)])
    assert tab.draft.wait()
    folder = tab.draft.folder
    assert folder.parent == tmp_path / "drafts"  # one folder a notebook
    assert sorted(p.name for p in folder.iterdir()) == ["edit-mask.png", "edit-picture", "edit.json"]
    state = json.loads((folder / "edit.json").read_text())
    assert state["model"] == tab.params.model and state["saved_at"]
    with Image.open(folder / "edit-mask.png") as saved:  # black and white, white = marked
        assert saved.mode == "1" and np.array_equal(np.asarray(saved), tab.painter.mask)


def test_a_damaged_draft_is_left_alone_and_the_tab_starts_empty(tmp_path) -> None:
    folder = DraftStore(tmp_path).folder
    folder.mkdir(parents=True)
    (folder / "edit.json").write_text("{not json")
    (folder / "edit-picture").write_bytes(b"nothing")
    tab = _tab(gallery=Gallery(tmp_path))
    assert tab.prepared is None and tab.painter.image is None
    (folder / "edit.json").write_text(json.dumps({"prompt": "x"}))
    tab = _tab(gallery=Gallery(tmp_path))  # a picture that is not one: said, and nothing replaced
    assert tab.prepared is None and "could not be brought back" in tab.status.value
    assert (folder / "edit-picture").read_bytes() == b"nothing"


def test_without_a_gallery_there_is_no_draft(tmp_path) -> None:
    tab = _tab()
    assert tab.draft is None
    tab.use_image(picture(64, 64))
    drag(tab.painter, [(5, 5), (30, 30)])


def test_the_studio_brings_back_the_draft_of_its_gallery(tmp_path) -> None:
    studio = Studio(RecordingPreviewEngine(), gallery=Gallery(tmp_path))
    studio.edit_tab.use_image(picture(320, 240))
    studio.edit_tab.prompt_box.value = "kept"
    assert studio.edit_tab.draft.wait()
    again = Studio(RecordingPreviewEngine(), gallery=Gallery(tmp_path))
    assert again.edit_tab.prompt_box.value == "kept" and again.edit_tab.painter.image.size == (320, 240)


def test_bringing_a_draft_back_does_not_write_it_again(tmp_path) -> None:
    gallery = Gallery(tmp_path)
    tab = _tab(gallery=gallery)
    tab.use_image(png_bytes(picture(300, 200)))
    tab.extend("left", 0.5)
    tab.prompt_box.value = "a lighthouse"
    assert tab.draft.wait()
    folder = tab.draft.folder
    written = {path.name: path.stat().st_mtime_ns for path in folder.iterdir()}

    again = _tab(gallery=gallery)
    assert again.prompt_box.value == "a lighthouse" and again.draft.wait()
    assert {path.name: path.stat().st_mtime_ns for path in folder.iterdir()} == written

    again.prompt_box.value = "a lighthouse at night"  # a change is kept; the same picture is not rewritten
    assert again.draft.wait()
    assert json.loads((folder / "edit.json").read_text())["prompt"] == "a lighthouse at night"
    assert (folder / "edit-picture").stat().st_mtime_ns == written["edit-picture"]


def test_each_notebook_has_its_own_draft_on_a_shared_gallery(tmp_path, monkeypatch) -> None:
    gallery = Gallery(tmp_path)
    monkeypatch.setenv("JPY_SESSION_NAME", "/home/ada/work/fox.ipynb")  # JupyterLab tells the kernel
    fox = Studio(RecordingPreviewEngine(), gallery=gallery)
    fox.edit_tab.use_image(picture(320, 240))
    fox.edit_tab.prompt_box.value = "a fox in the snow"
    assert fox.edit_tab.draft.wait()

    monkeypatch.setenv("JPY_SESSION_NAME", "/home/ada/work/02-edits-with-masks.ipynb")
    other = Studio(RecordingPreviewEngine(), gallery=gallery)
    assert other.edit_tab.prepared is None and other.edit_tab.prompt_box.value == ""

    monkeypatch.delenv("JPY_SESSION_NAME")  # Voila: the page's path, in the notebook's folder
    monkeypatch.setenv("SERVER_SOFTWARE", "voila/0.5.13")
    monkeypatch.setenv("SCRIPT_NAME", "/voila/render/fox.ipynb")
    assert Studio(RecordingPreviewEngine(), gallery=gallery).edit_tab.prepared is None

    monkeypatch.setenv("JPY_SESSION_NAME", "/home/ada/work/fox.ipynb")  # the fox notebook again
    again = Studio(RecordingPreviewEngine(), gallery=gallery)
    assert again.edit_tab.prompt_box.value == "a fox in the snow"
    named = Studio(RecordingPreviewEngine(), gallery=gallery, draft_name="workshop table 3")
    assert named.edit_tab.prepared is None and named.edit_tab.draft.owner == "workshop table 3"


def test_notebook_identity_reads_what_each_front_end_gives_its_kernel(tmp_path) -> None:
    assert notebook_identity({"IPYIMAGEGEN_DRAFT": "app", "JPY_SESSION_NAME": "a.ipynb"}, tmp_path) == "app"
    assert notebook_identity({"JPY_SESSION_NAME": "dir/a.ipynb"}, tmp_path) == "dir/a.ipynb"
    voila = {"SERVER_SOFTWARE": "voila/0.5.13", "SCRIPT_NAME": "/"}
    assert notebook_identity(voila, tmp_path) == f"voila:{tmp_path}"
    assert notebook_identity({}, tmp_path) == f"python:{tmp_path}"
    names = {draft_folder_name(identity) for identity in ("a/x.ipynb", "b/x.ipynb", "x.ipynb")}
    assert len(names) == 3 and all(name.startswith("x-") for name in names)


# --- the editing loop: an edit's results as candidates on the painter ---------------------------


def test_an_edits_results_are_candidates_to_cycle_compare_and_accept(tmp_path) -> None:
    gallery = Gallery(tmp_path)
    tab = _tab(gallery=gallery)
    tab.params.model, tab.params.size = "dall-e-2", "256x256"
    tab.use_image(picture(256, 256))
    page = PageSide(tab.painter)
    _painted_square(tab)
    tab.params.n = 3
    response = _edit(tab)
    assert len(response.data) == 3 and tab.candidates.layout.display is None
    assert "Result <b>1</b> of 3" in tab.candidates.label.value
    assert tab.painter.view.comparing == [True, 0.0]  # the first result, all of it; the divider at the left

    def shown_is(image) -> bool:  # the result ipycanvas shows (a JPEG of it) is this one, of the three
        shown = np.asarray(page.after.convert("RGB")).astype(int)
        distances = [
            np.abs(shown - np.asarray(each.to_pil().convert("RGB")).astype(int)).mean()
            for each in response.data
        ]
        return distances.index(min(distances)) == response.data.index(image) and min(distances) < 12

    assert shown_is(response.data[0])
    page.send({"kind": "cycle", "step": 1})  # → over the picture
    assert "Result <b>2</b> of 3" in tab.candidates.label.value and shown_is(response.data[1])
    tab.candidates.previous_button.click()
    tab.candidates.previous_button.click()  # wraps round
    assert tab.candidates.index == 2 and shown_is(response.data[2])

    tab.candidates.accept_button.click()
    chosen = response.data[2]
    assert np.array_equal(
        np.asarray(tab.painter.image.convert("RGB")), np.asarray(chosen.to_pil().convert("RGB"))
    )
    assert not tab.painter.mask.any() and tab.painter.view.comparing == []
    assert tab.candidates.layout.display == "none"
    assert tab.picture.loaded.parent_id == chosen.metadata["gallery_id"]  # the lineage goes on
    assert (
        "Accepted result 3 of 3" in tab.status.value
        and "other 2 are in the results and History" in tab.status.value
    )
    assert len(tab.grid.tiles) == 3  # the others stay


def test_dismissing_the_candidates_goes_back_to_the_picture_and_a_new_picture_drops_them() -> None:
    tab = _tab()
    tab.params.model, tab.params.size = "dall-e-2", "256x256"
    tab.use_image(picture(256, 256))
    _painted_square(tab)
    _edit(tab)
    mask = tab.painter.mask
    tab.candidates.dismiss_button.click()
    assert tab.candidates.layout.display == "none" and tab.painter.view.comparing == []
    assert np.array_equal(tab.painter.mask, mask)  # the painting is as it was
    _edit(tab)
    assert tab.candidates.images
    tab.use_image(picture(128, 128, seed=5))
    assert tab.candidates.images == [] and tab.candidates.layout.display == "none"
