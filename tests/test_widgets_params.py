"""ParamsPanel: the capability table decides what is offered; invalid combinations cannot be chosen."""

from __future__ import annotations

import ipywidgets as widgets
import pytest
from traitlets import TraitError

from ipyimagegen.api.validation import validate_request
from ipyimagegen.models import DEFAULT_MODEL, MODELS, live_models
from ipyimagegen.widgets.params_panel import ParamsPanel
from widget_helpers import FakeBackend


def _values(dropdown: widgets.Dropdown) -> list[object]:
    """The values a size dropdown offers (its options are (label, value) pairs)."""
    return [value for _label, value in dropdown.options]


@pytest.fixture
def panel() -> ParamsPanel:
    return ParamsPanel(FakeBackend())


def test_models_come_from_the_backend_and_default_to_its_default(panel: ParamsPanel) -> None:
    offered = [value for _label, value in panel.model_control.options]
    assert offered == panel.backend.models("generations")
    assert offered[: len(live_models("generations"))] == live_models("generations")
    assert "dall-e-2" in offered and "gpt-image-1" not in offered  # the original API, not a shut-down model
    assert panel.model == DEFAULT_MODEL


def test_dalle3_offers_its_sizes_and_style_and_hides_gpt_image_options(panel: ParamsPanel) -> None:
    panel.model_control.value = "dall-e-3"  # as a user picks it
    assert panel.model == "dall-e-3"
    assert _values(panel.size_control) == ["1024x1024", "1792x1024", "1024x1792"]
    assert panel.is_shown("style") and list(panel.style_control.options) == ["vivid", "natural"]
    assert list(panel.quality_control.options) == ["standard", "hd"]
    for hidden in ("background", "output_format", "output_compression", "partial_images"):
        assert not panel.is_shown(hidden), hidden
    request = panel.request("a lighthouse")
    assert (request.style, request.background, request.output_format) == ("vivid", None, None)


def test_gpt_image_offers_background_format_and_streaming(panel: ParamsPanel) -> None:
    panel.model = "gpt-image-2.5-flare"
    assert _values(panel.size_control) == list(MODELS["gpt-image-2"].sizes)
    assert {"1024x1024", "3840x2160", "auto"} <= set(_values(panel.size_control))
    for shown in ("quality", "background", "output_format", "partial_images"):
        assert panel.is_shown(shown), shown
    assert not panel.is_shown("style")
    assert not panel.is_shown("output_compression")  # png: nothing to compress


def test_dalle2_offers_small_sizes_and_no_quality_choice(panel: ParamsPanel) -> None:
    panel.model = "dall-e-2"
    assert _values(panel.size_control) == ["256x256", "512x512", "1024x1024"]
    assert not panel.is_shown("quality") and not panel.is_shown("style")
    panel.size_control.value = "256x256"
    assert panel.request("a cat").size == "256x256"


def test_a_size_the_new_model_lacks_falls_back_to_its_default(panel: ParamsPanel) -> None:
    panel.model = "dall-e-3"
    panel.size = "1792x1024"
    panel.model = "dall-e-2"
    assert panel.size == "1024x1024" and panel.size_control.value == "1024x1024"
    panel.size = "512x512"
    panel.model = "gpt-image-2.5-flare"
    assert panel.size == "1024x1024"


def test_transparent_background_excludes_jpeg(panel: ParamsPanel) -> None:
    panel.model = "gpt-image-2.5-flare"
    panel.output_format = "jpeg"
    assert panel.is_shown("output_compression")
    panel.background_control.value = "transparent"
    assert panel.output_format == "png"
    assert list(panel.format_control.options) == ["png", "webp"]
    with pytest.raises(TraitError, match="transparent"):
        panel.output_format = "jpeg"
    panel.background = "opaque"
    assert list(panel.format_control.options) == ["png", "jpeg", "webp"]


def test_compression_only_for_jpeg_and_webp(panel: ParamsPanel) -> None:
    panel.output_compression = 60
    assert panel.request("x").output_compression is None  # png
    panel.format_control.value = "webp"
    assert panel.is_shown("output_compression")
    request = panel.request("x")
    assert (request.output_format, request.output_compression) == ("webp", 60)
    validate_request(request)


def test_values_the_model_does_not_take_are_refused(panel: ParamsPanel) -> None:
    with pytest.raises(TraitError):
        panel.style = "vivid"  # gpt-image has no style
    with pytest.raises(TraitError):
        panel.size = "256x256"
    with pytest.raises(TraitError):
        panel.model = "no-such-model"
    with pytest.raises(TraitError):
        panel.n = 11
    panel.model = "dall-e-3"
    with pytest.raises(TraitError):
        panel.quality = "high"
    with pytest.raises(TraitError):
        panel.partial_images = 1


def test_a_refused_control_value_is_put_back(panel: ParamsPanel) -> None:
    panel.n_control.value = "3"
    assert panel.n == 3
    panel.background = "transparent"
    panel.format_control.options = ["png", "jpeg", "webp"]  # even if a stale view still offered jpeg
    panel.format_control.value = "jpeg"
    assert panel.output_format == "png" and panel.format_control.value == "png"


def test_count_above_the_model_limit_notes_parallel_requests(panel: ParamsPanel) -> None:
    panel.model = "dall-e-3"
    panel.n_control.value = "4"
    assert panel.requests_needed == 4
    assert "4 requests in parallel" in panel.n_note.value
    panel.n = 1
    assert panel.n_note.value == ""
    panel.model = "gpt-image-2.5-flare"
    panel.n = 10
    assert panel.n_note.value == ""


def test_streaming_is_offered_only_when_the_backend_streams() -> None:
    panel = ParamsPanel(FakeBackend(streaming=False), model="gpt-image-2.5-flare")
    assert not panel.is_shown("partial_images")
    streaming = ParamsPanel(FakeBackend(), model="gpt-image-2.5-flare")
    streaming.partial_control.value = 2
    assert streaming.request("x").partial_images == 2
    streaming.model = "dall-e-3"
    assert streaming.partial_images == 0 and streaming.request("x").partial_images is None


def test_every_request_the_panel_builds_is_valid() -> None:
    panel = ParamsPanel(FakeBackend())
    for _label, model in panel.model_control.options:
        panel.model = model
        for size in _values(panel.size_control):
            panel.size = size
            validate_request(panel.request("a small red boat"))


def test_the_images_box_says_when_it_lowers_a_count_and_refuses_fractions(panel: ParamsPanel) -> None:
    panel.model = "dall-e-2"
    panel.n_control.value = "11"
    assert panel.n == 10 and panel.n_control.value == "10"
    assert "at most 10 at once, so 10" in panel.n_note.value
    panel.n_control.value = "2.5"
    assert panel.n == 10 and panel.n_control.value == "10"  # the count as it was, on display too
    assert "a whole number from 1 to 10" in panel.n_note.value and "2.5" in panel.n_note.value
    panel.n_control.value = "<b>"
    assert "&lt;b&gt;" in panel.n_note.value
    panel.n_control.value = "0"
    assert panel.n == 1 and "at least 1" in panel.n_note.value
    panel.n_control.value = " 3 "
    assert panel.n == 3 and panel.n_control.value == "3" and panel.n_note.value == ""
