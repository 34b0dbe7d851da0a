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
from ipyimagegen.api.backend import VARIATION_PROMPT
from ipyimagegen.api.types import EditRequest, VariationRequest
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.errors import ImageInputError, ValidationError
from ipyimagegen.gallery import Gallery
from ipyimagegen.imaging import image_size, open_image
from ipyimagegen.session import JobRunner
from ipyimagegen.widgets.result_grid import ResultGrid
from ipyimagegen.widgets.studio import Studio
from ipyimagegen.widgets.variations_tab import CHOOSE_PICTURE, VariationsTab
from widget_helpers import WAIT_S, iter_widgets


def _tab(backend=None) -> VariationsTab:
    return VariationsTab(backend or RecordingPreviewEngine(), JobRunner(), ResultGrid())


def _run(tab: VariationsTab) -> None:
    tab.controls.run_button.click()
    assert tab.runner.wait(WAIT_S)


def test_variations_make_n_tiles_of_the_chosen_size() -> None:
    backend = RecordingPreviewEngine()
    tab = _tab(backend)
    assert tab.params.model == "dall-e-2" and tab.params.offered_models == backend.models("edits")
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


def test_variations_from_a_tile_take_its_model_and_are_saved_with_their_parent(tmp_path) -> None:
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
    assert tab.params.model == parent.model == "gpt-image-2.6-flare" and tab.by_edit
    assert "Variations by gpt-image-2.6-flare, the model that made this picture" in tab.status.value
    tab.params.n = 2
    _run(tab)
    children = [item for item in gallery.items() if item.id != parent.id]
    assert len(children) == 2 and all(c.parent_id == parent.id and c.input_ids for c in children)
    assert {c.endpoint for c in children} == {"edits"}
    assert {c.metadata["details"]["variation_method"] for c in children} == {"edit"}
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
    assert tab.params.model == "gpt-image-2.6-flare"
    assert (
        "no model here makes variations; <b>gpt-image-2.6-flare</b> makes them as edits with your prompt"
        in tab.model_note.value
    )
    assert tab.prompt_section.layout.display is None and not tab.controls.run_button.disabled
    assert tab.prompt_box.value == VARIATION_PROMPT  # what is sent, in view and editable
    tab.use_image(picture(300, 200))
    tab.prompt_box.value += " In autumn colours."
    tab.params.n = 2
    _run(tab)
    (request,) = backend.requests
    assert request.endpoint == "edits" and request.mask is None and request.model == "gpt-image-2.6-flare"
    assert request.prompt == f"{VARIATION_PROMPT} In autumn colours."
    assert len(tab.grid.tiles) == 2 and all(t.is_filled for t in tab.grid.tiles)
    saved = gallery.items()
    assert len(saved) == 2 and {item.metadata["details"]["variation_method"] for item in saved} == {"edit"}


def test_real_variations_are_labelled_so() -> None:
    tab = _tab()
    assert not tab.by_edit and tab.prompt_section.layout.display == "none"
    tab.use_image(picture(64, 64))
    _run(tab)
    assert {t.image.metadata["variation_method"] for t in tab.grid.tiles} == {"variations"}


# -- the model is the user's choice, and the tab says what it does -----------------------------


def test_the_user_chooses_the_model_and_a_note_beside_it_says_what_it_does() -> None:
    backend = RecordingPreviewEngine()
    tab = _tab(backend)
    beside_selector = tab.params.rows["model"].children[1].children
    assert tab.model_note in beside_selector and tab.params.model_control in beside_selector
    assert tab.params.model == "dall-e-2" and not tab.by_edit
    assert "<b>dall-e-2</b> makes variations here from the picture alone: no prompt is sent" in (
        tab.model_note.value
    )
    assert tab.prompt_section.layout.display == "none"  # nothing of it would be sent

    tab.params.model = "gpt-image-2"  # as a choice in the Model menu does
    assert tab.by_edit and tab.params.model == "gpt-image-2"  # kept: no silent switch to dall-e-2
    assert "dall-e-2 makes variations here; <b>gpt-image-2</b> makes them as edits with your prompt" in (
        tab.model_note.value
    )
    assert tab.prompt_section.layout.display is None and "gpt-image-2" in tab.prompt_label.value
    assert tab.prompt_box.limit == backend.spec_for("gpt-image-2").prompt_max
    tab.use_image(picture(300, 200))
    tab.prompt_box.value = "The same scene at night"
    _run(tab)
    edit = backend.requests[-1]
    assert isinstance(edit, EditRequest) and edit.model == "gpt-image-2" and edit.mask is None
    assert edit.prompt == "The same scene at night"
    assert {t.image.metadata["variation_method"] for t in tab.grid.tiles} == {"edit"}

    tab.params.model = "dall-e-2"
    tab.params.seed = 7  # an engine that honours seeds gets it with real variations too
    assert tab.prompt_section.layout.display == "none" and tab.prompt_box.value == "The same scene at night"
    _run(tab)
    variation = backend.requests[-1]
    assert isinstance(variation, VariationRequest) and variation.model == "dall-e-2" and variation.seed == 7


def test_an_empty_prompt_is_refused_at_the_prompt_when_variations_are_edits() -> None:
    backend = RecordingPreviewEngine()
    tab = _tab(backend)
    tab.params.model = "gpt-image-2.5-flare"
    tab.use_image(picture(64, 64))
    tab.prompt_box.clear()
    tab.controls.run_button.click()
    assert tab.make_variations() is None and backend.requests == [] and tab.grid.tiles == []
    problem = tab.prompt_box.problem.value  # under the prompt, as an error
    assert "Write a prompt: gpt-image-2.5-flare makes the variations as edits" in problem
    assert (
        "ipyimagegen-field-error" in tab.prompt_box.problem._dom_classes and problem not in tab.status.value
    )
    with pytest.raises(ValidationError, match="Write a prompt") as refused:
        tab.request()  # the same refusal for a caller in Python
    assert refused.value.param == "prompt"
    tab.prompt_box.value = "Brighter, in spring"
    assert tab.prompt_box.problem.value == ""  # gone as soon as there is a prompt
    tab.prompt_box.submit()  # Ctrl+Enter in the prompt box
    assert tab.runner.wait(WAIT_S)
    assert [r.prompt for r in backend.requests] == ["Brighter, in spring"] and len(tab.grid.tiles) == 1

    tab.prompt_box.clear()
    tab.params.model = "dall-e-2"  # real variations send no prompt: none is asked for
    assert tab.make_variations() is not None and tab.prompt_box.problem.value == ""
    assert tab.runner.wait(WAIT_S)


def test_a_results_model_is_taken_until_the_user_chooses_one() -> None:
    tab = _tab()
    engine = PreviewEngine()
    made_by_gpt = engine.generate(prompt="a red kite", model="gpt-image-2", size="1024x1024")[0]
    tab.use_image(made_by_gpt)
    assert tab.params.model == "gpt-image-2" and tab.by_edit and not tab.model_chosen
    assert "Variations by gpt-image-2, the model that made this picture (as edits with the prompt)" in (
        tab.status.value
    )
    tab.params.model = "dall-e-2"  # the user's choice...
    assert tab.model_chosen
    tab.use_image(engine.generate(prompt="a blue kite", model="gpt-image-2.5-flare", size="1024x1024")[0])
    assert tab.params.model == "dall-e-2"  # ...is kept, and said so
    assert (
        "Variations by dall-e-2, the model chosen here (from the picture alone); "
        "gpt-image-2.5-flare made this picture." in tab.status.value
    )
    with pytest.raises(ImageInputError):
        tab.use_image(b"not a picture")
    assert tab.params.model == "dall-e-2"


def test_a_refused_picture_keeps_the_model_it_had() -> None:
    tab = _tab(NoVariationsEngine())
    assert tab.params.model == "gpt-image-2.6-flare"

    class Broken:  # a result made by another model, whose file is not a picture
        model = "gpt-image-2"
        data = b"not a picture"

    with pytest.raises(ImageInputError):
        tab.use_image(Broken())
    assert tab.params.model == "gpt-image-2.6-flare" and "ipyimagegen-error" in tab.status.value


def test_the_empty_state_speaks_to_a_user_of_the_page_not_to_python() -> None:
    tab = _tab()
    assert tab.preview_slot.children == (tab.empty_state,)
    assert CHOOSE_PICTURE == "Choose a picture: Upload, drop one here, or click Variations on a result."
    assert CHOOSE_PICTURE in tab.empty_state.value
    _run(tab)  # Make variations with no picture yet
    assert f"No image yet. {CHOOSE_PICTURE}" in tab.status.value
    words = " ".join(_texts(tab))
    assert "use_image" not in words and "(...)" not in words and "()" not in words
    tab.use_image(picture(64, 64))
    assert tab.preview_slot.children == (tab.preview,) and tab.empty_state.comm is None  # closed


def _texts(root) -> list[str]:
    """What the page shows of ``root``: every text, label, placeholder and tooltip of its widgets."""
    found = []
    for widget in iter_widgets(root):
        for name in ("value", "description", "placeholder", "tooltip"):
            value = getattr(widget, name, None)
            if isinstance(value, str):
                found.append(value)
    return found
