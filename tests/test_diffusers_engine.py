"""DiffusersEngine on a tiny randomly initialised Stable Diffusion pipeline, loaded from disk.

The pipeline is built and saved in process, then loaded back through the engine's own loader,
so loading, sampling, inpainting and image-to-image all run for real, offline, in seconds.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import io
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ipyimagegen.api.types import CallHooks, GenerateRequest, InputImage, Progress, VariationRequest
from ipyimagegen.engines.diffusers_engine import DiffusersEngine, parse_dtype, sampler_defaults
from ipyimagegen.errors import CancelledError, ConfigurationError, ValidationError
from local_models import require_torch
from tiny_pipeline import build_tiny_pipeline

torch = require_torch()

STEPS = 2

# diffusers' schedulers call np.array on torch tensors, which numpy 2 warns about.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy:DeprecationWarning"
)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(2)
    return build_tiny_pipeline(tmp_path_factory.mktemp("models") / "tiny-sd")


@pytest.fixture(scope="session")
def engine(tiny_model_dir: Path) -> DiffusersEngine:
    return DiffusersEngine(tiny_model_dir, steps=STEPS)


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def gradient_png(width: int, height: int, mode: str = "RGB") -> bytes:
    """A picture with different values at every pixel, so any change shows."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), (x * 7 + y * 13) % 256], -1)
    array = rgb.astype(np.uint8)
    if mode == "RGBA":
        array = np.dstack([array, np.full((height, width), 255, np.uint8)])
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def disc_mask(width: int, height: int, cx: float, cy: float, radius: float) -> np.ndarray:
    """True inside a disc: an edge that does not follow the 8-pixel latent grid."""
    y, x = np.mgrid[0:height, 0:width]
    return (x - cx) ** 2 + (y - cy) ** 2 <= radius**2


# --- loading -------------------------------------------------------------------------------------


def test_loads_the_folder_and_names_the_model_after_it(engine: DiffusersEngine) -> None:
    assert engine.name == "local model tiny-sd (cpu, float32)"
    assert (
        engine.models("generations") == engine.models("edits") == engine.models("variations") == ["tiny-sd"]
    )
    assert engine.default_model == "tiny-sd"
    assert engine.offline is False
    assert engine.local is True
    assert engine.native_size == 64
    assert (engine.steps, engine.guidance_scale) == (STEPS, 7.5)


def test_an_uncached_hub_id_fails_at_once_without_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the engine tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    with pytest.raises(ConfigurationError) as caught:
        DiffusersEngine("ipyimagegen-tests/no-such-model")
    assert "ipyimagegen-tests/no-such-model" in str(caught.value)
    assert "hf download" in caught.value.hint
    assert "--local-dir" in caught.value.hint
    assert "IPYIMAGEGEN_MODEL" in caught.value.hint


def test_no_model_says_how_to_choose_one() -> None:
    with pytest.raises(ConfigurationError, match="IPYIMAGEGEN_MODEL"):
        DiffusersEngine()


def test_the_environment_variable_names_the_model(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IPYIMAGEGEN_MODEL", str(tiny_model_dir))
    assert DiffusersEngine(steps=1).models() == ["tiny-sd"]


def test_a_folder_that_is_not_a_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="model_index.json"):
        DiffusersEngine(tmp_path)


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "model.safetensors"
    bogus.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigurationError, match="Could not load"):
        DiffusersEngine(bogus)


def test_dtype_names() -> None:
    assert parse_dtype("bf16") is torch.bfloat16
    assert parse_dtype("float16") is torch.float16
    assert parse_dtype(torch.float32) is torch.float32
    with pytest.raises(ConfigurationError, match="floating-point"):
        parse_dtype("int8")


def test_distilled_checkpoints_get_few_steps_and_no_guidance(engine: DiffusersEngine) -> None:
    assert sampler_defaults("sd-turbo", "EulerAncestralDiscreteScheduler") == (2, 0.0)
    assert sampler_defaults("my-model", "EulerAncestralDiscreteScheduler", "trailing") == (2, 0.0)
    assert sampler_defaults("my-model", "EulerAncestralDiscreteScheduler", "leading") == (25, 7.5)
    assert sampler_defaults("dreamshaper", "LCMScheduler") == (4, 1.0)
    assert sampler_defaults("stable-diffusion-v1-5", "PNDMScheduler") == (25, 7.5)
    turbo = DiffusersEngine.from_pipeline(engine.pipeline, "my-sd-turbo")
    assert (turbo.steps, turbo.guidance_scale) == (2, 0.0)
    image = turbo.generate(prompt="a cat", seed=1)[0]
    assert image.metadata["steps"] == 2 and image.metadata["guidance_scale"] == 0.0


# --- generations ---------------------------------------------------------------------------------


def test_generate_makes_n_pngs_of_the_requested_size(engine: DiffusersEngine) -> None:
    response = engine.generate(prompt="a cat", n=2, size="64x64", seed=1)
    assert len(response) == 2
    for index, image in enumerate(response):
        assert image.data.startswith(b"\x89PNG")
        assert image.size == (64, 64)
        assert image.seed == 1 + index
        assert image.metadata["engine"] == "diffusers"
        assert image.metadata["seed"] == 1 + index
        assert image.metadata["steps"] == STEPS
        assert image.metadata["guidance_scale"] == 7.5
    assert response.model == "tiny-sd"
    assert response.backend == engine.name


def test_width_and_height_are_not_swapped(engine: DiffusersEngine) -> None:
    assert engine.generate(prompt="a cat", size="128x64", seed=1)[0].size == (128, 64)


def test_auto_size_is_the_model_native_size(engine: DiffusersEngine) -> None:
    assert engine.generate(prompt="a cat", size="auto", seed=1)[0].size == (64, 64)
    assert engine.generate(prompt="a cat", seed=1)[0].size == (64, 64)


def test_a_seed_gives_the_same_image_again(engine: DiffusersEngine) -> None:
    first = engine.generate(prompt="a cat", seed=7)[0]
    again = engine.generate(prompt="a cat", seed=7)[0]
    other = engine.generate(prompt="a cat", seed=8)[0]
    assert first.data == again.data
    assert other.data != first.data


def test_without_a_seed_each_image_records_the_seed_that_remakes_it(engine: DiffusersEngine) -> None:
    image = engine.generate(prompt="a cat")[0]
    assert isinstance(image.seed, int)
    assert engine.generate(prompt="a cat", seed=image.seed)[0].data == image.data


def test_image_i_of_a_batch_is_the_image_of_seed_plus_i(engine: DiffusersEngine) -> None:
    batch = engine.generate(prompt="a cat", n=2, seed=20)
    alone = engine.generate(prompt="a cat", n=1, seed=21)[0]
    # Batched and single sampling may differ in rounding only.
    difference = np.abs(pixels(batch[1].data).astype(int) - pixels(alone.data).astype(int))
    assert difference.max() <= 2
    assert np.abs(pixels(batch[0].data).astype(int) - pixels(alone.data).astype(int)).max() > 20


def test_size_must_be_a_multiple_of_eight(engine: DiffusersEngine) -> None:
    progress: list[Progress] = []
    with pytest.raises(ValidationError) as caught:
        engine.generate(prompt="a cat", size="60x64", on_progress=progress.append)
    assert caught.value.param == "size"
    assert "56x64" in str(caught.value)
    assert progress == []


def test_steps_guidance_and_negative_prompt_per_call(engine: DiffusersEngine) -> None:
    progress: list[Progress] = []
    extra = {"steps": 3, "guidance_scale": 3.0, "negative_prompt": "blurry"}
    image = engine.generate(prompt="a cat", seed=1, extra=extra, on_progress=progress.append)[0]
    assert image.metadata["steps"] == 3
    assert image.metadata["guidance_scale"] == 3.0
    assert image.metadata["negative_prompt"] == "blurry"
    assert [(p.done, p.total) for p in progress] == [(1, 3), (2, 3), (3, 3)]
    assert image.data != engine.generate(prompt="a cat", seed=1)[0].data


@pytest.mark.parametrize(
    "extra",
    [{"steps": 0}, {"steps": "many"}, {"guidance_scale": -1}, {"negative_prompt": 3}, {"strength": 0}],
)
def test_bad_per_call_settings_are_refused(engine: DiffusersEngine, extra: dict[str, object]) -> None:
    with pytest.raises(ValidationError) as caught:
        engine.create_variation(image=gradient_png(64, 64), extra=extra)
    assert caught.value.param == next(iter(extra))


def test_progress_reports_every_step(engine: DiffusersEngine) -> None:
    progress: list[Progress] = []
    engine.generate(prompt="a cat", seed=1, on_progress=progress.append)
    assert [(p.done, p.total) for p in progress] == [(1, STEPS), (2, STEPS)]


def test_cancel_stops_between_steps(engine: DiffusersEngine) -> None:
    cancel = threading.Event()
    progress: list[Progress] = []

    def on_progress(step: Progress) -> None:
        progress.append(step)
        cancel.set()

    request = GenerateRequest(prompt="a cat", model="tiny-sd", seed=1, extra={"steps": 4})
    with pytest.raises(CancelledError):
        engine.run(request, CallHooks(on_progress=on_progress, cancel=cancel))
    assert [(p.done, p.total) for p in progress] == [(1, 4)]
    assert len(engine.generate(prompt="a cat", seed=1)) == 1  # the engine is free again


def test_two_threads_share_the_engine_safely(engine: DiffusersEngine) -> None:
    expected = {seed: engine.generate(prompt="a cat", seed=seed)[0].data for seed in (31, 32)}
    results: dict[int, bytes] = {}
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            results[seed] = engine.generate(prompt="a cat", seed=seed)[0].data
        except BaseException as exc:  # pragma: no cover - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in expected]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results == expected


# --- edits ---------------------------------------------------------------------------------------


def test_edit_keeps_every_pixel_outside_the_mask(engine: DiffusersEngine) -> None:
    source = gradient_png(64, 64)
    regenerate = disc_mask(64, 64, 30.5, 27.5, 13)
    response = engine.edit(image=source, mask=regenerate, prompt="a red ball", n=2, seed=3)
    assert len(response) == 2
    before = pixels(source)
    for image in response:
        after = pixels(image.data)
        assert after.shape == before.shape
        assert np.array_equal(after[~regenerate], before[~regenerate])
        assert (after[regenerate] != before[regenerate]).any(axis=-1).mean() > 0.9
        assert image.metadata["strength"] == 1.0
    assert response[0].data != response[1].data


def test_edit_of_an_odd_sized_image_keeps_its_size_and_pixels(engine: DiffusersEngine) -> None:
    source = gradient_png(61, 45)
    regenerate = disc_mask(61, 45, 20, 20, 9)
    image = engine.edit(image=source, mask=regenerate, prompt="a red ball", seed=3)[0]
    before, after = pixels(source), pixels(image.data)
    assert image.size == (61, 45)
    assert np.array_equal(after[~regenerate], before[~regenerate])
    assert (after[regenerate] != before[regenerate]).any(axis=-1).mean() > 0.9


def test_edit_without_a_mask_repaints_the_transparent_pixels(engine: DiffusersEngine) -> None:
    rgba = pixels(gradient_png(64, 64, "RGBA")).copy()
    regenerate = disc_mask(64, 64, 40, 20, 10)
    rgba[regenerate, 3] = 0
    buffer = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buffer, format="PNG")
    image = engine.edit(image=buffer.getvalue(), prompt="a red ball", seed=3)[0]
    after = pixels(image.data)
    assert np.array_equal(after[~regenerate], rgba[~regenerate])
    assert (after[regenerate, 3] == 255).all()


def test_edit_with_a_mask_that_marks_nothing_is_refused(engine: DiffusersEngine) -> None:
    with pytest.raises(ValidationError, match="nothing to repaint"):
        engine.edit(image=gradient_png(64, 64), mask=np.zeros((64, 64), bool), prompt="a red ball")


def test_edit_without_any_mask_reworks_the_whole_image(engine: DiffusersEngine) -> None:
    source = gradient_png(64, 64)
    image = engine.edit(image=source, prompt="a red ball", seed=3)[0]
    assert image.size == (64, 64)
    assert image.metadata["strength"] == engine.variation_strength
    assert not np.array_equal(pixels(image.data), pixels(source))


# --- variations ----------------------------------------------------------------------------------


def test_variations_have_the_count_and_size_asked_for(engine: DiffusersEngine) -> None:
    progress: list[Progress] = []
    response = engine.create_variation(image=gradient_png(64, 64), n=3, seed=5, on_progress=progress.append)
    assert len(response) == 3
    assert {image.size for image in response} == {(64, 64)}
    assert [image.seed for image in response] == [5, 6, 7]
    assert response[0].metadata["strength"] == 0.6
    assert response[0].metadata["guidance_scale"] == 0.0  # no prompt to follow
    assert len({image.data for image in response}) == 3
    assert progress and progress[-1].done == progress[-1].total >= 1
    resized = engine.create_variation(image=gradient_png(64, 64), size="128x96", seed=5)[0]
    assert resized.size == (128, 96)


def test_variations_follow_a_seed_and_the_strength(engine: DiffusersEngine) -> None:
    source = gradient_png(64, 64)
    request = VariationRequest(image=InputImage.from_bytes(source), model="tiny-sd", seed=9)
    first, again = engine.run(request)[0], engine.run(request)[0]
    assert first.data == again.data
    steps: dict[float, list[Progress]] = {0.2: [], 1.0: []}
    made = {
        strength: engine.create_variation(
            image=source, seed=9, extra={"strength": strength}, on_progress=steps[strength].append
        )[0]
        for strength in steps
    }
    assert made[0.2].metadata["strength"] == 0.2
    assert made[0.2].data != made[1.0].data
    # A low strength runs only the last steps of the schedule (at least one).
    assert [p.total for p in steps[0.2]] == [1]
    assert [p.total for p in steps[1.0]] == [STEPS] * STEPS


# --- in the studio and behind the server ---------------------------------------------------------


def test_the_studio_offers_the_checkpoint_sizes_and_generates(engine: DiffusersEngine) -> None:
    from ipyimagegen.widgets.studio import Studio

    studio = Studio(engine)
    params = studio.generate_tab.params
    assert params.model == engine.model_name
    assert params.size == "64x64"  # the checkpoint's native size, not 1024x1024
    assert "1024x1024" not in params.spec.sizes
    studio.generate_tab.prompt_box.textarea.value = "a red ball on grass"
    params.n = 2
    studio.generate_tab.controls.run_button.click()
    assert studio.runner.wait(60)
    tiles = studio.grid.tiles
    assert len(tiles) == 2 and all(tile.is_filled for tile in tiles)
    assert {image.size for image in studio.grid.images} == {(64, 64)}


def test_the_studio_edits_and_varies_with_the_checkpoint(engine: DiffusersEngine, tmp_path: Path) -> None:
    from ipyimagegen.widgets.studio import Studio

    studio = Studio(engine, gallery=tmp_path / "gallery")
    source = gradient_png(64, 64)
    studio.edit_tab.use_image(source)
    studio.edit_tab.painter.set_mask(disc_mask(64, 64, 32, 32, 12))
    studio.edit_tab.prompt_box.value = "a red ball"
    assert studio.edit_tab.edit() is not None
    assert studio.runner.wait(60)
    (edited,) = studio.grid.images
    inside = disc_mask(64, 64, 32, 32, 16)
    assert edited.size == (64, 64)
    assert np.array_equal(pixels(edited.data)[~inside][:, :3], pixels(source)[~inside][:, :3])
    studio.grid.act(studio.grid.tiles[0], "variations")  # "make variations" of the edit
    studio.variations_tab.params.n = 2
    assert studio.variations_tab.make_variations() is not None
    assert studio.runner.wait(60)
    assert len(studio.grid.images) == 3, studio.variations_tab.status.value
    assert studio.gallery.get(studio.grid.images[0].metadata["gallery_id"]).parent_id is not None


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # the SDK marks create_variation so
def test_the_server_serves_the_checkpoint_to_the_official_client(engine: DiffusersEngine) -> None:
    import base64

    import openai

    from ipyimagegen.server.app import make_app
    from ipyimagegen.server.runner import ServerThread

    with ServerThread(make_app(engine)).start() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
        made = client.images.generate(model=engine.model_name, prompt="a red ball", size="64x64", n=1)
        varied = client.images.create_variation(
            model=engine.model_name, image=("ball.png", gradient_png(64, 64), "image/png"), n=2, size="64x64"
        )
    assert Image.open(io.BytesIO(base64.b64decode(made.data[0].b64_json))).size == (64, 64)
    assert len(varied.data) == 2


def test_the_guides_call_without_a_model_gets_a_link_from_a_local_model_behind_serve(
    engine: DiffusersEngine,
) -> None:
    import openai
    import requests

    from ipyimagegen.server import ServerThread, make_app

    assert engine.choose_model("generations", {"size": "64x64"}).model == engine.model_name
    with ServerThread(make_app(engine)) as running:
        sdk = openai.OpenAI(base_url=running.base_url, api_key="local", max_retries=0)
        answer = sdk.images.generate(prompt="a white siamese cat", n=1, size="64x64")
        assert answer.data[0].b64_json is None and answer.data[0].url
        fetched = requests.get(answer.data[0].url, timeout=10)
        named = sdk.images.generate(prompt="a white siamese cat", model=engine.model_name, size="64x64")
    assert fetched.status_code == 200
    assert Image.open(io.BytesIO(fetched.content)).size == (64, 64)
    assert named.data[0].b64_json  # a call naming the local model answers base64, as compatible servers do
