"""Run a Stable Diffusion-family checkpoint from a local folder (the optional ``local`` extra).

:class:`DiffusersEngine` implements the Backend protocol with Hugging Face diffusers: text to
image, inpainting edits and image-to-image variations, all with the same weights (the edit and
variation pipelines are built from the loaded one, with no second load). The model loads in the
constructor, so a bad path fails at once; generation runs in the calling thread (the studio calls
from a worker thread), one call at a time per engine, reporting each denoising step through the
call's hooks and stopping between steps when the call is cancelled.

Prompts are checked against the moderation word list (:mod:`ipyimagegen.moderation`) before
anything runs. Where the checkpoint ships a safety checker (Stable Diffusion 1.x and 2.x:
``safety_checker`` and ``feature_extractor`` in the folder), it checks the uploaded image of an
edit or variation before sampling, and a flagged result is refused with the API's content policy
error instead of the black image diffusers puts in its place.
"""

from __future__ import annotations

import math
import os
import secrets
import threading
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from PIL import Image

from .. import masks
from ..api.backend import BaseBackend
from ..api.types import (
    CallHooks,
    EditRequest,
    GeneratedImage,
    GenerateRequest,
    ImageRequest,
    ImagesResponse,
    VariationRequest,
)
from ..errors import CancelledError, ConfigurationError, UnsupportedError, ValidationError
from ..imaging import open_image, read_mask, to_png
from ..models import ENDPOINTS, GENERATIONS, MODELS, ModelSpec, model_spec, parse_size
from ..moderation import IMAGE, OUTPUT, WordSource, refusal, word_list

if TYPE_CHECKING:
    import torch

MODEL_VARIABLE = "IPYIMAGEGEN_MODEL"
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")
DEFAULT_STEPS = 25
DEFAULT_GUIDANCE = 7.5
INPAINT_STRENGTH = 1.0

_DTYPE_ALIASES = {
    "fp32": "float32",
    "float": "float32",
    "fp16": "float16",
    "half": "float16",
    "bf16": "bfloat16",
}

_HOW_TO_POINT_AT_A_FOLDER = (
    "Download the model to a folder first (here, or on any machine with network access and copy it), "
    "e.g. `hf download stabilityai/sd-turbo --local-dir ./sd-turbo` (`huggingface-cli download` with "
    'older huggingface_hub), then use DiffusersEngine("./sd-turbo") or set IPYIMAGEGEN_MODEL=./sd-turbo.'
)


class SamplerDefaults(NamedTuple):
    """Denoising steps and classifier-free guidance scale a checkpoint works best with."""

    steps: int
    guidance_scale: float


def sampler_defaults(
    model_name: str, scheduler_class: str, timestep_spacing: str | None = None
) -> SamplerDefaults:
    """Few steps for distilled checkpoints (Turbo, Lightning, LCM), else 25 steps and guidance 7.5.

    A Turbo model is known by its name, or by the scheduler SD-Turbo and SDXL-Turbo ship with
    (ancestral Euler with "trailing" timesteps).
    """
    name = model_name.lower()
    turbo_scheduler = scheduler_class == "EulerAncestralDiscreteScheduler" and timestep_spacing == "trailing"
    if "turbo" in name or turbo_scheduler:
        return SamplerDefaults(steps=2, guidance_scale=0.0)
    if "lightning" in name:
        return SamplerDefaults(steps=4, guidance_scale=0.0)
    if "lcm" in name or scheduler_class == "LCMScheduler":
        return SamplerDefaults(steps=4, guidance_scale=1.0)
    return SamplerDefaults(steps=DEFAULT_STEPS, guidance_scale=DEFAULT_GUIDANCE)


def pick_device() -> str:
    """``cuda`` if there is a usable NVIDIA GPU, else ``mps`` on Apple silicon, else ``cpu``."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(device: str) -> torch.dtype:
    """bfloat16 (or float16) on CUDA, float32 elsewhere."""
    import torch

    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def parse_dtype(dtype: Any) -> torch.dtype:
    """A torch floating dtype from a dtype or a name (``"float16"``, ``"fp16"``, ``"bf16"``...)."""
    import torch

    value: Any = dtype
    if not isinstance(dtype, torch.dtype):
        name = str(dtype).lower().removeprefix("torch.")
        value = getattr(torch, _DTYPE_ALIASES.get(name, name), None)
    if not isinstance(value, torch.dtype) or not value.is_floating_point:
        raise ConfigurationError(
            f"dtype must be a floating-point torch dtype, got {dtype!r}.",
            hint='Use "float32", "float16" or "bfloat16" (or leave it unset to choose automatically).',
        )
    return value


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


# --- finding and loading the checkpoint ---------------------------------------------------------


def resolve_checkpoint(model: str | os.PathLike[str] | None) -> tuple[Path, str]:
    """The local path of ``model`` (a folder, a single file or a cached hub id) and a name for it.

    A hub id is looked up in the local Hugging Face cache only: nothing is downloaded.
    """
    if model is None:
        model = os.environ.get(MODEL_VARIABLE) or None
    if model is None:
        raise ConfigurationError(
            'No local model: pass the checkpoint folder, DiffusersEngine("DIR"), '
            f"or set {MODEL_VARIABLE}=DIR.",
            hint=_HOW_TO_POINT_AT_A_FOLDER,
        )
    path = Path(model).expanduser()
    if path.exists():
        path = path.resolve()
        return path, path.stem if path.is_file() else path.name
    repo_id = str(model)
    from huggingface_hub import snapshot_download

    try:
        cached = snapshot_download(repo_id, local_files_only=True)
    except (OSError, ValueError):  # not in the cache, or not a hub id at all
        raise ConfigurationError(
            f"{repo_id!r} is not a folder or file on this machine, nor a model in the local "
            "Hugging Face cache (models are never downloaded here).",
            hint=_HOW_TO_POINT_AT_A_FOLDER,
        ) from None
    return Path(cached), repo_id


def _is_sdxl_single_file(path: Path) -> bool:
    if path.suffix != ".safetensors":
        return False
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as checkpoint:
        names = checkpoint.keys()  # a safe_open handle is not iterable
        return any(name.startswith("conditioner.embedders.1.") for name in names)


def _dtype_option(dtype: torch.dtype) -> dict[str, Any]:
    """The dtype keyword of ``from_pretrained``: ``torch_dtype`` before diffusers 1.0, ``dtype`` after."""
    import diffusers
    from packaging.version import Version

    keyword = "dtype" if Version(diffusers.__version__) >= Version("1.0.0") else "torch_dtype"
    return {keyword: dtype}


def load_pipeline(path: Path, dtype: torch.dtype) -> Any:
    """The text-to-image pipeline of a diffusers folder or single checkpoint file, from disk only."""
    from diffusers import AutoPipelineForText2Image, StableDiffusionPipeline, StableDiffusionXLPipeline

    options = {"local_files_only": True, **_dtype_option(dtype)}
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*torch_dtype.* is deprecated", category=FutureWarning)
            if path.is_file():
                if path.suffix.lower() not in SINGLE_FILE_SUFFIXES:
                    raise ConfigurationError(
                        f"{path.name} is not a checkpoint: use a diffusers folder (with model_index.json) "
                        "or a single .safetensors or .ckpt file."
                    )
                loader = StableDiffusionXLPipeline if _is_sdxl_single_file(path) else StableDiffusionPipeline
                return loader.from_single_file(str(path), **options)
            if not (path / "model_index.json").is_file():
                raise ConfigurationError(
                    f"{path} is not a diffusers model folder: it has no model_index.json.",
                    hint="Point at the folder that `hf download REPO --local-dir DIR` made.",
                )
            return AutoPipelineForText2Image.from_pretrained(str(path), **options)
    except ConfigurationError:
        raise
    except Exception as exc:  # corrupt, incomplete or unsupported: every library fails its own way
        if path.is_file():
            hint = (
                "Check that the file is a complete Stable Diffusion (or SDXL) checkpoint. A single file "
                "needs its model's configuration files in the local Hugging Face cache; a diffusers "
                "folder does not."
            )
        else:
            hint = "Check that the download finished and the folder is a complete diffusers model."
        raise ConfigurationError(f"Could not load the model at {path}: {exc}", hint=hint) from exc


# --- sizes and masks ----------------------------------------------------------------------------


def _round_down(value: float, multiple: int) -> int:
    return max(multiple, int(value) // multiple * multiple)


def _fit_within(width: int, height: int, max_side: int, multiple: int) -> tuple[int, int]:
    """(width, height) scaled down to at most ``max_side`` a side, rounded down to ``multiple``."""
    scale = min(1.0, max_side / max(width, height))
    return _round_down(width * scale, multiple), _round_down(height * scale, multiple)


def _block_mask(regenerate: np.ndarray, block: int) -> Image.Image:
    """The mask the pipeline gets (white = repaint): every ``block``-pixel latent cell the mask touches.

    Inpainting works on latents ``block`` times smaller than the image, so repainting whole cells
    lets the edge of the painted area be remade too; the pixels outside the mask are put back after.
    """
    height, width = regenerate.shape
    cells = regenerate.reshape(height // block, block, width // block, block).any(axis=(1, 3))
    full = np.repeat(np.repeat(cells, block, axis=0), block, axis=1)
    return Image.fromarray(full.astype(np.uint8) * 255, mode="L")


def _keep_outside(generated: Image.Image, source: Image.Image, regenerate: np.ndarray) -> Image.Image:
    """``source`` with only the ``regenerate`` pixels taken from ``generated`` (same size, source's mode)."""
    new = np.asarray(generated.convert(source.mode))
    old = np.asarray(source)
    return Image.fromarray(np.where(regenerate[..., None], new, old), mode=source.mode)


# --- per-call settings --------------------------------------------------------------------------


def _positive_int(extra: dict[str, Any], key: str, default: int) -> int:
    value = extra.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValidationError(f"{key} must be a whole number of at least 1, got {value!r}.", param=key)
    return value


def _number(extra: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = extra.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValidationError(f"{key} must be a number from {low:g} to {high:g}, got {value!r}.", param=key)
    return float(value)


def _optional_text(extra: dict[str, Any], key: str) -> str | None:
    value = extra.get(key)
    if value is not None and not isinstance(value, str):
        raise ValidationError(f"{key} must be text, got {value!r}.", param=key)
    return value or None


# --- the engine ---------------------------------------------------------------------------------


class DiffusersEngine(BaseBackend):
    """A local Stable Diffusion-family model behind the Images API calls.

    ``model`` is a diffusers folder (with ``model_index.json``), a single ``.safetensors`` or
    ``.ckpt`` file, or a hub id already in the local Hugging Face cache; it defaults to the
    ``IPYIMAGEGEN_MODEL`` environment variable. Nothing is ever downloaded. The model loads here,
    on CUDA, then MPS, then the CPU (``device`` overrides), in bfloat16/float16 on CUDA and float32
    elsewhere (``dtype`` overrides).

    Every request is served by the loaded model, whatever its model name. ``steps`` and
    ``guidance_scale`` set the defaults (else chosen for the checkpoint: 2 steps and no guidance for
    Turbo models, 25 and 7.5 otherwise); a call overrides them with ``extra={"steps": ...,
    "guidance_scale": ..., "negative_prompt": ..., "strength": ...}``. Image ``i`` of a call uses
    seed ``seed + i``, so a seed gives the same image again. Edits repaint the mask's transparent
    area and keep every other pixel exactly; variations redraw the image at ``variation_strength``.

    ``moderation_words`` is the word list prompts are checked against (a file, a list of lines, or
    None for the default list; an empty one turns the check off). A checkpoint's own safety checker
    checks input and output images; leave it out of the pipeline to turn that off.
    """

    offline = False
    honours_seeds = True
    local = True

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        pipeline: Any = None,
        device: str | None = None,
        dtype: Any = None,
        steps: int | None = None,
        guidance_scale: float | None = None,
        variation_strength: float = 0.6,
        moderation_words: WordSource = None,
    ) -> None:
        """Load the checkpoint at ``model``; or, with ``pipeline``, serve that one under the name ``model``."""
        if not 0 < variation_strength <= 1:
            raise ConfigurationError(
                f"variation_strength must be above 0 and at most 1, got {variation_strength!r}."
            )
        self.moderation_words = word_list(moderation_words)  # read before the model: a bad file fails fast
        if pipeline is None:
            path, model_name = resolve_checkpoint(model)
            device = device or pick_device()
            torch_dtype = parse_dtype(dtype) if dtype is not None else pick_dtype(device)
            pipeline = load_pipeline(path, torch_dtype).to(device)
        else:
            model_name = str(model or "local-pipeline")
        pipeline.set_progress_bar_config(disable=True)
        self._pipelines: dict[str, Any] = {"text2image": pipeline}
        self._lock = threading.Lock()
        self.pipeline = pipeline
        self.model_name = f"local/{model_name}" if model_name in MODELS else model_name
        self.default_model = self.model_name
        self.device = str(pipeline.device)
        self.dtype = _dtype_name(pipeline.dtype)
        self.name = f"local model {self.model_name} ({pipeline.device.type}, {self.dtype})"
        self.vae_scale_factor = int(getattr(pipeline, "vae_scale_factor", 8))
        self.native_size = self._native_side(pipeline)
        scheduler = pipeline.scheduler
        suggested = sampler_defaults(
            self.model_name, type(scheduler).__name__, scheduler.config.get("timestep_spacing")
        )
        self.steps = steps if steps is not None else suggested.steps
        self.guidance_scale = guidance_scale if guidance_scale is not None else suggested.guidance_scale
        self.variation_strength = variation_strength

    @classmethod
    def from_pipeline(
        cls,
        pipeline: Any,
        name: str,
        *,
        steps: int | None = None,
        guidance_scale: float | None = None,
        variation_strength: float = 0.6,
        moderation_words: WordSource = None,
    ) -> DiffusersEngine:
        """An engine around a text-to-image pipeline you loaded yourself (on its device and dtype)."""
        return cls(
            name,
            pipeline=pipeline,
            steps=steps,
            guidance_scale=guidance_scale,
            variation_strength=variation_strength,
            moderation_words=moderation_words,
        )

    def _native_side(self, pipeline: Any) -> int:
        unet = getattr(pipeline, "unet", None)
        sample = unet.config.sample_size if unet is not None else getattr(pipeline, "default_sample_size", 64)
        if isinstance(sample, (list, tuple)):
            sample = max(sample)
        return int(sample) * self.vae_scale_factor

    def __repr__(self) -> str:
        return f"DiffusersEngine({self.name!r}, steps={self.steps}, guidance_scale={self.guidance_scale})"

    def models(self, endpoint: str = GENERATIONS) -> list[str]:
        """The loaded model, for every endpoint."""
        return [self.model_name] if endpoint in ENDPOINTS else []

    def spec_for(self, model: str) -> ModelSpec:
        """Sizes around the checkpoint's native resolution (the default), so the studio offers what it draws well."""
        spec = model_spec(model)
        if model != self.model_name:
            return spec
        native, block = self.native_size, self.vae_scale_factor
        wide = _round_down(native * 3 // 2, block)
        sides = sorted({max(block, _round_down(native // 2, block)), native, wide, 2 * native})
        squares = tuple(f"{side}x{side}" for side in sides)
        sizes = (*squares, f"{wide}x{native}", f"{native}x{wide}")
        return replace(spec, sizes=sizes, default_size=f"{native}x{native}")

    # -- sizes ---------------------------------------------------------------------------------

    def _requested_size(self, size: str | None) -> tuple[int, int] | None:
        """(width, height) of an explicit size; None for no size or ``auto``."""
        if size is None or size == "auto":
            return None
        width, height = parse_size(size)
        block = self.vae_scale_factor
        if width % block or height % block:
            raise ValidationError(
                f"size must be multiples of {block} for this model, got {size!r} "
                f"(try '{_round_down(width, block)}x{_round_down(height, block)}').",
                param="size",
            )
        return width, height

    def _working_size(self, width: int, height: int) -> tuple[int, int]:
        """The size to sample an input image at: multiples of the latent block, at most twice native."""
        return _fit_within(width, height, 2 * self.native_size, self.vae_scale_factor)

    # -- sampling ------------------------------------------------------------------------------

    def _pipeline(self, task: str) -> Any:
        """The text2image, inpaint or image2image pipeline, sharing the loaded weights. Call under the lock."""
        if task not in self._pipelines:
            from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting

            auto = AutoPipelineForInpainting if task == "inpaint" else AutoPipelineForImage2Image
            try:
                derived = auto.from_pipe(self._pipelines["text2image"])
            except ValueError as exc:  # diffusers has no such pipeline for this model family
                raise UnsupportedError(f"{self.model_name} cannot do {task} with diffusers: {exc}") from exc
            derived.set_progress_bar_config(disable=True)
            self._pipelines[task] = derived
        return self._pipelines[task]

    def _sample(
        self,
        task: str,
        request: ImageRequest,
        hooks: CallHooks,
        settings: dict[str, Any],
        post: Callable[[Image.Image], Image.Image] | None = None,
        **arguments: Any,
    ) -> ImagesResponse:
        """The request's ``n`` images, one pipeline call after the other (image ``i`` from seed ``seed + i``):
        each is finished by ``post``, encoded and handed over (``hooks.on_images``) as soon as it is made.

        An image the checkpoint's safety checker flags (diffusers makes it black) refuses the call.
        """
        import torch

        first_seed = request.seed if request.seed is not None else secrets.randbelow(2**31)
        data = []
        for index in range(request.n):
            hooks.check_cancelled()
            generator = torch.Generator("cpu").manual_seed(first_seed + index)
            with self._lock:
                pipeline = self._pipeline(task)
                output = pipeline(
                    num_images_per_prompt=1,
                    generator=[generator],
                    callback_on_step_end=_step_callback(hooks, index, request.n),
                    **arguments,
                )
            if any(getattr(output, "nsfw_content_detected", None) or ()):
                raise refusal(request.model, OUTPUT)
            picture = output.images[0]
            image = self._result(post(picture) if post is not None else picture, index, first_seed, settings)
            self._image_done(request, hooks, image)
            data.append(image)
        return ImagesResponse(data=data, backend=self.name, model=request.model)

    def _check_image(self, model: str, image: Image.Image) -> None:
        """Refuse an uploaded image the checkpoint's safety checker flags, before anything is sampled."""
        checker = getattr(self.pipeline, "safety_checker", None)
        extractor = getattr(self.pipeline, "feature_extractor", None)
        if checker is None or extractor is None:
            return  # the checkpoint has no safety checker (SDXL, or left out): nothing can tell
        rgb = image.convert("RGB")
        with self._lock:
            features = extractor(images=[rgb], return_tensors="pt").pixel_values
            _, flags = checker(
                images=[np.asarray(rgb, dtype=np.float32) / 255],
                clip_input=features.to(device=checker.device, dtype=checker.dtype),
            )
        if any(flags):
            raise refusal(model, IMAGE)

    def _settings(self, extra: dict[str, Any], guidance_default: float | None = None) -> dict[str, Any]:
        steps = _positive_int(extra, "steps", self.steps)
        guidance = self.guidance_scale if guidance_default is None else guidance_default
        settings: dict[str, Any] = {
            "num_inference_steps": steps,
            "guidance_scale": _number(extra, "guidance_scale", guidance, 0.0, 50.0),
        }
        negative = _optional_text(extra, "negative_prompt")
        if negative:
            settings["negative_prompt"] = negative
        return settings

    def _result(
        self, picture: Image.Image, index: int, first_seed: int, settings: dict[str, Any]
    ) -> GeneratedImage:
        """Image ``index`` of a call, as a PNG with the settings that made it."""
        metadata: dict[str, Any] = {
            "engine": "diffusers",
            "steps": settings["num_inference_steps"],
            "guidance_scale": settings["guidance_scale"],
            "seed": first_seed + index,
        }
        for key in ("strength", "negative_prompt"):
            if key in settings:
                metadata[key] = settings[key]
        return GeneratedImage(data=to_png(picture), index=index, seed=first_seed + index, metadata=metadata)

    # -- the three operations ------------------------------------------------------------------

    def _generate(self, request: GenerateRequest, hooks: CallHooks) -> ImagesResponse:
        width, height = self._requested_size(request.size) or (self.native_size, self.native_size)
        settings = self._settings(request.extra)
        return self._sample(
            "text2image",
            request,
            hooks,
            settings,
            prompt=request.prompt,
            width=width,
            height=height,
            **settings,
        )

    def _edit(self, request: EditRequest, hooks: CallHooks) -> ImagesResponse:
        source = open_image(request.images[0].data)
        self._check_image(request.model, source)
        regenerate = self._regenerate_mask(request, source)
        requested = self._requested_size(request.size)
        size = requested or source.size
        work_size = requested or self._working_size(*size)
        if source.size != size:
            source = source.resize(size, Image.Resampling.LANCZOS)
        if regenerate is None:  # no mask and nothing transparent: rework the whole image from the prompt
            return self._image_to_image(
                request,
                source,
                work_size,
                request.prompt,
                hooks,
                post=lambda picture: picture.resize(size, Image.Resampling.LANCZOS),
            )
        repaint = masks.resize(regenerate, size, rule="any")
        settings = self._settings(request.extra)
        settings["strength"] = _number(request.extra, "strength", INPAINT_STRENGTH, 0.01, 1.0)

        def keep_outside(picture: Image.Image) -> Image.Image:
            return _keep_outside(picture.resize(size, Image.Resampling.LANCZOS), source, repaint)

        return self._sample(
            "inpaint",
            request,
            hooks,
            settings,
            post=keep_outside,
            prompt=request.prompt,
            image=source.convert("RGB").resize(work_size, Image.Resampling.LANCZOS),
            mask_image=_block_mask(masks.resize(repaint, work_size, rule="any"), self.vae_scale_factor),
            width=work_size[0],
            height=work_size[1],
            **_enough_steps(settings),
        )

    def _regenerate_mask(self, request: EditRequest, source: Image.Image) -> np.ndarray | None:
        """True where to repaint: the mask's fully transparent pixels, else the image's own (None if neither)."""
        if request.mask is not None:
            regenerate = read_mask(request.mask.data, "alpha")
        elif source.mode == "RGBA" and (np.asarray(source.getchannel("A")) == 0).any():
            regenerate = np.asarray(source.getchannel("A")) == 0
        else:
            return None
        if not regenerate.any():
            raise ValidationError(
                "The mask marks nothing to repaint: make the area to change fully transparent.",
                param="mask",
            )
        return regenerate

    def _create_variation(self, request: VariationRequest, hooks: CallHooks) -> ImagesResponse:
        assert request.image is not None  # validation says so
        prompt = _optional_text(request.extra, "prompt") or ""
        if self.moderation_words is not None:
            self.moderation_words.check_prompt(prompt, request.model)
        source = open_image(request.image.data)
        self._check_image(request.model, source)
        work_size = self._requested_size(request.size) or self._working_size(*source.size)
        return self._image_to_image(request, source, work_size, prompt, hooks)

    def _image_to_image(
        self,
        request: EditRequest | VariationRequest,
        source: Image.Image,
        size: tuple[int, int],
        prompt: str,
        hooks: CallHooks,
        post: Callable[[Image.Image], Image.Image] | None = None,
    ) -> ImagesResponse:
        """Redraw ``source`` at ``size``. With no prompt to follow, guidance is off: it would change nothing."""
        settings = self._settings(request.extra, guidance_default=None if prompt else 0.0)
        settings["strength"] = _number(request.extra, "strength", self.variation_strength, 0.01, 1.0)
        return self._sample(
            "image2image",
            request,
            hooks,
            settings,
            post=post,
            prompt=prompt,
            image=source.convert("RGB").resize(size, Image.Resampling.LANCZOS),
            **_enough_steps(settings),
        )


def _enough_steps(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings for a partial denoise: at least one step must remain after ``strength`` cuts the schedule."""
    steps = max(settings["num_inference_steps"], math.ceil(1 / settings["strength"]))
    return {**settings, "num_inference_steps": steps}


def _step_callback(hooks: CallHooks, index: int = 0, count: int = 1) -> Callable[..., dict[str, Any]]:
    """The pipeline's ``callback_on_step_end`` for image ``index`` of ``count``: report the step (of all the
    call's steps), stop if the call was cancelled."""

    def on_step_end(pipeline: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        if hooks.cancelled:
            raise CancelledError()
        steps = int(getattr(pipeline, "num_timesteps", 0) or 0)
        which = f"image {index + 1} of {count}, " if count > 1 else ""
        hooks.progress(index * steps + step + 1, count * steps, f"{which}step {step + 1} of {steps}")
        return tensors

    return on_step_end
