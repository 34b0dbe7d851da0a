"""The diffusers engine's moderation: the word list on prompts, and a checkpoint's own safety checker on
uploaded and generated images, on a tiny pipeline whose checker's decision the tests force."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from ipyimagegen.api.types import (
    CallHooks,
    EditRequest,
    GenerateRequest,
    InputImage,
    Progress,
    VariationRequest,
)
from ipyimagegen.engines.diffusers_engine import DiffusersEngine
from ipyimagegen.errors import ConfigurationError, ContentPolicyError
from local_models import require_torch
from tiny_pipeline import build_tiny_pipeline

torch = require_torch()

STEPS = 2

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy:DeprecationWarning"
)


def tiny_safety_checker() -> tuple[Any, Any]:
    """A randomly initialised CLIP safety checker (32 px input) and its feature extractor."""
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor

    small = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1, "num_attention_heads": 4}
    config = CLIPConfig(
        text_config={**small, "vocab_size": 99},
        vision_config={**small, "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    torch.manual_seed(0)
    checker = StableDiffusionSafetyChecker(config).eval()
    extractor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    return checker, extractor


def flag_everything(checker: Any, flag: bool) -> None:
    """Thresholds no image can stay under (every image flagged), or none can reach (none flagged)."""
    checker.concept_embeds_weights.data.fill_(-2.0 if flag else 2.0)
    checker.special_care_embeds_weights.data.fill_(2.0)


@pytest.fixture(scope="module")
def checked_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Stable Diffusion folder that ships a safety checker, as SD 1.x checkpoints do."""
    from diffusers import StableDiffusionPipeline

    torch.set_num_threads(2)
    plain = build_tiny_pipeline(tmp_path_factory.mktemp("models") / "tiny-sd")
    loaded = StableDiffusionPipeline.from_pretrained(plain, local_files_only=True)
    checker, extractor = tiny_safety_checker()
    components = {**loaded.components, "safety_checker": checker, "feature_extractor": extractor}
    folder = plain.parent / "tiny-sd-checked"
    StableDiffusionPipeline(**components, requires_safety_checker=True).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def engine(checked_folder: Path) -> DiffusersEngine:
    return DiffusersEngine(checked_folder, steps=STEPS)


def png(size: tuple[int, int] = (64, 64), mode: str = "RGB") -> bytes:
    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    pixels = np.stack([x * 4 % 256, y * 4 % 256, (x + y) % 256], -1).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, "PNG")
    return buffer.getvalue()


def hole_mask(size: tuple[int, int] = (64, 64)) -> bytes:
    picture = Image.new("RGBA", size, (0, 0, 0, 255))
    picture.paste((0, 0, 0, 0), (16, 16, 48, 48))
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()


def edit_request(prompt: str = "a teapot") -> EditRequest:
    return EditRequest(
        model="tiny-sd-checked",
        images=[InputImage.from_bytes(png(), "in")],
        mask=InputImage.from_bytes(hole_mask(), "mask"),
        prompt=prompt,
        seed=1,
    )


def variation_request(**extra: Any) -> VariationRequest:
    return VariationRequest(
        model="tiny-sd-checked", image=InputImage.from_bytes(png(), "in"), seed=1, extra=extra
    )


def recorded() -> tuple[CallHooks, list[Progress]]:
    steps: list[Progress] = []
    return CallHooks(on_progress=steps.append), steps


def test_the_checkpoints_safety_checker_is_loaded(engine: DiffusersEngine) -> None:
    assert engine.pipeline.safety_checker is not None and engine.pipeline.feature_extractor is not None


def test_nothing_flagged_makes_images_as_before(engine: DiffusersEngine) -> None:
    flag_everything(engine.pipeline.safety_checker, False)
    generated = engine.generate(prompt="a teapot", seed=1)
    assert len(generated.data) == 1 and "nsfw_content_detected" not in generated.data[0].metadata
    assert len(engine.run(edit_request()).data) == 1
    assert len(engine.run(variation_request()).data) == 1


def test_a_flagged_output_is_refused_instead_of_a_black_image(engine: DiffusersEngine) -> None:
    flag_everything(engine.pipeline.safety_checker, True)
    hooks, steps = recorded()
    with pytest.raises(ContentPolicyError) as caught:
        engine.run(GenerateRequest(model="tiny-sd-checked", prompt="a teapot", seed=1, n=2), hooks)
    refused = caught.value
    assert (refused.code, refused.type, refused.param) == (
        "content_policy_violation",
        "invalid_request_error",
        None,
    )
    assert "generated" in refused.message
    assert steps  # the model ran: the image it made was flagged


@pytest.mark.parametrize("make", [edit_request, variation_request], ids=["edit", "variation"])
def test_a_flagged_uploaded_image_is_refused_before_sampling(engine: DiffusersEngine, make: Any) -> None:
    flag_everything(engine.pipeline.safety_checker, True)
    hooks, steps = recorded()
    with pytest.raises(ContentPolicyError) as caught:
        engine.run(make(), hooks)
    assert (caught.value.code, caught.value.param) == ("content_policy_violation", "image")
    assert "input image" in caught.value.message and "another image" in caught.value.message
    assert steps == []  # no step ran


def test_flagged_prompts_are_refused_before_sampling(engine: DiffusersEngine) -> None:
    flag_everything(engine.pipeline.safety_checker, False)
    for call in (
        lambda hooks: engine.run(
            GenerateRequest(model="tiny-sd-checked", prompt="a Massacre at the fair"), hooks
        ),
        lambda hooks: engine.run(edit_request("add a pipe bomb"), hooks),
        lambda hooks: engine.run(variation_request(prompt="with a machine gun"), hooks),
    ):
        hooks, steps = recorded()
        with pytest.raises(ContentPolicyError) as caught:
            call(hooks)
        assert (caught.value.code, caught.value.param) == ("content_policy_violation", "prompt")
        assert steps == []


def test_the_word_list_is_chosen_like_the_preview_engines(checked_folder: Path, tmp_path: Path) -> None:
    from diffusers import StableDiffusionPipeline

    pipeline = StableDiffusionPipeline.from_pretrained(
        checked_folder, local_files_only=True, safety_checker=None
    )
    unchecked = DiffusersEngine.from_pipeline(pipeline, "tiny-sd", steps=STEPS, moderation_words=[])
    assert len(unchecked.generate(prompt="a massacre", seed=1).data) == 1
    custom = DiffusersEngine.from_pipeline(
        pipeline, "tiny-sd", steps=STEPS, moderation_words=["[fruit]", "banana"]
    )
    with pytest.raises(ContentPolicyError):
        custom.generate(prompt="a banana", seed=1)
    with pytest.raises(ConfigurationError, match="nowhere.txt"):
        DiffusersEngine(checked_folder, moderation_words=tmp_path / "nowhere.txt")
