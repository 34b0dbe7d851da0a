"""The model catalogue: what each Images API model accepts, when it lives and what it costs.

The facts live in ``catalogue.json`` beside this module, read once: one entry per model,
with its family, snapshots, endpoints, sizes, options, lifecycle and prices. The catalogue
drives validation in :mod:`ipyimagegen.api`, the server's checks and the choices the widgets
offer; a backend narrows it to what it serves.

A name the catalogue does not know follows its family's rules when the name says the family
(``gpt-image-*`` and ``chatgpt-image-*``: base64 only, streaming allowed); any other name
gets basic rules with bounded sizes (a compatible server's own model).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from functools import cache
from importlib import resources
from typing import Any

GENERATIONS = "generations"
EDITS = "edits"
VARIATIONS = "variations"
ENDPOINTS = (GENERATIONS, EDITS, VARIATIONS)

MB = 1024 * 1024

GPT_IMAGE = "gpt-image"
DALL_E = "dall-e"
CUSTOM = "custom"

_NOT_INHERITED = ("snapshots", "lifecycle", "title", "refused", "extends")
_GPT_IMAGE_NAME = re.compile(r"^(gpt-image|chatgpt-image)-", re.IGNORECASE)


def today() -> date:
    """Today in UTC: the day lifecycles are measured against."""
    return datetime.now(timezone.utc).date()


@dataclass(frozen=True)
class Lifecycle:
    """When a model came, when it was deprecated, when it shuts down, and what replaces it."""

    released: date | None = None
    deprecated: date | None = None
    shutdown: date | None = None
    replacements: tuple[str, ...] = ()

    def is_shut_down(self, on: date | None = None) -> bool:
        """True from the shutdown date on (a model is gone on the day it shuts down)."""
        return self.shutdown is not None and self.shutdown <= (on or today())


@dataclass(frozen=True)
class Prices:
    """USD prices: per million tokens (GPT image models) or per image by quality and size (DALL-E)."""

    per_million_tokens: dict[str, float] = field(default_factory=dict)
    per_image: dict[str, float] = field(default_factory=dict)
    read_on: str = ""


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
    moderations: tuple[str, ...] = ()
    input_fidelities: tuple[str, ...] = ()
    complexities: tuple[str, ...] = ()
    markup: bool = False
    partial_images_max: int = 0
    max_input_images: int = 1
    max_input_bytes: int = 4 * MB
    input_mime_types: tuple[str, ...] = ("image/png",)
    needs_square_png_input: bool = False
    mask_guidance_only: bool = False
    returns_revised_prompt: bool = False
    custom_sizes: bool = False  # any WxH within the limits below is accepted
    custom_size_multiple: int = 16
    custom_size_min_edge: int = 16
    custom_size_max_edge: int = 3840
    custom_size_min_pixels: int = 655_360
    custom_size_max_pixels: int = 8_294_400
    custom_size_max_ratio: float = 3.0
    title: str = ""
    snapshot_of: str | None = None
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    prices: Prices | None = None
    refused: dict[str, str] = field(default_factory=dict)  # "param=value" -> why the model refuses it
    known: bool = True  # False: made from family rules for a name the catalogue does not know
    notes: tuple[str, ...] = field(default=())

    def serves(self, endpoint: str) -> bool:
        return endpoint in self.endpoints

    @property
    def is_gpt_image(self) -> bool:
        return self.family == GPT_IMAGE

    @property
    def streams(self) -> bool:
        return self.partial_images_max > 0

    def size_rule(self) -> str:
        """The custom-size rule in words, for error messages."""
        if not self.custom_sizes:
            return ""
        multiple = (
            f"both sides multiples of {self.custom_size_multiple}, " if self.custom_size_multiple > 1 else ""
        )
        return (
            f"{multiple}long edge at most {self.custom_size_max_edge}, ratio within "
            f"1:{self.custom_size_max_ratio:g} to {self.custom_size_max_ratio:g}:1, "
            f"{self.custom_size_min_pixels:,} to {self.custom_size_max_pixels:,} pixels"
        )


# -- reading the catalogue ---------------------------------------------------------------------


@cache
def catalogue() -> dict[str, Any]:
    """The catalogue file as data (read once)."""
    text = resources.files(__package__).joinpath("catalogue.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _lifecycle(entry: dict[str, Any] | None) -> Lifecycle:
    entry = entry or {}
    return Lifecycle(
        released=_date(entry.get("released")),
        deprecated=_date(entry.get("deprecated")),
        shutdown=_date(entry.get("shutdown")),
        replacements=tuple(entry.get("replacements", ())),
    )


def _resolved_entry(name: str, models: dict[str, Any], families: dict[str, Any]) -> dict[str, Any]:
    """A model's entry with its family's defaults and the model it extends filled in."""
    entry = models[name]
    parent = entry.get("extends")
    if parent:
        base = {k: v for k, v in _resolved_entry(parent, models, families).items() if k not in _NOT_INHERITED}
    else:
        base = dict(families[entry["family"]])
    return {**base, **entry}


_TUPLES = (
    "sizes",
    "qualities",
    "styles",
    "backgrounds",
    "output_formats",
    "response_formats",
    "moderations",
    "input_fidelities",
    "complexities",
    "input_mime_types",
)
_SCALARS = (
    "default_quality",
    "output_compression",
    "markup",
    "partial_images_max",
    "max_input_images",
    "needs_square_png_input",
    "mask_guidance_only",
    "returns_revised_prompt",
    "custom_sizes",
    "custom_size_multiple",
    "custom_size_min_edge",
    "custom_size_max_edge",
    "custom_size_min_pixels",
    "custom_size_max_pixels",
    "custom_size_max_ratio",
    "title",
)


def _spec(
    name: str, entry: dict[str, Any], *, snapshot_of: str | None = None, known: bool = True
) -> ModelSpec:
    prices = entry.get("prices")
    options: dict[str, Any] = {key: tuple(entry[key]) for key in _TUPLES if key in entry}
    options.update({key: entry[key] for key in _SCALARS if key in entry})
    if "max_input_bytes_mb" in entry:
        options["max_input_bytes"] = int(entry["max_input_bytes_mb"] * MB)
    sizes = options.pop("sizes", ("1024x1024",))
    return ModelSpec(
        name=name,
        family=entry["family"],
        endpoints=frozenset(entry.get("endpoints", (GENERATIONS,))),
        sizes=sizes,
        default_size=entry.get("default_size", sizes[0]),
        n_max=int(entry.get("n_max", 1)),
        prompt_max=int(entry.get("prompt_max", 32000)),
        snapshot_of=snapshot_of,
        lifecycle=_lifecycle(entry.get("lifecycle")),
        prices=Prices(
            per_million_tokens=dict(prices.get("per_million_tokens", {})),
            per_image=dict(prices.get("per_image", {})),
            read_on=str(catalogue().get("prices_read", "")),
        )
        if prices
        else None,
        refused=dict(entry.get("refused", {})),
        known=known,
        **options,
    )


@cache
def _all_specs() -> dict[str, ModelSpec]:
    data = catalogue()
    models, families = data["models"], data["families"]
    specs: dict[str, ModelSpec] = {}
    for name in models:
        entry = _resolved_entry(name, models, families)
        specs[name] = _spec(name, entry)
        for snapshot in entry.get("snapshots", ()):
            specs[snapshot] = _spec(snapshot, entry, snapshot_of=name)
    return specs


MODELS: dict[str, ModelSpec] = dict(_all_specs())
"""Every model the catalogue knows, live or retired, snapshots included, in catalogue order."""

DEFAULT_MODEL: str = catalogue()["recommended"]["openai"]
"""The model OpenAI's backends use when none is named: the catalogue's recommendation."""


def recommended_model(kind: str) -> str:
    """The catalogue's recommended model for a kind of backend (``openai``, ``azure``, ``preview``...)."""
    return str(catalogue()["recommended"].get(kind, DEFAULT_MODEL))


def family_of(name: str) -> str:
    """The family a model name belongs to, for known and unknown names alike."""
    spec = MODELS.get(name)
    if spec is not None:
        return spec.family
    return GPT_IMAGE if _GPT_IMAGE_NAME.match(name) else CUSTOM


@cache
def _unknown_spec(name: str) -> ModelSpec:
    families = catalogue()["families"]
    family = family_of(name)
    entry = dict(families[family], family=family)
    if (
        family == GPT_IMAGE
    ):  # an unknown GPT image model: the family's rules, with every size rule it might take
        newest = _resolved_entry(recommended_model("openai"), catalogue()["models"], families)
        for key in ("sizes", "qualities", "complexities", "custom_sizes", "markup"):
            entry[key] = newest.get(key, entry.get(key))
        for key in (k for k in newest if k.startswith("custom_size_")):
            entry[key] = newest[key]
        entry["backgrounds"] = families[GPT_IMAGE]["backgrounds"]
        entry["output_formats"] = newest.get("output_formats", entry["output_formats"])
    return _spec(name, entry, known=False)


def model_spec(name: str) -> ModelSpec:
    """The spec of a known model, or one made from its family's rules for a name the catalogue does not know."""
    spec = MODELS.get(name)
    return spec if spec is not None else _unknown_spec(name)


def models_for(endpoint: str) -> list[str]:
    """Names of the catalogued models (not snapshots) that serve an endpoint, live or retired, in catalogue order."""
    return [name for name, spec in MODELS.items() if spec.serves(endpoint) and spec.snapshot_of is None]


def live_models(endpoint: str, on: date | None = None) -> list[str]:
    """The catalogued models (not snapshots) that serve an endpoint and are not shut down ``on`` (today)."""
    return [name for name in models_for(endpoint) if not MODELS[name].lifecycle.is_shut_down(on)]


def is_image_model_name(name: str) -> bool:
    """Whether a name from a model list (``GET /v1/models``) is an Images API model."""
    return name in MODELS or bool(_GPT_IMAGE_NAME.match(name)) or name.startswith("dall-e-")


# -- sizes -------------------------------------------------------------------------------------

_SIZE_RE = re.compile(r"^([1-9]\d{0,4})x([1-9]\d{0,4})$")


def parse_size(size: str) -> tuple[int, int]:
    """``"1536x1024"`` → ``(1536, 1024)``; raises ValueError for anything else (``auto`` too)."""
    match = _SIZE_RE.match(size.strip()) if isinstance(size, str) else None
    if not match:
        raise ValueError(f"size must look like '1024x1024' (width x height), got {size!r}")
    return int(match.group(1)), int(match.group(2))


def largest_output(spec: ModelSpec) -> tuple[int, int]:
    """The most pixels and the longest edge of any image ``spec`` makes."""
    fixed = [parse_size(size) for size in spec.sizes if size != "auto"]
    pixels = max((w * h for w, h in fixed), default=0)
    edge = max((max(w, h) for w, h in fixed), default=0)
    if spec.custom_sizes:
        pixels, edge = max(pixels, spec.custom_size_max_pixels), max(edge, spec.custom_size_max_edge)
    return pixels, edge


def size_for_aspect(spec: ModelSpec, source: tuple[int, int], current: str | None = None) -> str | None:
    """The model's fixed size closest in shape to a ``source``-sized picture: ``current`` when it has
    that shape already, else the smallest of that shape that holds the picture, else the largest;
    None when the model has no fixed size."""
    fixed = [(size, *parse_size(size)) for size in spec.sizes if size != "auto" and "x" in size]
    if not fixed or source[0] <= 0 or source[1] <= 0:
        return None
    shape = math.log(source[0] / source[1])

    def misfit(entry: tuple[str, int, int]) -> float:
        return round(abs(math.log(entry[1] / entry[2]) - shape), 3)

    best = min(misfit(entry) for entry in fixed)
    kept = next((entry for entry in fixed if entry[0] == current), None)
    if kept is not None and misfit(kept) == best:
        return kept[0]
    closest = sorted((e for e in fixed if misfit(e) == best), key=lambda e: e[1] * e[2])
    holding = [e for e in closest if e[1] >= source[0] and e[2] >= source[1]]
    return (holding[0] if holding else closest[-1])[0]


def auto_size(spec: ModelSpec, source: tuple[int, int], max_pixels: int | None = None) -> tuple[int, int]:
    """The size of an edit or variation of a ``source``-sized picture when the size is left to the model:
    the source's own, unless that is more than the model (or ``max_pixels``) makes; then the source's
    shape scaled down into the model's sizes."""
    most_pixels, longest_edge = largest_output(spec)
    if max_pixels is not None:
        most_pixels = min(most_pixels, max_pixels)
    width, height = source
    if width * height <= most_pixels and max(width, height) <= longest_edge:
        return source
    if not spec.custom_sizes:
        fixed = [parse_size(size) for size in spec.sizes if size != "auto"]
        fitting = [(w, h) for w, h in fixed if w * h <= most_pixels] or fixed
        shape = math.log(width / height)
        return min(fitting, key=lambda wh: (abs(math.log(wh[0] / wh[1]) - shape), -wh[0] * wh[1]))
    factor = min(math.sqrt(most_pixels / (width * height)), longest_edge / max(width, height))
    step = spec.custom_size_multiple
    least = max(step, spec.custom_size_min_edge)
    return (
        max(least, int(width * factor) // step * step),
        max(least, int(height * factor) // step * step),
    )


def size_allowed(spec: ModelSpec, size: str) -> bool:
    """Whether ``spec`` takes ``size``: one of its sizes, or within its custom-size rule."""
    if size in spec.sizes:
        return True
    if spec.family == CUSTOM and size == "auto":
        return True
    if not spec.custom_sizes:
        return False
    try:
        width, height = parse_size(size)
    except ValueError:
        return False
    return (
        width % spec.custom_size_multiple == 0
        and height % spec.custom_size_multiple == 0
        and min(width, height) >= spec.custom_size_min_edge
        and max(width, height) <= spec.custom_size_max_edge
        and spec.custom_size_min_pixels <= width * height <= spec.custom_size_max_pixels
        and max(width, height) / min(width, height) <= spec.custom_size_max_ratio
    )


# -- the model a call means when it names none ---------------------------------------------------

UNNAMED_MODEL: str = recommended_model("unnamed")
"""What a call that names no model means where it is served: the original Images API's model."""

_GPT_IMAGE_PARAMS = (
    "background",
    "output_format",
    "output_compression",
    "moderation",
    "complexity",
    "input_fidelity",
    "frame_count",
    "frame_duration_ms",
    "svg",
    "partial_images",
    "markup",
    "stream",
)
"""Parameters that only the GPT image models take: naming one means a GPT image model."""


@dataclass(frozen=True)
class ModelChoice:
    """The model a call that named none resolved to, and why (said in every error about the call)."""

    model: str
    reason: str


def effective_size(model: str, size: str | None) -> str | None:
    """The size a call gets: a DALL-E model's default (1024x1024) where none is asked, as the API did;
    the size asked for otherwise (None: the model or engine decides)."""
    spec = model_spec(model)
    return spec.default_size if size is None and spec.family == DALL_E else size


def classic_signal(endpoint: str, given: dict[str, Any]) -> str | None:
    """Why a call's parameters mean DALL-E 2 (a variation, a 256 or 512 square, ``response_format``), or None."""
    if endpoint == VARIATIONS:
        return "variations are DALL-E 2's"
    size = given.get("size")
    if isinstance(size, str) and size.strip() in ("256x256", "512x512"):
        return f"{size} is a DALL-E 2 size"
    if given.get("response_format") is not None:
        return "response_format is a DALL-E parameter"
    return None


def gpt_image_signal(endpoint: str, given: dict[str, Any]) -> str | None:
    """Why a call's parameters mean a GPT image model (one only they take), or None.

    ``given`` holds the parameters the call set (None and False count as unset), ``images`` the
    number of input images, ``mask`` an edit's mask (an edit without one reworks the whole
    picture, which DALL-E 2 does not do).
    """
    for name in _GPT_IMAGE_PARAMS:
        value = given.get(name)
        if value is not None and value is not False and not (name == "partial_images" and value == 0):
            return f"{name} is a GPT image parameter"
    classic, modern = model_spec(UNNAMED_MODEL), model_spec(DEFAULT_MODEL)
    quality = given.get("quality")
    if quality not in classic.qualities and quality in modern.qualities:
        return f"quality {quality!r} is a GPT image quality"
    size = given.get("size")
    if isinstance(size, str) and not size_allowed(classic, size) and size_allowed(modern, size):
        return f"{size} is a GPT image size"
    if (given.get("images") or 0) > 1:
        return "several input images are for GPT image models"
    if endpoint == EDITS and given.get("mask") is None:
        return "an edit without a mask reworks the whole picture, as GPT image models do"
    return None
