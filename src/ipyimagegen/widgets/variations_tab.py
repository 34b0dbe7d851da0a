"""The Variations tab: images like an input image, shown in the studio's grid.

Where the backend serves ``/images/variations`` (DALL-E 2 semantics: the preview engine, a
workshop server, a local model) the tab makes real variations. Where no model does (OpenAI
today) the current edit model remakes the whole picture from a prompt that keeps subject and
composition and varies the rest, with the user's own words added; the tab says so, and so does
every result's metadata (``variation_method``).

The image comes from an upload, from Python (:meth:`VariationsTab.use_image`) or from a
result's "Variations". It is prepared for the model at once (a square PNG under 4 MB, cropped
or padded) and a thumbnail and a line show what will be sent. A backend that makes no
variations says so here instead of failing later.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets

from ..api.backend import Backend, variation_prompt
from ..api.types import EditRequest, InputImage, VariationRequest
from ..errors import ImageInputError, ValidationError, describe_error
from ..gallery import GalleryWriter
from ..imaging import image_size, prepare_input_image, thumbnail
from ..models import EDITS, VARIATIONS
from ..session import Job, JobRunner
from .edit_tab import NO_IMAGE, NO_IMAGE_HINT
from .image_input import MAX_FILE_BYTES, ImageUpload, LoadedImage, SquareFit, load_image, size_text
from .images_tab import ImagesTab
from .job_controls import JobControls
from .params_panel import LABEL_WIDTH, ParamsPanel
from .result_grid import ResultGrid

PREVIEW_SIDE_PX = 192


class VariationsTab(ImagesTab, SquareFit):
    """Make variations of an image. ``on_result(callback)`` gets each response shown."""

    def __init__(
        self,
        backend: Backend,
        runner: JobRunner,
        grid: ResultGrid,
        *,
        gallery: GalleryWriter | None = None,
        max_workers: int = 4,
        max_file_bytes: int = MAX_FILE_BYTES,
    ) -> None:
        self._connect(backend, runner, grid, gallery, max_workers)
        self._loaded: LoadedImage | None = None
        self._prepared: InputImage | None = None
        self._quiet = False  # True while the tab itself changes the size
        real = list(backend.models(VARIATIONS))
        self.by_edit = not real and bool(backend.models(EDITS))
        """True where no model serves variations: they are made as edits of the whole picture."""
        self.offered = real or list(backend.models(EDITS))

        self.upload = ImageUpload(
            "Upload image",
            max_bytes=max_file_bytes,
            css_class="ipyimagegen-variations-upload",
            drop_area=".ipyimagegen-variations-tab",
        )
        self.fit_control = self.fit_toggle()
        self.preview: widgets.Image | None = None  # made when there is an image to show
        self.preview_slot = widgets.Box()
        self.summary = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.summary.add_class("ipyimagegen-variations-summary")
        self.params = ParamsPanel(backend, endpoint=EDITS if self.by_edit else VARIATIONS)
        self.words = widgets.Text(
            placeholder="Words to add (optional), e.g. in autumn colours",
            layout=widgets.Layout(width="100%", display=None if self.by_edit else "none"),
        )
        self.words.add_class("ipyimagegen-variations-words")
        self.method_note = widgets.HTML(layout=widgets.Layout(display=None if self.by_edit else "none"))
        self.method_note.add_class("ipyimagegen-variations-method")
        self.controls = JobControls(
            runner, run_label="Make variations", run_class="ipyimagegen-variations-run"
        )
        caption = widgets.Label("Image", layout=widgets.Layout(width=LABEL_WIDTH, flex="0 0 auto"))
        self.input_row = widgets.HBox(
            [caption, self.upload, self.fit_control],
            layout=widgets.Layout(align_items="center", flex_flow="row wrap"),
        )
        super().__init__(
            [
                self.input_row,
                self.preview_slot,
                self.summary,
                self.method_note,
                self.words,
                self.params,
                self.controls,
            ],
            layout=widgets.Layout(width="100%"),
        )
        self.add_class("ipyimagegen-variations-tab")

        self.upload.on_image(self._uploaded)
        self.upload.on_error(lambda message: self.controls.show_status(message, "error"))
        self.fit_control.observe(lambda _change: self._refresh(), "value")
        self.params.observe(lambda _change: self._refresh(), ["model", "size"])
        self.params.observe(lambda _change: self._refresh_method(), "model")
        self._refresh_method()
        self.controls.on_run(self.make_variations)
        if not self.offered:
            self.controls.run_button.disabled = True
            self.controls.show_status(self._unsupported_message(), "error")

    @property
    def prepared(self) -> InputImage | None:
        """The image file as it will be sent (``None`` before an image is chosen)."""
        return self._prepared

    # -- input -------------------------------------------------------------------------------

    def use_image(self, source: Any) -> None:
        """Make variations of ``source``: a path, bytes, PIL image, array, a result or gallery item.

        Raises :class:`ImageInputError` (and says so in the status line) when it is not a usable
        image; the current image is then kept.
        """
        model = getattr(getattr(source, "request", None), "model", None) or getattr(source, "model", None)
        if isinstance(model, str) and model in self.offered and model != self.params.model:
            self.params.model = model  # the model of the result it starts from, where it makes variations
        try:
            self._load(load_image(source, max_bytes=self.upload.max_bytes))
        except ImageInputError as exc:
            self.controls.show_status(describe_error(exc), "error")
            raise

    def _uploaded(self, loaded: LoadedImage) -> None:
        try:
            self._load(loaded)
        except ImageInputError as exc:
            self.controls.show_status(f"{loaded.name}: {describe_error(exc)}", "error")
        else:
            self.controls.show_status(f"Loaded {loaded.name}.", "info")

    def _load(self, loaded: LoadedImage) -> None:
        """Prepare a new image; variations default to its own size when the model makes that size."""
        same_size = self._size_of(loaded)
        prepared = self._prepare(loaded, same_size)
        self._loaded = loaded
        if same_size is not None and same_size != self.params.size:
            self._quiet = True
            try:
                self.params.size = same_size
            finally:
                self._quiet = False
        self._show(prepared)

    def _size_of(self, loaded: LoadedImage) -> str | None:
        """The image's own size, when it is square and one the model makes."""
        width, height = loaded.image.size
        size = f"{width}x{height}"
        return size if width == height and size in self.params.spec.sizes else None

    def _prepare(self, loaded: LoadedImage, size: str | None = None) -> InputImage:
        size = size or self.params.size or None
        return prepare_input_image(loaded.source, self.params.spec, size=size, fit=self.fit)

    def _refresh(self) -> None:
        if self._loaded is None or self._quiet:
            return
        try:
            self._show(self._prepare(self._loaded))
        except (ImageInputError, ValueError) as exc:
            self.controls.show_status(describe_error(exc), "error")

    def _show(self, prepared: InputImage) -> None:
        self._prepared = prepared
        small, mime = thumbnail(prepared.data, max_side=PREVIEW_SIDE_PX)
        if self.preview is None:
            self.preview = widgets.Image(
                value=small,
                format=mime.split("/")[-1],
                layout=widgets.Layout(max_width=f"{PREVIEW_SIDE_PX}px"),
            )
            self.preview.add_class("ipyimagegen-variations-input")
            self.preview_slot.children = (self.preview,)
        else:
            self.preview.format = mime.split("/")[-1]
            self.preview.value = small
        width, height = image_size(prepared.data)
        assert self._loaded is not None
        original = self._loaded.image.size
        if original[0] != original[1] and width == height:
            how = f"{'cropped' if self.fit == 'crop' else 'padded'} to a square from {original[0]}×{original[1]}"
        elif original != (width, height):
            how = f"scaled from {original[0]}×{original[1]}"
        else:
            how = "as it is"
        kind = prepared.mime_type.split("/")[-1].upper()
        text = (
            f"Sends a {width}×{height} {kind} image, {size_text(len(prepared.data))} "
            f"(limit {size_text(self.params.spec.max_input_bytes)}) — {how}."
        )
        self.summary.value = f'<span class="ipyimagegen-note">{html.escape(text)}</span>'

    # -- the call ------------------------------------------------------------------------------

    def _refresh_method(self) -> None:
        square = self.params.spec.needs_square_png_input
        self.fit_control.layout.display = (
            None if square else "none"
        )  # only square inputs are cropped or padded
        if self.by_edit:
            self.method_note.value = (
                '<span class="ipyimagegen-note">No model here serves variations, so '
                f"<b>{html.escape(self.params.model)}</b> makes them as edits of the whole picture: it keeps "
                "the subject and composition and varies the rest. Add words to steer it.</span>"
            )

    def request(self) -> VariationRequest | EditRequest:
        """The variation request for the current image and parameters (an edit where none serves variations)."""
        if not self.offered:
            raise ValidationError(self._unsupported_message())
        if self._prepared is None:
            raise ImageInputError(NO_IMAGE, hint=NO_IMAGE_HINT.replace("Edit", "Variations"))
        if not self.by_edit:
            return VariationRequest(
                image=self._prepared, model=self.params.model, n=self.params.n, size=self.params.size or None
            )
        return self.params.edit_request(variation_prompt(self.words.value), [self._prepared])

    def make_variations(self) -> Job | None:
        """Start making variations; returns the job, or None if refused (the reason is in the status)."""
        parent_id = self._loaded.parent_id if self._loaded is not None else None
        method = "edit" if self.by_edit else "variations"
        return self.start(self.request, parent_id=parent_id, labels={"variation_method": method})

    def _unsupported_message(self) -> str:
        return (
            f"{self.backend.name} makes neither variations nor edits. "
            "Use a backend that does (OpenAI, a workshop server, or the offline preview engine)."
        )
