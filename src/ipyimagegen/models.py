"""The model capability table: one place that says what each Images API model accepts.

It drives request validation in :mod:`ipyimagegen.api` and the choices the widgets offer.
A model name that is not in the table (a compatible server's own model) is allowed and
gets basic checks only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

GENERATIONS = "generations"
EDITS = "edits"
VARIATIONS = "variations"
ENDPOINTS = (GENERATIONS, EDITS, VARIATIONS)

MB = 1024 * 1024


@dataclass(frozen=True)
class ModelSpec:
    """What one model accepts, per the Images API reference."""

    name: str
    family: str  # "dall-e", "gpt-image" or "custom"
    endpoints: frozenset[str]
    sizes: tuple[str, ...]
    default_size: str
    n_max: int
    prompt_max: int
    qualities: tuple[str, ...] = ()
    default_quality: str | None = None
    styles: tuple[str, ...] = ()
    backgrounds: tuple[str, ...] = ()
    output_formats: tuple[str, ...] = ()
    output_compression: bool = False
    response_formats: tuple[str, ...] = ()
    partial_images_max: int = 0
    max_input_images: int = 1
    max_input_bytes: int = 4 * MB
    input_mime_types: tuple[str, ...] = ("image/png",)
    needs_square_png_input: bool = False
    returns_revised_prompt: bool = False
    custom_sizes: bool = False  # any WxH within the limits below is accepted
    custom_size_multiple: int = 16
    custom_size_max_edge: int = 3840
    custom_size_min_pixels: int = 655_360
    custom_size_max_ratio: float = 3.0
    notes: tuple[str, ...] = field(default=())

    def serves(self, endpoint: str) -> bool:
        return endpoint in self.endpoints

    @property
    def is_gpt_image(self) -> bool:
        return self.family == "gpt-image"


_GPT_IMAGE_SIZES = ("1024x1024", "1536x1024", "1024x1536", "auto")
_GPT_IMAGE_COMMON = dict(
    family="gpt-image",
    endpoints=frozenset({GENERATIONS, EDITS}),
    sizes=_GPT_IMAGE_SIZES,
    default_size="1024x1024",
    n_max=10,
    prompt_max=32000,
    qualities=("auto", "low", "medium", "high"),
    default_quality="auto",
    backgrounds=("auto", "transparent", "opaque"),
    output_formats=("png", "jpeg", "webp"),
    output_compression=True,
    partial_images_max=3,
    max_input_images=16,
    max_input_bytes=50 * MB,
    input_mime_types=("image/png", "image/jpeg", "image/webp"),
)

MODELS: dict[str, ModelSpec] = {
    "dall-e-2": ModelSpec(
        name="dall-e-2",
        family="dall-e",
        endpoints=frozenset({GENERATIONS, EDITS, VARIATIONS}),
        sizes=("256x256", "512x512", "1024x1024"),
        default_size="1024x1024",
        n_max=10,
        prompt_max=1000,
        qualities=("standard",),
        default_quality="standard",
        response_formats=("b64_json", "url"),
        needs_square_png_input=True,
    ),
    "dall-e-3": ModelSpec(
        name="dall-e-3",
        family="dall-e",
        endpoints=frozenset({GENERATIONS}),
        sizes=("1024x1024", "1792x1024", "1024x1792"),
        default_size="1024x1024",
        n_max=1,
        prompt_max=4000,
        qualities=("standard", "hd"),
        default_quality="standard",
        styles=("vivid", "natural"),
        response_formats=("b64_json", "url"),
        returns_revised_prompt=True,
    ),
    "gpt-image-1": ModelSpec(name="gpt-image-1", **_GPT_IMAGE_COMMON),  # type: ignore[arg-type]
    "gpt-image-1-mini": ModelSpec(name="gpt-image-1-mini", **_GPT_IMAGE_COMMON),  # type: ignore[arg-type]
    "gpt-image-1.5": ModelSpec(name="gpt-image-1.5", **_GPT_IMAGE_COMMON),  # type: ignore[arg-type]
    "gpt-image-2": ModelSpec(
        name="gpt-image-2",
        **{  # type: ignore[arg-type]
            **_GPT_IMAGE_COMMON,
            "sizes": (
                *_GPT_IMAGE_SIZES[:3],
                "2048x2048",
                "2048x1152",
                "1152x2048",
                "3840x2160",
                "2160x3840",
                "auto",
            ),
            "custom_sizes": True,
        },
    ),
}

DEFAULT_MODEL = "gpt-image-1.5"


def model_spec(name: str) -> ModelSpec:
    """The spec of a known model, or a permissive one for a model the table does not know."""
    spec = MODELS.get(name)
    if spec is not None:
        return spec
    return ModelSpec(
        name=name,
        family="custom",
        endpoints=frozenset(ENDPOINTS),
        sizes=("256x256", "512x512", "1024x1024"),
        default_size="1024x1024",
        n_max=10,
        prompt_max=32000,
        response_formats=("b64_json", "url"),
        max_input_images=16,
        max_input_bytes=50 * MB,
        input_mime_types=("image/png", "image/jpeg", "image/webp"),
    )


def models_for(endpoint: str) -> list[str]:
    """Names of the known models that serve an endpoint, in table order."""
    return [name for name, spec in MODELS.items() if spec.serves(endpoint)]


_SIZE_RE = re.compile(r"^(\d{2,5})x(\d{2,5})$")


def parse_size(size: str) -> tuple[int, int]:
    """``"1536x1024"`` → ``(1536, 1024)``; raises ValueError for anything else (``auto`` too)."""
    match = _SIZE_RE.match(size.strip()) if isinstance(size, str) else None
    if not match:
        raise ValueError(f"size must look like '1024x1024' (width x height), got {size!r}")
    return int(match.group(1)), int(match.group(2))


def size_allowed(spec: ModelSpec, size: str) -> bool:
    if size in spec.sizes:
        return True
    if spec.family == "custom":
        try:
            parse_size(size)
        except ValueError:
            return size == "auto"
        return True
    if spec.custom_sizes:
        try:
            width, height = parse_size(size)
        except ValueError:
            return False
        return (
            width % spec.custom_size_multiple == 0
            and height % spec.custom_size_multiple == 0
            and max(width, height) <= spec.custom_size_max_edge
            and width * height >= spec.custom_size_min_pixels
            and max(width, height) / min(width, height) <= spec.custom_size_max_ratio
        )
    return False
