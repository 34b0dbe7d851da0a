"""The Edit tab's reference images: extra input images a gpt-image model draws from (the mask
applies to the first image only), with their upload button, list and Remove button."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
from ipywidgets import CallbackDispatcher

from ..api.types import InputImage
from ..errors import ImageInputError, describe_error
from ..imaging import prepare_input_image
from ..models import ModelSpec
from .image_input import ImageUpload, LoadedImage


class EditReferences:
    """The reference images for the model of :meth:`for_model`. ``on_change(callback)`` is told when
    images are added or removed, ``on_error(callback)`` gets what was wrong with an upload."""

    def __init__(self, spec: ModelSpec, max_bytes: int) -> None:
        self.upload = ImageUpload(
            "Add reference images",
            multiple=True,
            max_bytes=max_bytes,
            css_class="ipyimagegen-reference-upload",
        )
        self.label = widgets.HTML()
        self.clear_button = widgets.Button(
            description="Remove references", icon="times", layout=widgets.Layout(width="auto")
        )
        self.clear_button.on_click(lambda _b: self.clear())
        self._images: list[LoadedImage] = []
        self._changed = CallbackDispatcher()
        self._error = CallbackDispatcher()
        self.upload.on_image(self._uploaded)
        self.upload.on_error(lambda message: self._error(message))
        self.spec = spec
        self._show()

    @property
    def images(self) -> list[LoadedImage]:
        return list(self._images)

    def on_change(self, callback: Callable[[], Any], remove: bool = False) -> None:
        self._changed.register_callback(callback, remove=remove)

    def on_error(self, callback: Callable[[str], Any], remove: bool = False) -> None:
        self._error.register_callback(callback, remove=remove)

    def for_model(self, spec: ModelSpec) -> None:
        """The model the images go to (how many it takes)."""
        self.spec = spec
        self._show()

    def add(self, loaded: LoadedImage) -> None:
        """Add one; raises :class:`ImageInputError` when the model takes no more."""
        spec = self.spec
        if spec.max_input_images - 1 - len(self._images) <= 0:
            raise ImageInputError(
                f"{spec.name} takes at most {spec.max_input_images} input image(s) in all.",
                hint="Remove references first, or choose a gpt-image model."
                if spec.max_input_images == 1
                else "Remove references first.",
            )
        self._images.append(loaded)
        self._show()
        self._changed()

    def clear(self) -> None:
        self._images.clear()
        self._show()
        self._changed()

    def inputs(self, size: str | None, fit: str) -> list[InputImage]:
        """The images as they are sent (none when the model takes one image)."""
        if self.spec.max_input_images <= 1:
            return []
        return [prepare_input_image(ref.source, self.spec, size=size, fit=fit) for ref in self._images]

    def summary(self) -> str:
        """What the Edit tab's summary line says of them ("" when there are none)."""
        count = len(self._images)
        if not count:
            return ""
        if self.spec.max_input_images > 1:
            return f"; plus {count} reference image(s)"
        return f"; the {count} reference image(s) are left out: {self.spec.name} takes one image"

    def _uploaded(self, loaded: LoadedImage) -> None:
        try:
            self.add(loaded)
        except ImageInputError as exc:
            self._error(describe_error(exc))

    def _show(self) -> None:
        count = len(self._images)
        if count == 0:
            text = f"none (up to {self.spec.max_input_images - 1} more images to draw from)"
        else:
            text = f"{count}: {', '.join(ref.name for ref in self._images)}"
        self.label.value = f"<span>{html.escape(text, quote=True)}</span>"
        self.clear_button.layout.display = None if count else "none"
