"""The offline preview engine, and choosing the default backend from the environment."""

from __future__ import annotations

import io
import sys
import threading

import numpy as np
import pytest
from PIL import Image

from ipyimagegen import imaging
from ipyimagegen.api.backend import Backend
from ipyimagegen.api.types import CallHooks, GenerateRequest, PartialImage, Progress
from ipyimagegen.backend_choice import PREVIEW_DESCRIPTION, backend_kind, default_backend, describe_backend
from ipyimagegen.engines.preview import SOFTWARE, PreviewEngine, render_scene
from ipyimagegen.errors import CancelledError, ConfigurationError, ValidationError
from ipyimagegen.models import MODELS, live_models

PROMPT = "a white siamese cat at night under the moon"


@pytest.fixture(scope="module")
def engine() -> PreviewEngine:
    return PreviewEngine()


def rgba(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))


def grey(data: bytes | Image.Image) -> np.ndarray:
    image = data if isinstance(data, Image.Image) else Image.open(io.BytesIO(data))
    return np.asarray(image.convert("L"), dtype=np.float64).ravel()


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def scene_png(prompt: str = "a red fox in a snowy forest", size: tuple[int, int] = (320, 240)) -> bytes:
    return imaging.to_png(render_scene(prompt, size, seed=3))


# --- generations ----------------------------------------------------------------------------


def test_the_same_request_gives_the_same_bytes(engine: PreviewEngine) -> None:
    first = engine.generate(prompt=PROMPT, model="dall-e-2", size="256x256", n=2, seed=11)
    again = PreviewEngine().generate(prompt=PROMPT, model="dall-e-2", size="256x256", n=2, seed=11)
    assert [image.data for image in first] == [image.data for image in again]
    assert first[0].data != first[1].data  # each index differs
    other_seed = engine.generate(prompt=PROMPT, model="dall-e-2", size="256x256", seed=12)
    assert other_seed[0].data == first[1].data  # image i uses seed + i
    assert other_seed[0].data != first[0].data


def test_without_a_seed_the_prompt_decides(engine: PreviewEngine) -> None:
    one = engine.generate(prompt=PROMPT, model="dall-e-2", size="256x256")
    two = engine.generate(prompt=PROMPT, model="dall-e-2", size="256x256")
    other = engine.generate(prompt="a red fox", model="dall-e-2", size="256x256")
    assert one[0].data == two[0].data != other[0].data
    assert one[0].seed == two[0].seed != other[0].seed


def test_colour_words_colour_the_picture(engine: PreviewEngine) -> None:
    red = rgba(engine.generate(prompt="red red crimson fire", model="dall-e-2", size="256x256")[0].data)
    blue = rgba(engine.generate(prompt="blue navy ocean sky", model="dall-e-2", size="256x256")[0].data)
    assert red[..., 0].mean() > red[..., 2].mean() + 30
    assert blue[..., 2].mean() > blue[..., 0].mean() + 30


@pytest.mark.parametrize(
    ("model", "size", "n", "expected"),
    [
        ("dall-e-2", "256x256", 3, (256, 256)),
        ("dall-e-2", None, 1, (1024, 1024)),
        ("dall-e-3", "1792x1024", 1, (1792, 1024)),
        ("gpt-image-1", "1024x1536", 2, (1024, 1536)),
        ("gpt-image-1.5", "auto", 1, (1024, 1024)),
        ("gpt-image-2", "2048x1152", 1, (2048, 1152)),
        ("my-own-server-model", "320x200", 2, (320, 200)),
    ],
)
def test_sizes_and_counts(engine: PreviewEngine, model: str, size: str | None, n: int, expected) -> None:
    response = engine.generate(prompt=PROMPT, model=model, size=size, n=n)
    assert len(response) == n
    assert [image.size for image in response] == [expected] * n
    assert [image.index for image in response] == list(range(n))
    assert response.model == model and response.backend == "offline preview engine"


def test_output_formats(engine: PreviewEngine) -> None:
    jpeg = engine.generate(prompt=PROMPT, model="gpt-image-1", output_format="jpeg", output_compression=40)[0]
    assert jpeg.mime_type == "image/jpeg" and jpeg.data.startswith(b"\xff\xd8\xff")
    better = engine.generate(prompt=PROMPT, model="gpt-image-1", output_format="jpeg", output_compression=95)[
        0
    ]
    assert len(better.data) > len(jpeg.data)
    webp = engine.generate(prompt=PROMPT, model="gpt-image-1", output_format="webp")[0]
    assert webp.mime_type == "image/webp" and Image.open(io.BytesIO(webp.data)).format == "WEBP"


def test_transparent_background(engine: PreviewEngine) -> None:
    image = engine.generate(prompt="a logo of a fox", model="gpt-image-1", background="transparent")[0]
    pixels = rgba(image.data)
    assert image.mime_type == "image/png"
    assert (pixels[..., 3] == 0).mean() > 0.2
    opaque = rgba(engine.generate(prompt="a logo of a fox", model="gpt-image-1")[0].data)
    assert (opaque[..., 3] == 255).all()


def test_revised_prompt_like_dalle3(engine: PreviewEngine) -> None:
    image = engine.generate(prompt="a lighthouse in a storm", model="dall-e-3")[0]
    assert image.revised_prompt and image.revised_prompt.startswith("a lighthouse in a storm, ")
    assert image.prompt == image.revised_prompt
    assert (
        engine.generate(prompt="a lighthouse", model="gpt-image-1", size="1024x1024")[0].revised_prompt
        is None
    )


def test_validation_errors_come_before_drawing(engine: PreviewEngine) -> None:
    with pytest.raises(
        ValidationError, match="dall-e-3 makes one image per request: n must be 1, got 2"
    ) as caught:
        engine.generate(prompt=PROMPT, model="dall-e-3", n=2)
    assert caught.value.param == "n"
    with pytest.raises(ValidationError) as caught:
        engine.generate(prompt=PROMPT, model="dall-e-2", size="300x300")
    assert caught.value.param == "size"
    with pytest.raises(ValidationError, match="prompt is empty"):
        engine.generate(prompt="  ", model="dall-e-2")


def test_the_offline_label_in_metadata_and_file(engine: PreviewEngine) -> None:
    image = engine.generate(prompt=PROMPT, model="dall-e-2", size="256x256", seed=5)[0]
    assert image.metadata["engine"] == "preview" and image.metadata["seed"] == 5 == image.seed
    assert image.metadata["backend"] == "offline preview engine" and image.metadata["model"] == "dall-e-2"
    assert Image.open(io.BytesIO(image.data)).text["Software"] == SOFTWARE
    jpeg = engine.generate(prompt=PROMPT, model="gpt-image-1", output_format="jpeg")[0]
    assert Image.open(io.BytesIO(jpeg.data)).getexif()[0x0131] == SOFTWARE


def test_every_model_is_offered_and_unknown_ones_accepted(engine: PreviewEngine) -> None:
    assert engine.models() == [*live_models("generations"), "dall-e-3", "dall-e-2"]
    assert set(engine.models()) <= set(MODELS) and "gpt-image-1" not in engine.models()
    assert engine.models("variations") == ["dall-e-2"]
    assert engine.offline is True
    assert isinstance(engine, Backend)
    assert len(engine.create_variation(image=scene_png(), model="someone-elses-model", size="256x256")) == 1


def test_default_model_gives_way_to_one_that_takes_the_size(engine: PreviewEngine) -> None:
    assert engine.generate(prompt=PROMPT, size="256x256")[0].request.model == "dall-e-2"
    assert engine.generate(prompt=PROMPT, size="1536x1024").model == engine.default_model


# --- streaming, progress, cancelling --------------------------------------------------------


def test_streamed_partial_images(engine: PreviewEngine) -> None:
    partials: list[PartialImage] = []
    response = engine.generate(
        prompt=PROMPT,
        model="gpt-image-1",
        size="1024x1024",
        n=2,
        partial_images=3,
        on_partial=partials.append,
    )
    assert [(p.index, p.partial_index) for p in partials] == [(i, k) for i in range(2) for k in range(3)]
    final = grey(response[0].data)
    errors = [np.abs(grey(p.data) - final).mean() for p in partials[:3]]
    assert errors[0] > errors[1] > errors[2] > 0  # each partial is closer to the finished image
    assert all(Image.open(io.BytesIO(p.data)).size == (1024, 1024) for p in partials)
    assert engine.supports_streaming("gpt-image-1") and not engine.supports_streaming("dall-e-2")


def test_progress_after_each_image(engine: PreviewEngine) -> None:
    seen: list[Progress] = []
    engine.generate(prompt=PROMPT, model="dall-e-2", size="256x256", n=3, on_progress=seen.append)
    assert [(p.done, p.total) for p in seen] == [(1, 3), (2, 3), (3, 3)]


def test_cancelling_between_images(engine: PreviewEngine) -> None:
    cancel = threading.Event()
    seen: list[int] = []

    def stop_after_first(progress: Progress) -> None:
        seen.append(progress.done)
        cancel.set()

    request = GenerateRequest(prompt=PROMPT, model="dall-e-2", size="256x256", n=5)
    with pytest.raises(CancelledError):
        engine.run(request, CallHooks(on_progress=stop_after_first, cancel=cancel))
    assert seen == [1]


# --- edits ----------------------------------------------------------------------------------


def test_edit_changes_only_the_masked_pixels(engine: PreviewEngine) -> None:
    source = scene_png()
    regenerate = np.zeros((240, 320), bool)
    regenerate[60:160, 100:260] = True
    response = engine.edit(image=source, mask=regenerate, prompt="a blue bird", model="gpt-image-1", n=2)
    before = rgba(source)
    for image in response:
        after = rgba(image.data)
        assert after.shape == before.shape
        assert np.array_equal(after[~regenerate], before[~regenerate])
        assert (after[regenerate] != before[regenerate]).any(axis=-1).mean() > 0.9
        assert (after[regenerate][:, 3] == 255).all()
    assert response[0].data != response[1].data


def test_dalle2_edit_without_mask_uses_the_transparent_area(engine: PreviewEngine) -> None:
    picture = np.asarray(render_scene("a garden", (256, 256), seed=1).convert("RGBA")).copy()
    picture[100:150, 50:200, 3] = 0
    response = engine.edit(image=picture, prompt="a pond", model="dall-e-2", size="256x256")
    after = rgba(response[0].data)
    hole = picture[..., 3] == 0
    assert np.array_equal(after[~hole], picture[~hole])
    assert (after[hole][:, 3] == 255).all()


def test_dalle2_edit_needs_a_mask_or_transparency(engine: PreviewEngine) -> None:
    with pytest.raises(ValidationError, match="has none") as caught:
        engine.edit(image=scene_png(size=(256, 256)), prompt="a pond", model="dall-e-2", size="256x256")
    assert "mask" in caught.value.hint


def test_gpt_image_edit_without_mask_reworks_the_whole_picture(engine: PreviewEngine) -> None:
    source = scene_png()
    after = engine.edit(image=source, prompt="in winter", model="gpt-image-1")[0]
    assert after.size == (320, 240)
    assert correlation(grey(source), grey(after.data)) > 0.5
    assert (rgba(after.data) != rgba(source)).any(axis=-1).mean() > 0.5


def test_edit_mask_painted_on_the_original_follows_the_crop(engine: PreviewEngine) -> None:
    source = scene_png(size=(300, 200))
    regenerate = np.zeros((200, 300), bool)
    regenerate[50:150, 120:200] = True
    response = engine.edit(image=source, mask=regenerate, prompt="a pond", model="dall-e-2", size="256x256")
    prepared = response.request.images[0]
    after, before = rgba(response[0].data), rgba(prepared.data)
    kept = imaging.read_mask(response.request.mask.data, "alpha") == 0
    assert after.shape == (256, 256, 4)
    assert np.array_equal(after[kept], before[kept]) and not kept.all()


def test_edit_to_another_size_fills_the_new_border(engine: PreviewEngine) -> None:
    response = engine.edit(
        image=scene_png(size=(256, 256)), prompt="wider", model="gpt-image-1", size="1536x1024"
    )
    after = rgba(response[0].data)
    assert after.shape == (1024, 1536, 4) and (after[..., 3] == 255).all()


# --- variations -----------------------------------------------------------------------------


def test_variations_differ_and_keep_the_layout(engine: PreviewEngine) -> None:
    source = scene_png(size=(256, 256))
    unrelated = scene_png("a yellow desert with a city skyline", size=(256, 256))
    response = engine.create_variation(image=source, n=3, size="256x256", seed=2)
    assert len({image.data for image in response}) == 3
    for image in response:
        assert image.size == (256, 256)
        assert correlation(grey(source), grey(image.data)) > 0.5
        assert (
            correlation(grey(source), grey(image.data)) > correlation(grey(unrelated), grey(image.data)) + 0.2
        )
    again = engine.create_variation(image=source, n=3, size="256x256", seed=2)
    assert [image.data for image in again] == [image.data for image in response]


def test_variation_size_follows_the_request(engine: PreviewEngine) -> None:
    response = engine.create_variation(image=scene_png(size=(256, 256)), size="512x512")
    assert response[0].size == (512, 512)


# --- the default backend --------------------------------------------------------------------


def test_default_backend_is_the_preview_engine_offline() -> None:
    backend = default_backend()
    assert isinstance(backend, PreviewEngine) and backend_kind() == "preview"
    response = default_backend().generate(prompt="a white siamese cat", n=2, size="256x256")
    assert [image.size for image in response] == [(256, 256), (256, 256)]
    assert describe_backend(backend) == PREVIEW_DESCRIPTION
    assert "OPENAI_API_KEY" in PREVIEW_DESCRIPTION and "OPENAI_BASE_URL" in PREVIEW_DESCRIPTION


def test_environment_picks_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    from ipyimagegen.api.client import AzureOpenAIClient, OpenAIClient

    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    workshop = default_backend()
    assert type(workshop) is OpenAIClient and backend_kind() == "openai"
    assert describe_backend(workshop) == f"Using {workshop.name}"
    monkeypatch.delenv("OPENAI_BASE_URL")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-value")
    client = default_backend()
    assert type(client) is OpenAIClient
    assert "sk-test-secret-value" not in describe_backend(client)
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://example.openai.azure.com")
    monkeypatch.setenv("AZURE_OPENAI_DEPLOYMENT", "gpt-image-1")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-secret")
    assert isinstance(default_backend(), AzureOpenAIClient) and backend_kind() == "azure"


@pytest.mark.parametrize("missing", ["ipyimagegen.engines.diffusers_engine", "torch"])
def test_local_model_without_the_local_extra(monkeypatch: pytest.MonkeyPatch, tmp_path, missing: str) -> None:
    (tmp_path / "model_index.json").write_text("{}")
    monkeypatch.setenv("IPYIMAGEGEN_MODEL", str(tmp_path))
    monkeypatch.setitem(sys.modules, missing, None)  # importing it fails, as when it is not installed
    assert backend_kind() == "local"
    with pytest.raises(ConfigurationError, match=f"IPYIMAGEGEN_MODEL is set.*{missing}") as caught:
        default_backend()
    assert "ipyimagegen[local]" in caught.value.hint
