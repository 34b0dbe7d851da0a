"""The Edit tab's picture: the image loaded, prepared for the model's input (what is sent), and shown
in the mask painter, with what was painted carried along when a new choice frames it anew."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import masks
from ..errors import ImageInputError
from ..imaging import PreparedEdit, prepare_edit_input
from ..models import ModelSpec
from .image_input import LoadedImage
from .mask_painter import MaskPainter

NO_IMAGE = "No image yet."
NO_IMAGE_HINT = "Upload an image, click Edit on a result, or call use_image(...)."


@dataclass(frozen=True)
class EditChoices:
    """The choices that decide what an edit sends: the model, the output size, the square fit and
    where the picture sits in an outpainting frame (None: no frame)."""

    spec: ModelSpec
    size: str | None
    fit: str
    outpaint: masks.Placement | None = None

    def key(self) -> tuple[Any, ...]:
        """Equal for two choices that send the same file for a picture."""
        spec = self.spec
        square = spec.needs_square_png_input
        return (
            square,
            self.size if square else None,
            self.fit if square else None,
            spec.max_input_bytes,
            spec.input_mime_types,
            self.outpaint,
        )

    def prepare(self, loaded: LoadedImage) -> PreparedEdit:
        return prepare_edit_input(loaded.source, loaded.image, self.spec, self.size, self.fit, self.outpaint)


class EditPicture:
    """The picture being edited (:attr:`loaded`), as sent (:attr:`prepared`) and shown in ``painter``."""

    def __init__(self, painter: MaskPainter) -> None:
        self.painter = painter
        self.loaded: LoadedImage | None = None
        self.prepared: PreparedEdit | None = None
        self._prepared_for: tuple[Any, ...] | None = None  # the picture and choices `prepared` was made of

    def load(self, loaded: LoadedImage, choices: EditChoices) -> None:
        """Prepare ``loaded`` and show it with an empty mask; when it cannot be prepared this raises
        and the picture shown stays."""
        prepared = choices.prepare(loaded)
        self.loaded = loaded
        self._show(prepared, choices, carry_mask=False)

    def refresh(self, choices: EditChoices) -> None:
        """Prepare the picture again when ``choices`` change what is sent (raises when it cannot be)."""
        if self.loaded is None or self._key(choices) == self._prepared_for:
            return
        self._show(choices.prepare(self.loaded), choices, carry_mask=True)

    def use_mask(self, mask: np.ndarray) -> None:
        """Use ``mask`` made for the picture shown or for the loaded one (then it is framed as the
        picture was); raises :class:`ImageInputError` when it fits neither."""
        if self.prepared is None or self.loaded is None:
            raise ImageInputError(NO_IMAGE, hint="Choose the image first, then its mask.")
        prepared = self.prepared
        shown = prepared.picture.size
        original = self.loaded.image.size
        size = masks.size_of(mask)
        if size == shown:
            self.painter.set_mask(mask)
        elif size == original:
            framed = prepared.framing.mask(mask)
            if prepared.border is not None:
                framed |= prepared.border
            self.painter.set_mask(framed)
        else:
            raise ImageInputError(
                f"The mask is {size[0]}x{size[1]} but the image is {shown[0]}x{shown[1]}"
                + (f" ({original[0]}x{original[1]} before preparing)" if original != shown else "")
                + ": they must be the same size.",
                hint="Use a mask made for this image, or paint one here.",
            )

    def _key(self, choices: EditChoices) -> tuple[Any, ...]:
        return (id(self.loaded), *choices.key())

    def _show(self, prepared: PreparedEdit, choices: EditChoices, carry_mask: bool) -> None:
        """Show ``prepared``; what was painted follows the picture through the new framing."""
        before = self.prepared if carry_mask else None
        old_mask = self.painter.mask if before is not None else None
        self.prepared = prepared
        self._prepared_for = self._key(choices)
        self.painter.set_image(prepared.picture)
        mask = None
        if before is not None and old_mask is not None and old_mask.any():
            mask = prepared.framing.mask(before.framing.unframe(old_mask))
        if prepared.border is not None:
            mask = prepared.border if mask is None else mask | prepared.border
        if mask is not None and mask.any():
            self.painter.set_mask(mask)
        self.painter.set_placement(prepared.framing.source_box() if prepared.border is not None else None)
