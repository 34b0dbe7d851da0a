"""Request and response types shared by every backend.

A call is one request object in (:class:`GenerateRequest`, :class:`EditRequest`,
:class:`VariationRequest`) and one :class:`ImagesResponse` out. Image bytes never
appear in reprs.
"""

from __future__ import annotations

import base64
import io
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from ..errors import CancelledError
from ..media import EXTENSION_BY_MIME, MIME_BY_FORMAT, InputImage, sniff_mime_type
from ..models import DEFAULT_MODEL, EDITS, GENERATIONS, VARIATIONS
from .config import positive_seconds

__all__ = [  # the media types are the bottom layer's; they are exported here for the API's users
    "EXTENSION_BY_MIME",
    "MIME_BY_FORMAT",
    "CallHooks",
    "EditRequest",
    "GeneratedImage",
    "GenerateRequest",
    "ImageRequest",
    "ImagesResponse",
    "InputImage",
    "PartialImage",
    "Progress",
    "VariationRequest",
    "sniff_mime_type",
]

if TYPE_CHECKING:
    from PIL import Image as PILImage

    from ..pricing import CostEstimate

Quality = Literal["auto", "low", "medium", "high", "xhigh", "max", "standard", "hd"]
Background = Literal["auto", "transparent", "opaque"]
OutputFormat = Literal["png", "jpeg", "webp", "gif", "svg"]
Moderation = Literal["auto", "low"]
InputFidelity = Literal["high", "low"]
Complexity = Literal["low", "medium", "high"]
Style = Literal["vivid", "natural"]
ResponseFormat = Literal["url", "b64_json"]
"""The values the Images API takes today; which model takes which is the catalogue's to say."""


@dataclass
class _RequestBase:
    endpoint: ClassVar[str]
    model: str = DEFAULT_MODEL
    n: int = 1
    size: str | None = None
    response_format: str | None = None
    user: str | None = None  # deprecated by the API: safety_identifier takes precedence
    safety_identifier: str | None = None
    seed: int | None = None  # honoured by the local engines; not an OpenAI parameter
    extra: dict[str, Any] = field(default_factory=dict)  # extra body fields for compatible servers
    model_reason: str | None = field(default=None, repr=False)
    """Why ``model`` was chosen when the call named none ("no model given; 256x256 is a DALL-E 2 size,
    so dall-e-2"): every error about the call says it. Not an API parameter."""

    def options(self) -> dict[str, Any]:
        """The non-empty API parameters of this request (no images), for display and metadata."""
        out: dict[str, Any] = {}
        for name in (f.name for f in fields(self)):  # fields() leaves out the ClassVar endpoint
            if name in ("images", "image", "mask", "markup", "extra", "model_reason"):
                continue
            value = getattr(self, name)
            if value is not None and value != {}:
                out[name] = value
        out.update(self.extra)
        return out


@dataclass
class GenerateRequest(_RequestBase):
    """``POST /images/generations``."""

    endpoint: ClassVar[str] = GENERATIONS
    prompt: str = ""
    quality: str | None = None
    style: str | None = None
    background: str | None = None
    output_format: str | None = None
    output_compression: int | None = None
    moderation: str | None = None
    complexity: str | None = None
    frame_count: int | None = None
    frame_duration_ms: int | None = None
    svg: dict[str, Any] | None = None
    partial_images: int | None = None


@dataclass
class EditRequest(_RequestBase):
    """``POST /images/edits``: the mask (alpha 0 = regenerate) applies to the first image.

    ``markup`` (GPT Image 2.5 and later) is a transparent PNG drawn over the first image to
    guide the edit; it cannot be combined with a mask.
    """

    endpoint: ClassVar[str] = EDITS
    images: list[InputImage] = field(default_factory=list)
    prompt: str = ""
    mask: InputImage | None = None
    markup: InputImage | None = None
    quality: str | None = None
    background: str | None = None
    output_format: str | None = None
    output_compression: int | None = None
    input_fidelity: str | None = None
    complexity: str | None = None
    frame_count: int | None = None
    frame_duration_ms: int | None = None
    svg: dict[str, Any] | None = None
    partial_images: int | None = None


@dataclass
class VariationRequest(_RequestBase):
    """``POST /images/variations`` (dall-e-2 semantics)."""

    endpoint: ClassVar[str] = VARIATIONS
    model: str = "dall-e-2"
    image: InputImage | None = None


ImageRequest = GenerateRequest | EditRequest | VariationRequest


@dataclass
class GeneratedImage:
    """One result image: always bytes (URL results are downloaded at once)."""

    data: bytes = field(repr=False)
    mime_type: str = "image/png"
    index: int = 0
    revised_prompt: str | None = None
    seed: int | None = None
    url: str | None = field(default=None, repr=False)  # a data: URL can be megabytes long
    request: ImageRequest | None = field(default=None, repr=False)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def prompt(self) -> str | None:
        """The prompt the image was made from (the revised one where the model rewrote it)."""
        if self.revised_prompt:
            return self.revised_prompt
        return getattr(self.request, "prompt", None)

    @property
    def b64_json(self) -> str:
        return base64.b64encode(self.data).decode("ascii")

    def data_url(self) -> str:
        """The image as a ``data:`` URL (what an in-process engine answers for ``response_format="url"``)."""
        return f"data:{self.mime_type};base64,{self.b64_json}"

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), read from the image header (an SVG's from the size it asks to be shown at)."""
        from ..imaging import image_size

        return image_size(self.data)

    def to_pil(self) -> PILImage.Image:
        from PIL import Image

        image = Image.open(io.BytesIO(self.data))
        image.load()
        return image

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_bytes(self.data)
        return path

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {self.mime_type: self.data, "text/plain": repr(self)}


@dataclass
class ImagesResponse:
    """The images one request made, with the request and how long it took."""

    data: list[GeneratedImage]
    created: int = field(default_factory=lambda: int(time.time()))
    request: ImageRequest | None = field(default=None, repr=False)
    backend: str = ""
    model: str | None = None
    elapsed_s: float = 0.0
    request_id: str | None = None
    usage: dict[str, Any] | None = None
    cost: CostEstimate | None = None  # estimated from the catalogue's prices and the usage
    errors: list[Exception] = field(default_factory=list, repr=False)  # failed parts of a parallel call

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self) -> Iterator[GeneratedImage]:
        return iter(self.data)

    def __getitem__(self, index: int) -> GeneratedImage:
        return self.data[index]


@dataclass(frozen=True)
class PartialImage:
    """A progressive preview of image ``index`` while it is being made (streaming)."""

    index: int
    partial_index: int
    data: bytes = field(repr=False)
    mime_type: str = "image/png"


@dataclass(frozen=True)
class Progress:
    """How far a call has come: ``done`` of ``total`` units (steps, images)."""

    done: int
    total: int
    message: str = ""

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


@dataclass
class CallHooks:
    """What a caller (the studio's worker) can pass along with a request."""

    on_partial: Callable[[PartialImage], None] | None = None
    on_progress: Callable[[Progress], None] | None = None
    cancel: threading.Event | None = None
    timeout: float | None = None
    on_images: Callable[[int, list[GeneratedImage]], None] | None = None
    """Images finished before the whole call is: ``(index of the first, images)``. An engine that makes a
    batch image by image hands over each image as it is made (:meth:`image_done`); a parallel call each
    part as it arrives (:func:`~ipyimagegen.api.parallel.run_parallel`). The call's response holds the
    same objects again."""
    on_late: Callable[[ImagesResponse], None] | None = None
    """A part of a cancelled parallel call that was already sent and arrives anyway (it is paid for)."""

    def __post_init__(self) -> None:
        if self.timeout is not None:
            positive_seconds(self.timeout)

    @property
    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def check_cancelled(self) -> None:
        if self.cancelled:
            raise CancelledError()

    def partial(self, image: PartialImage) -> None:
        if self.on_partial is not None and not self.cancelled:
            self.on_partial(image)

    def images(self, first: int, images: list[GeneratedImage]) -> None:
        if self.on_images is not None and not self.cancelled:
            self.on_images(first, images)

    def image_done(self, image: GeneratedImage) -> None:
        """Hand over image ``image.index`` of the call as soon as it is made (to :attr:`on_images`)."""
        self.images(image.index, [image])

    def progress(self, done: int, total: int, message: str = "") -> None:
        if self.on_progress is not None and not self.cancelled:
            self.on_progress(Progress(done, total, message))
