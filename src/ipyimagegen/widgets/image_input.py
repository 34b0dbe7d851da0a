"""Picking an input image: a file upload that checks what it reads, and sources from Python.

:class:`ImageUpload` is a file button (:class:`~.file_picker.FilePicker`): each chosen file
crosses once, in pieces (a file over the limit is refused from its size, unread), is decoded at
once (so a non-image or damaged file is refused with a message before it can replace anything),
and is never kept in the widget's state, so it is not saved in the notebook; the button says
which file it took. :func:`load_image` turns any source a tab accepts (a path, bytes, PIL image, array,
a result's :class:`GeneratedImage`, a gallery item) into a :class:`LoadedImage`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as widgets
import numpy as np
from ipywidgets import CallbackDispatcher
from PIL import Image

from ..api.types import GeneratedImage, InputImage
from ..errors import ImageInputError, describe_error
from ..imaging import FITS, encoded_bytes, open_image, raster_file, source_name
from .file_picker import FilePicker, size_text
from .problem_line import ProblemLine

MAX_FILE_BYTES = 50 * 1024 * 1024
"""The largest file an upload reads (the gpt-image models' own input limit)."""

ACCEPT = ".png,.jpg,.jpeg,.webp,image/png,image/jpeg,image/webp"
"""The file types the upload button offers."""
TOO_LARGE_HINT = "Scale it down or save it as JPEG or WebP, then upload it again."


@dataclass
class LoadedImage:
    """An input image, decoded: the picture, its file bytes when it came as a file, and where from."""

    image: Image.Image = field(repr=False)
    name: str = "image"
    data: bytes | None = field(default=None, repr=False)
    parent_id: str | None = None

    @property
    def source(self) -> Any:
        """What to prepare for a model: the original file where there is one (kept as it is if it fits)."""
        if self.data is not None:
            return InputImage.from_bytes(self.data, self.name)
        return self.image


def _gallery_id(source: Any) -> str | None:
    if isinstance(source, GeneratedImage):
        value = source.metadata.get("gallery_id")
        return value if isinstance(value, str) else None
    value = getattr(source, "id", None)
    return value if isinstance(value, str) and hasattr(source, "input_ids") else None


def check_file_size(data: bytes, name: str, max_bytes: int = MAX_FILE_BYTES) -> None:
    """Raise :class:`ImageInputError` when a file is larger than ``max_bytes``."""
    if len(data) > max_bytes:
        raise ImageInputError(
            f"{name} is {size_text(len(data))}; the largest image file accepted is {size_text(max_bytes)}.",
            hint=TOO_LARGE_HINT,
        )


def load_image(source: Any, *, max_bytes: int = MAX_FILE_BYTES) -> LoadedImage:
    """Decode any accepted source; raises :class:`ImageInputError` with what to do when it is not usable.

    Accepted: a path, bytes, a binary file object, a PIL image, a numpy array, an
    :class:`InputImage`, a result's :class:`GeneratedImage` or a gallery item (anything with
    image bytes in ``.data``), or an upload entry. An SVG drawing (a result, a saved one) is
    drawn at its own size and taken as a PNG of it.
    """
    if source is None:
        raise ImageInputError("No image given.", hint="Pass a path, bytes, a PIL image or an array.")
    parent_id = _gallery_id(source)
    if isinstance(source, GeneratedImage) or (hasattr(source, "input_ids") and hasattr(source, "data")):
        name = f"{getattr(source, 'id', None) or 'result'}"
        source = source.data
    else:
        name = source_name(source)
    if isinstance(source, (Image.Image, np.ndarray)):
        return LoadedImage(open_image(source), name=name, parent_id=parent_id)
    data = encoded_bytes(source)
    check_file_size(data, name, max_bytes)
    data, _mime = raster_file(data)  # an SVG drawing becomes a PNG of it, or a clear error
    return LoadedImage(open_image(data), name=name, data=data, parent_id=parent_id)


class ImageUpload(widgets.HBox):
    """An upload button for one image (or several, ``multiple=True``) that never keeps the bytes.

    ``on_image(callback)`` gets a :class:`LoadedImage` for each file that decodes;
    ``on_error(callback)`` gets a message (plain text) for a file that does not. Either way the
    upload widget's value is cleared once read.
    """

    def __init__(
        self,
        description: str = "Upload image",
        *,
        multiple: bool = False,
        max_bytes: int = MAX_FILE_BYTES,
        css_class: str = "ipyimagegen-upload",
        drop_area: str = "",
    ) -> None:
        self.max_bytes = max_bytes
        self._image_handlers = CallbackDispatcher()
        self._error_handlers = CallbackDispatcher()
        self.upload = FilePicker(
            accept=ACCEPT,
            multiple=multiple,
            description=description,
            drop_area=drop_area,
            max_bytes=max_bytes,
            too_large_hint=TOO_LARGE_HINT,
        )
        self.upload.add_class(css_class)
        self.upload.on_files(self._uploaded)
        self.upload.on_error(self._refused)
        self.problem = ProblemLine()
        """Why the last file could not be used, beside the button that chose it."""
        super().__init__(
            [self.upload, self.problem], layout=widgets.Layout(align_items="center", flex_flow="row wrap")
        )

    def receive(self, entries: list[dict[str, Any]]) -> None:
        """Files as the page sends them (what a choice in the browser's file chooser does)."""
        self.upload.receive(entries)

    def on_image(self, callback: Callable[[LoadedImage], Any], remove: bool = False) -> None:
        self._image_handlers.register_callback(callback, remove=remove)

    def on_error(self, callback: Callable[[str], Any], remove: bool = False) -> None:
        self._error_handlers.register_callback(callback, remove=remove)

    def show_problem(self, message: str) -> None:
        """Say beside the button why a file was not used ("" clears it)."""
        self.problem.say(message)

    def forget(self) -> None:
        """The picture came from elsewhere (a result, a drop): the button names no file any more."""
        self.upload.note = ""
        self.show_problem("")

    def _refused(self, message: str) -> None:
        self.show_problem(message)
        self._error_handlers(message)

    def _uploaded(self, entries: list[dict[str, Any]]) -> None:
        taken: list[str] = []
        refused = list(self.upload.refused)  # over the limit: never sent
        for entry in entries:
            name = str(entry.get("name") or "upload") if isinstance(entry, dict) else "upload"
            try:
                loaded = load_image(entry, max_bytes=self.max_bytes)
            except ImageInputError as exc:
                refused.append(name)
                self._refused(f"{name}: {describe_error(exc)}")
                continue
            loaded.name = name
            taken.append(name)
            self.show_problem("")
            self._image_handlers(loaded)
        words = [", ".join(taken)] if taken else []
        if refused:
            words.append(f"not used: {', '.join(refused)}")
        self.upload.note = "; ".join(words)


class SquareFit:
    """How a tab makes a non-square image square for dall-e-2: a Crop/Pad toggle and ``fit``."""

    fit_control: widgets.ToggleButtons

    @staticmethod
    def fit_toggle() -> widgets.ToggleButtons:
        toggle = widgets.ToggleButtons(
            options=[("Crop to square", "crop"), ("Pad to square", "pad")],
            tooltips=["Keep the centre square", "Keep everything; the padding is transparent"],
            style={"button_width": "auto"},
        )
        toggle.add_class("ipyimagegen-fit")
        return toggle

    @property
    def fit(self) -> str:
        return self.fit_control.value

    @fit.setter
    def fit(self, value: str) -> None:
        if value not in FITS:
            raise ValueError(f"fit must be 'crop' or 'pad', got {value!r}")
        self.fit_control.value = value
