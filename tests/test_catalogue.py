"""The catalogue stays true to the newest official SDK: its models, its Literals, its parameters."""

from __future__ import annotations

import inspect
import re
import typing
from datetime import date, datetime
from pathlib import Path

import openai
import pytest
from openai.resources.images import Images
from openai.types import image_edit_params, image_generate_params, image_model

from ipyimagegen.api import types as api_types
from ipyimagegen.api.backend import BaseBackend
from ipyimagegen.models import (
    DEFAULT_MODEL,
    GENERATIONS,
    MODELS,
    VARIATIONS,
    catalogue,
    live_models,
    model_spec,
    recommended_model,
    size_allowed,
)
from ipyimagegen.server.params import EDIT_FILES, EDIT_PARAMS, GENERATION_PARAMS

TODAY = date(2026, 12, 1)


def _literal_values(annotation: object) -> set[str]:
    """Every string in the Literals of an annotation (Optional, Union and nesting unwrapped)."""
    found: set[str] = set()
    for arg in typing.get_args(annotation):
        if isinstance(arg, str):
            found.add(arg)
        else:
            found |= _literal_values(arg)
    return found


def _sdk_literals(params: type, name: str) -> set[str]:
    return _literal_values(typing.get_type_hints(params)[name])


def _sdk_deprecations() -> dict[str, date]:
    """``{model: shutdown date}`` from the "Deprecated values" notes of the SDK's ``ImageModel``."""
    text = Path(image_model.__file__).read_text()
    notes = text.split("Deprecated values:", 1)[1]
    found = {}
    for line in re.findall(r"^- (.+)$", notes, flags=re.MULTILINE):
        when = re.search(r"(?:shut down|retired) on (\w+ \d{1,2}, \d{4})", line)
        assert when, f"a deprecation note without a date: {line}"
        day = datetime.strptime(when.group(1), "%B %d, %Y").date()
        for name in re.findall(r'"([^"]+)"', line.split(":")[0]):
            found[name] = day
    return found


def test_the_sdk_is_new_enough_to_judge_by() -> None:
    major, minor = (int(part) for part in openai.__version__.split(".")[:2])
    assert (major, minor) >= (3, 57), openai.__version__


def test_every_sdk_model_is_in_the_catalogue() -> None:
    sdk_models = set(typing.get_args(image_model.ImageModel))
    assert sdk_models <= set(MODELS), sorted(sdk_models - set(MODELS))


def test_the_sdk_deprecations_match_the_catalogue_lifecycles() -> None:
    deprecated = _sdk_deprecations()
    assert {"gpt-image-1", "dall-e-2", "dall-e-3"} <= set(deprecated)
    for name, day in deprecated.items():
        assert MODELS[name].lifecycle.shutdown == day, name
        assert MODELS[name].lifecycle.is_shut_down(TODAY)


def test_models_shut_down_today_and_what_replaces_them() -> None:
    for name in ("gpt-image-1.5", "gpt-image-1.5-2025-12-16", "gpt-image-1-mini", "chatgpt-image-latest"):
        spec = model_spec(name)
        lifecycle = (
            spec.lifecycle if spec.lifecycle.shutdown else model_spec(spec.snapshot_of or "").lifecycle
        )
        assert lifecycle.shutdown == date(2026, 12, 1) and lifecycle.is_shut_down(TODAY), name
        assert set(lifecycle.replacements) == {"gpt-image-2.6-sunburst", "gpt-image-2.6-flare"}
    for spec in MODELS.values():
        for replacement in spec.lifecycle.replacements:
            assert not MODELS[replacement].lifecycle.is_shut_down(TODAY), (spec.name, replacement)


def test_live_models_are_todays() -> None:
    assert live_models(GENERATIONS, TODAY) == [
        "gpt-image-2.6-flare",
        "gpt-image-2.6-sunburst",
        "gpt-image-2.5-flare",
        "gpt-image-2.5-sunburst",
        "gpt-image-2",
    ]
    assert live_models(VARIATIONS, TODAY) == []  # no OpenAI model serves variations now
    assert set(live_models(GENERATIONS, TODAY)) <= set(typing.get_args(image_model.ImageModel))
    assert DEFAULT_MODEL in live_models(GENERATIONS, TODAY)
    for kind in ("openai", "azure", "preview"):
        assert recommended_model(kind) in live_models(GENERATIONS, TODAY)
    snapshots = {name: spec.snapshot_of for name, spec in MODELS.items() if spec.snapshot_of}
    assert snapshots == {
        "gpt-image-2.5-flare-2026-09-08": "gpt-image-2.5-flare",
        "gpt-image-2.5-sunburst-2026-09-08": "gpt-image-2.5-sunburst",
        "gpt-image-2-2026-04-21": "gpt-image-2",
        "gpt-image-1.5-2025-12-16": "gpt-image-1.5",
    }


@pytest.mark.parametrize(
    ("params", "name", "field"),
    [
        (image_generate_params.ImageGenerateParamsBase, "quality", "qualities"),
        (image_edit_params.ImageEditParamsBase, "quality", "qualities"),
        (image_generate_params.ImageGenerateParamsBase, "background", "backgrounds"),
        (image_generate_params.ImageGenerateParamsBase, "output_format", "output_formats"),
        (image_generate_params.ImageGenerateParamsBase, "moderation", "moderations"),
        (image_generate_params.ImageGenerateParamsBase, "complexity", "complexities"),
        (image_edit_params.ImageEditParamsBase, "input_fidelity", "input_fidelities"),
        (image_generate_params.ImageGenerateParamsBase, "style", "styles"),
        (image_generate_params.ImageGenerateParamsBase, "response_format", "response_formats"),
    ],
)
def test_every_value_the_sdk_allows_is_known(params: type, name: str, field: str) -> None:
    known = {value for spec in MODELS.values() for value in getattr(spec, field)}
    assert _sdk_literals(params, name) <= known, sorted(_sdk_literals(params, name) - known)


@pytest.mark.parametrize(
    ("ours", "params", "name"),
    [
        (api_types.Quality, image_generate_params.ImageGenerateParamsBase, "quality"),
        (api_types.Background, image_generate_params.ImageGenerateParamsBase, "background"),
        (api_types.OutputFormat, image_generate_params.ImageGenerateParamsBase, "output_format"),
        (api_types.Moderation, image_generate_params.ImageGenerateParamsBase, "moderation"),
        (api_types.Complexity, image_generate_params.ImageGenerateParamsBase, "complexity"),
        (api_types.InputFidelity, image_edit_params.ImageEditParamsBase, "input_fidelity"),
        (api_types.Style, image_generate_params.ImageGenerateParamsBase, "style"),
        (api_types.ResponseFormat, image_generate_params.ImageGenerateParamsBase, "response_format"),
    ],
)
def test_the_clients_literal_types_are_the_sdks(ours: object, params: type, name: str) -> None:
    assert set(typing.get_args(ours)) == _sdk_literals(params, name)


def test_every_size_the_sdk_names_is_taken_by_some_model() -> None:
    for params in (image_generate_params.ImageGenerateParamsBase, image_edit_params.ImageEditParamsBase):
        for size in _sdk_literals(params, "size"):
            assert any(size_allowed(spec, size) for spec in MODELS.values()), size


def test_gpt_image_2_sizes_follow_its_rule() -> None:
    spec = MODELS["gpt-image-2"]
    for size in ("1024x1024", "1536x864", "3840x2160", "2160x3840", "2048x2048", "1280x720", "auto"):
        assert size_allowed(spec, size), size
    for size in (
        "3840x3840",
        "3840x2880",
        "1000x1000",
        "4000x1000",
        "3008x960",
        "512x512",
        "256x256",
        "00x00",
    ):
        assert not size_allowed(spec, size), size
    assert not size_allowed(MODELS["gpt-image-1"], "2048x2048")


def test_unknown_names_follow_their_family_or_bounded_basic_rules() -> None:
    future = model_spec("gpt-image-3")
    assert future.is_gpt_image and not future.known and future.response_formats == () and future.streams
    other = model_spec("someone-elses-model")
    assert other.family == "custom" and "b64_json" in other.response_formats
    assert size_allowed(other, "768x512") and not size_allowed(other, "8000x8000")
    assert not size_allowed(other, "99999x99999") and not size_allowed(other, "00x100")


def test_transparent_is_refused_where_the_model_refuses_it() -> None:
    assert "transparent" not in MODELS["gpt-image-2"].backgrounds
    assert "background=transparent" in MODELS["gpt-image-2"].refused
    assert "transparent" in MODELS["gpt-image-2.5-flare"].backgrounds
    assert MODELS["gpt-image-2"].input_fidelities == ()  # OpenAI: for gpt-image-2, omit input_fidelity
    assert {"xhigh", "max"} <= set(MODELS["gpt-image-2.5-sunburst"].qualities)
    assert {"xhigh", "max"}.isdisjoint(MODELS["gpt-image-2"].qualities)


def test_prices_carry_the_date_they_were_read() -> None:
    assert catalogue()["prices_read"]
    for name in live_models(GENERATIONS, TODAY):
        prices = MODELS[name].prices
        assert prices is not None and prices.read_on == catalogue()["prices_read"], name
        assert set(prices.per_million_tokens) == {"text_input", "image_input", "image_output"}


_CLIENT_SPELLINGS = {
    "stream": "on_partial",
    "extra_headers": None,
    "extra_query": None,
    "extra_body": "extra",
}


@pytest.mark.parametrize("method", ["generate", "edit"])
def test_every_sdk_parameter_is_a_client_keyword(method: str) -> None:
    sdk = set(inspect.signature(getattr(Images, method)).parameters) - {"self"}
    ours = set(inspect.signature(getattr(BaseBackend, method)).parameters)
    for name in sdk:
        spelled = _CLIENT_SPELLINGS.get(name, name)
        if spelled is not None:
            assert spelled in ours, name
    for name in ours - {"self"}:
        assert (
            inspect.signature(getattr(BaseBackend, method)).parameters[name].kind
            is inspect.Parameter.KEYWORD_ONLY
        )


def test_every_sdk_parameter_is_accepted_by_the_server() -> None:
    generate = typing.get_type_hints(image_generate_params.ImageGenerateParamsBase)
    assert set(generate) - {"stream"} <= set(GENERATION_PARAMS)
    edit = set(typing.get_type_hints(image_edit_params.ImageEditParamsBase))
    assert edit - {"image", "mask", "markup"} <= set(EDIT_PARAMS) and {"image", "mask", "markup"} <= set(
        EDIT_FILES
    )
    assert "stream" in GENERATION_PARAMS and "stream" in EDIT_PARAMS


def test_an_edit_size_follows_the_pictures_shape() -> None:
    from ipyimagegen.models import size_for_aspect

    gpt = model_spec("gpt-image-2")
    assert size_for_aspect(gpt, (1200, 800)) == "1536x1024"  # a 3:2 photo: the landscape size
    assert size_for_aspect(gpt, (800, 1200)) == "1024x1536"
    assert size_for_aspect(gpt, (640, 640)) == "1024x1024"
    dalle2 = model_spec("dall-e-2")
    assert size_for_aspect(dalle2, (400, 200)) == "512x512"  # squares only: the smallest that holds it
    assert size_for_aspect(dalle2, (400, 200), current="256x256") == "256x256"  # a chosen square stays
    assert size_for_aspect(dalle2, (3000, 3000)) == "1024x1024"
