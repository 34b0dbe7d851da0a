"""The Edit tab: an input image, a painted mask, a prompt, and the edited images in the grid.

The image comes from an upload, from Python (:meth:`EditTab.use_image`) or from a result's
"Edit". It is prepared for the chosen model at once (dall-e-2: a square RGBA PNG under 4 MB,
cropped or padded; gpt-image models: the file as it is when they accept it) and the painter
shows exactly what will be sent, with a line giving its size, format and bytes. Outpainting
places the image in a larger frame whose empty border becomes the area to fill.

Bad input never costs the user their work: a refused upload or mask leaves the image and the
painting as they were, and a failed call keeps the painting for another try.

The tab composes its parts: :class:`~.edit_picture.EditPicture` (the picture loaded, prepared and
shown), :class:`~.outpaint_controls.OutpaintControls`, :class:`~.edit_references.EditReferences`
and :class:`~.edit_draft.DraftBinding`; changes made together are batched by
:class:`~.edit_changes.ChangeBatch`, so the picture is prepared, and the draft kept, once.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import numpy as np

from .. import masks
from ..api.backend import Backend
from ..api.types import EditRequest, GeneratedImage, ImagesResponse
from ..errors import ImageInputError, ValidationError, describe_error
from ..gallery import GalleryReader, GalleryWriter
from ..imaging import PreparedEdit, outside_mask, prepare_mask, read_mask
from ..models import EDITS, size_for_aspect
from ..session import Job, JobRunner
from .edit_candidates import EditCandidates
from .edit_changes import ChangeBatch
from .edit_draft import DraftBinding, DraftStore
from .edit_picture import NO_IMAGE, NO_IMAGE_HINT, EditChoices, EditPicture
from .edit_references import EditReferences
from .image_input import MAX_FILE_BYTES, ImageUpload, LoadedImage, SquareFit, load_image, size_text
from .images_tab import ImagesTab
from .job_controls import JobControls
from .mask_painter import MaskPainter
from .outpaint_controls import OutpaintControls, frame_sizes
from .params_panel import LABEL_WIDTH, ParamsPanel
from .prompt_box import PromptBox
from .result_grid import ResultBatch, ResultGrid
from .studio_gallery import settings_of
from .viewer import outside_mask_text

log = logging.getLogger(__name__)

CARRIED_SETTINGS = ("model", "quality", "background", "output_format", "moderation", "input_fidelity")
"""What Edit on a result or a saved image brings along (with its prompt; the size follows the picture)."""

OUTSIDE_NOTICE_FROM = 0.005
"""An edit that changed this share of the pixels outside its mask or more says so in the status."""
NOTHING_PAINTED = "Nothing is painted, so there is nothing to change."
PAINT_FIRST = "Paint the area to change first (or click Fill all to rework the whole picture)."


def _row(label: str, *controls: widgets.Widget) -> widgets.HBox:
    caption = widgets.Label(label, layout=widgets.Layout(width=LABEL_WIDTH, flex="0 0 auto"))
    return widgets.HBox(
        [caption, *controls], layout=widgets.Layout(align_items="center", flex_flow="row wrap")
    )


def _area(name: str, *children: widgets.Widget) -> widgets.VBox:
    """A part of the tab's layout, placed by the studio's CSS (``ipyimagegen-area-<name>``)."""
    box = widgets.VBox(list(children), layout=widgets.Layout(min_width="0"))
    box.add_class(f"ipyimagegen-area-{name}")
    return box


class EditTab(ImagesTab, SquareFit):
    """Edit an image where the mask is painted. ``on_result(callback)`` gets each response shown.

    Size: it is the tab's whole public surface (a picture in from a file, a result or Python, a mask
    in, references, outpainting by frame, direction and drag, the edit itself, its candidates) and
    the wiring of the parts that do the work (EditPicture, OutpaintControls, EditReferences,
    EditCandidates, DraftBinding, ChangeBatch), each kept in its own module.
    """

    reveal_results = False  # the results show on the painter, which stays in view

    def __init__(
        self,
        backend: Backend,
        runner: JobRunner,
        grid: ResultGrid,
        *,
        gallery: GalleryWriter | None = None,
        max_workers: int = 4,
        max_display_size: int = 1536,
        max_file_bytes: int = MAX_FILE_BYTES,
        draft_name: str | None = None,
    ) -> None:
        self._connect(backend, runner, grid, gallery, max_workers)
        self.offered = list(backend.models(EDITS))
        self._changes = ChangeBatch()
        self._compared: PreparedEdit | None = None  # the picture the last edit was made from

        self.upload = ImageUpload(
            "Upload image",
            max_bytes=max_file_bytes,
            css_class="ipyimagegen-edit-upload",
            drop_area=".ipyimagegen-edit-tab",  # drop a picture anywhere on the tab, or paste one
        )
        self.mask_upload = ImageUpload(
            "Import mask", max_bytes=max_file_bytes, css_class="ipyimagegen-mask-upload"
        )
        self.fit_control = self.fit_toggle()
        self.painter = MaskPainter(max_display_size=max_display_size, fill=True)
        self.candidates = EditCandidates()
        """An edit's results on the painter, to cycle through and accept one."""
        self.picture = EditPicture(self.painter)
        self.outpainting = OutpaintControls()
        self.outpaint_control = self.outpainting.toggle
        self.frame_control = self.outpainting.frame
        self.scale_control = self.outpainting.scale
        self.extend_amount = self.outpainting.amount
        self.extend_buttons = self.outpainting.buttons
        self.params = ParamsPanel(backend, endpoint=EDITS)
        self.reference_images = EditReferences(self.params.spec, max_file_bytes)
        self.reference_upload = self.reference_images.upload
        self.references_label = self.reference_images.label
        self.clear_references_button = self.reference_images.clear_button
        self.keep_outside = widgets.Checkbox(
            value=True,
            description="Keep the picture outside the mask (blended over the feather)",
            indent=False,
            layout=widgets.Layout(width="auto"),
            tooltip="GPT image models may change pixels outside the mask: put the original back there",
        )
        self.keep_outside.add_class("ipyimagegen-keep-outside")
        self.summary = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.summary.add_class("ipyimagegen-edit-summary")
        self.prompt_box = PromptBox(
            limit=self.params.spec.prompt_max,
            placeholder="Describe the whole new picture, painted area included…",
        )
        self.controls = JobControls(runner, run_label="Edit image", run_class="ipyimagegen-edit-run")
        self.draft = DraftStore(gallery.root, draft_name) if isinstance(gallery, GalleryReader) else None
        """Where the picture, mask and prompt are kept between sessions, for this notebook (or
        ``draft_name``); None without a gallery."""
        self._draft_binding = DraftBinding(self, self.draft) if self.draft is not None else None

        self.rows = {
            "input": _row("Image", self.upload, self.mask_upload),
            "fit": _row("Square", self.fit_control),
            "outpaint": _row("Outpaint", self.outpaint_control, self.frame_control, self.scale_control),
            "extend": _row("Extend", *self.extend_buttons.values(), self.extend_amount),
            "references": _row(
                "References", self.reference_upload, self.references_label, self.clear_references_button
            ),
            "blend": _row("Outside", self.keep_outside),
        }
        self.areas = {
            "input": _area("input", self.rows["input"]),
            "prompt": _area("prompt", self.prompt_box),
            "run": _area("run", self.controls),
            "painter": _area("painter", self.painter, self.candidates, self.summary),
            "settings": _area(
                "settings",
                self.params,
                *(self.rows[name] for name in ("fit", "outpaint", "extend", "references", "blend")),
            ),
        }
        self.work = widgets.GridBox(list(self.areas.values()), layout=widgets.Layout(width="100%"))
        self.work.add_class("ipyimagegen-edit-layout")  # the controls beside the painter on a wide page
        super().__init__([self.work], layout=widgets.Layout(width="100%"))
        self.add_class("ipyimagegen-edit-tab")
        self._wire()
        self._model_changed()
        if not self.offered:
            self.controls.show_status(unsupported_message(backend), "error")
        else:
            self._restore_draft()

    def _wire(self) -> None:
        """What each control's change or click does."""
        show_error = lambda message: self.controls.show_status(message, "error")  # noqa: E731
        self.upload.on_image(self._uploaded)  # its problems show beside it
        self.mask_upload.on_image(self._mask_uploaded)
        self.reference_images.on_error(show_error)
        self.reference_images.on_change(self._show_summary)
        self.params.observe(lambda _change: self._model_changed(), "model")
        self.params.observe(lambda _change: self._refresh(), "size")
        self.fit_control.observe(lambda _change: self._refresh(), "value")
        self.outpainting.on_change(self._placement_changed)
        self.outpainting.on_extend(self.extend)
        self.painter.on_change(lambda _painter: self._show_summary())
        self.painter.on_change(lambda _painter: self._keep_draft())
        self.painter.on_move(self.move_picture)
        self.painter.on_cycle(self.candidates.step)
        self.candidates.on_show(lambda image: self.painter.show_after(image.data, show=True, split=0.0))
        self.candidates.on_accept(self._accepted)
        self.candidates.on_dismiss(lambda: self.painter.show_after(None))
        self.prompt_box.on_submit(lambda _box: self.edit())
        self.controls.on_run(self.edit)
        self.prompt_box.textarea.observe(lambda _change: self._keep_draft(), "value")
        self.keep_outside.observe(lambda _change: self._keep_draft(), "value")
        self.painter.observe(lambda _change: self._keep_draft(), "feather")

    # -- state -------------------------------------------------------------------------------

    @property
    def prepared(self) -> PreparedEdit | None:
        """The image as it will be sent (``None`` before an image is chosen)."""
        return self.picture.prepared

    @property
    def references(self) -> list[LoadedImage]:
        return self.reference_images.images

    def _choices(self) -> EditChoices:
        return EditChoices(self.params.spec, self.params.size or None, self.fit, self.outpainting.placement())

    # -- input -------------------------------------------------------------------------------

    def use_image(self, source: Any) -> None:
        """Edit ``source``: a path, bytes, PIL image, array, a result (GeneratedImage) or gallery item.

        Raises :class:`ImageInputError` (and says so in the status line) when it is not a usable
        image; the current image and painting are then kept.
        """
        try:
            loaded = load_image(source, max_bytes=self.upload.max_bytes)
            started_over = self._load(loaded)
        except ImageInputError as exc:
            self.controls.show_status(describe_error(exc), "error")
            raise
        self.upload.forget()  # the picture did not come from the upload button
        self._carry_settings(source)
        self._say_loaded(loaded.name or "the picture", started_over)

    def _carry_settings(self, source: Any) -> None:
        """A result's or gallery item's prompt (the one the user wrote) and settings, put in the form;
        the output size follows the picture's shape. A model that does not edit here is left as it is."""
        request = getattr(source, "request", None)
        if request is not None:
            prompt = getattr(request, "prompt", None) or ""
            settings = {name: getattr(request, name, None) for name in CARRIED_SETTINGS}
        elif hasattr(source, "endpoint"):  # a gallery item
            prompt = getattr(source, "prompt", None) or ""
            saved = settings_of(source)
            settings = {name: saved.get(name) for name in CARRIED_SETTINGS}
        else:
            return
        if settings.get("model") not in self.offered:
            settings.pop("model", None)
        self.params.apply({name: value for name, value in settings.items() if value is not None})
        loaded = self.picture.loaded
        size = size_for_aspect(self.params.spec, loaded.image.size, self.params.size) if loaded else None
        if size is not None and size != self.params.size:  # the size closest in shape to the picture
            self.params.size = size
        if prompt:
            self.prompt_box.value = prompt

    def use_mask(self, mask: Any, convention: masks.Convention = "auto") -> None:
        """Use an existing mask: a bool array (True = change), or an image whose transparent pixels
        mark the area, or, with no transparency, whose white pixels do (``convention`` chooses).

        It must be the size of the image shown, or of the original image (then it is framed as the
        image is). Raises :class:`ImageInputError` (shown in the status line) otherwise; the painting is kept.
        """
        self._import_mask(mask, quiet=False, convention=convention)

    def add_reference(self, source: Any) -> None:
        """Add an extra input image (gpt-image models take up to 16 in all; the mask applies to the first)."""
        try:
            self.reference_images.add(load_image(source, max_bytes=self.upload.max_bytes))
        except ImageInputError as exc:
            self.controls.show_status(describe_error(exc), "error")
            raise

    def clear_references(self) -> None:
        self.reference_images.clear()

    def _uploaded(self, loaded: LoadedImage) -> None:
        try:
            started_over = self._load(loaded)
        except ImageInputError as exc:
            self.upload.show_problem(f"{loaded.name}: {describe_error(exc)}")
        else:
            self._say_loaded(loaded.name, started_over)

    def _mask_uploaded(self, loaded: LoadedImage) -> None:
        try:
            self.picture.use_mask(read_mask(loaded.data or loaded.image, "auto"))
        except ImageInputError as exc:
            self.mask_upload.show_problem(f"{loaded.name}: not used: {describe_error(exc)}")
        else:
            self.mask_upload.show_problem("")
            self.controls.show_status(
                f"Mask imported: {self.painter.painted_fraction:.1%} of the image marked to change.", "info"
            )

    def _load(self, loaded: LoadedImage, frame: bool = False) -> list[str]:
        """Prepare ``loaded`` for the model, then (only if that worked) show it with an empty mask.
        The output size follows its shape (a 3:2 photo is edited at the model's 3:2 size). What
        belonged to the picture before goes with it: its mask, its comparison and, unless ``frame``,
        its outpainting frame. Returns what was reset that the user may have expected to stay."""
        before = self.params.size
        size = size_for_aspect(self.params.spec, loaded.image.size, before)
        reset: list[str] = []
        self.candidates.clear()  # they were results of the picture before
        with self._changes.batch():
            framed = self.outpaint_control.value and not frame
            try:
                if framed:
                    self.outpaint_control.value = False
                if size is not None and size != before:
                    self.params.size = size
                self.picture.load(loaded, self._choices())
            except Exception:
                self.params.size = before
                if framed:
                    self.outpaint_control.value = True
                raise
            if framed:
                reset.append("the outpainting frame is off")
            self._show_summary()
            self._keep_draft()
        return reset

    def _say_loaded(self, name: str, reset: list[str]) -> None:
        """A new picture: what was reset, and what was kept from before."""
        kept = [f"{self.params.model} at {self.params.size}"]
        if self.prompt_box.value.strip():
            kept.insert(0, "the prompt")
        if self.references:
            count = len(self.references)
            kept.append(f"{count} reference image{'s' if count != 1 else ''}")
        words = f"Loaded {name}: paint the area to change"
        if reset:
            words += f" ({', '.join(reset)})"
        self.controls.show_status(f"{words}. Kept {', '.join(kept)}.", "info")

    def _import_mask(self, mask: Any, quiet: bool = True, convention: masks.Convention = "auto") -> None:
        try:
            self.picture.use_mask(read_mask(mask, convention))
        except ImageInputError as exc:
            self.controls.show_status(f"The mask was not used: {describe_error(exc)}", "error")
            if not quiet:
                raise
        else:
            self.controls.show_status(
                f"Mask imported: {self.painter.painted_fraction:.1%} of the image marked to change.", "info"
            )

    # -- outpainting: where the picture sits in its frame ----------------------------------------

    def move_picture(self, dx: float, dy: float) -> None:
        """Move the picture in the outpainting frame by ``dx``, ``dy`` pixels of the picture shown."""
        prepared = self.picture.prepared
        if prepared is None or prepared.border is None:
            return
        width, height = prepared.picture.size
        self.outpainting.move(dx / width, dy / height)
        self._refresh()

    def extend(self, side: str, amount: float = 0.5) -> None:
        """Outpaint towards ``side`` (left, right, up, down) by ``amount`` of the picture's width or
        height: the frame becomes the model's size closest to the extended shape, the picture is
        scaled into it and placed against the opposite edge, and the new area is marked to fill."""
        if side not in masks.SIDES:
            raise ValueError(f"side must be one of {', '.join(masks.SIDES)}; got {side!r}.")
        loaded = self.picture.loaded
        if loaded is None:
            self.controls.show_status(f"{NO_IMAGE} {NO_IMAGE_HINT}", "error")
            return
        if not frame_sizes(self.params.spec):
            self.controls.show_status(
                f"{self.params.spec.name} has no fixed sizes to outpaint into.", "error"
            )
            return
        with self._changes.batch():  # one preparation, at the end, for all these changes
            self.outpainting.extend(side, amount, loaded.image.size, self.params.spec)
            self._placement_changed("extend")

    def _placement_changed(self, what: str) -> None:
        """Outpainting turned on or off, or another frame or scale: an outpainting frame is the picture
        the model makes, so the output size follows the frame."""
        with self._changes.batch():
            frame = self.frame_control.value
            follows = what != "scale" and self.outpaint_control.value and frame in self.params.spec.sizes
            if follows and self.params.size != frame:
                self.params.size = frame
            self._refresh()

    # -- preparing what will be sent -----------------------------------------------------------

    def _refresh(self) -> None:
        """Prepare again after a change of model, size, fit or frame (only when it changes what is
        sent), now or at the end of the changes under way."""
        self._changes.run(self._prepare_again)

    def _prepare_again(self) -> None:
        try:
            self.picture.refresh(self._choices())
        except (ImageInputError, ValueError) as exc:
            self.controls.show_status(describe_error(exc), "error")
            return
        self._show_summary()

    def _model_changed(self) -> None:
        spec = self.params.spec
        self.prompt_box.limit = spec.prompt_max
        self.rows["fit"].layout.display = None if spec.needs_square_png_input else "none"
        self.rows["references"].layout.display = None if spec.max_input_images > 1 else "none"
        sizes = frame_sizes(spec)
        with self._changes.batch():
            self.outpainting.offer(sizes)
            self.rows["outpaint"].layout.display = None if sizes else "none"
            self.rows["extend"].layout.display = None if sizes else "none"
            self._placement_changed("model")
        self.reference_images.for_model(spec)

    def _show_summary(self) -> None:
        prepared = self.picture.prepared
        if prepared is None:
            self.summary.value = ""
            return
        spec = self.params.spec
        data = prepared.input
        width, height = prepared.picture.size
        kind = data.mime_type.split("/")[-1].upper()
        alpha = " RGBA" if prepared.picture.mode == "RGBA" else ""
        text = (
            f"Sends a {width}×{height} {kind}{alpha} image, {size_text(len(data.data))} "
            f"(limit {size_text(spec.max_input_bytes)}) — {prepared.note}; "
            f"mask: {self.painter.painted_fraction:.1%} to change"
        )
        text += self.reference_images.summary()
        self.summary.value = f'<span class="ipyimagegen-note">{html.escape(text, quote=True)}.</span>'

    # -- the draft -------------------------------------------------------------------------------

    def _keep_draft(self) -> None:
        """Keep the draft, now or at the end of the changes under way."""
        if self._draft_binding is not None:
            self._changes.run(self._draft_binding.keep)

    def _restore_draft(self) -> None:
        """Bring back the draft kept in the gallery folder, if there is one."""
        if self._draft_binding is None:
            return
        try:
            with self._changes.batch():
                draft = self._draft_binding.restore(lambda loaded: self._load(loaded, frame=True))
                self._changes.drop(
                    self._draft_binding.keep
                )  # the draft on disk is what was just brought back
        except Exception as exc:
            log.warning("the Edit tab's draft could not be restored: %s", exc)
            self.controls.show_status(
                f"Your draft could not be brought back: {describe_error(exc)}", "warning"
            )
            return
        if draft is None:
            return
        when = draft.saved_at.replace("T", " ")[:16]
        self.controls.show_status(
            f"Your draft is back (kept {when}): the picture, its mask "
            f"({self.painter.painted_fraction:.1%} marked) and the prompt.",
            "info",
        )

    # -- the edit ------------------------------------------------------------------------------

    def request(self) -> EditRequest:
        """The edit request for the current image, mask, prompt and parameters.

        Raises :class:`ImageInputError` when there is no image or nothing is painted, and
        :class:`ValidationError` when the model cannot take the request.
        """
        if not self.offered:
            raise ValidationError(unsupported_message(self.backend))
        prepared = self.picture.prepared
        if prepared is None or self.picture.loaded is None:
            raise ImageInputError(NO_IMAGE, hint=NO_IMAGE_HINT)
        mask = self.painter.mask
        if mask is None or not mask.any():
            raise ImageInputError(NOTHING_PAINTED, hint=PAINT_FIRST)
        images = [prepared.input, *self.reference_images.inputs(self.params.size or None, self.fit)]
        return self.params.edit_request(
            self.prompt_box.value, images, mask=prepare_mask(mask, prepared.input)
        )

    def edit(self) -> Job | None:
        """Start the edit; returns the job, or None if it was refused (the reason is in the status)."""
        mask = self.painter.mask
        prepared = self.picture.prepared
        whole = mask is not None and bool(mask.all())
        notice = "The whole image is painted, so all of it is made anew. " if whole else ""
        parent_id = self.picture.loaded.parent_id if self.picture.loaded is not None else None
        finish = (
            compare_with_original(prepared, mask, float(self.painter.feather), bool(self.keep_outside.value))
            if prepared is not None and mask is not None
            else None
        )
        self._compared = prepared
        return self.start(self.request, parent_id=parent_id, notice=notice, finish=finish)

    def _show_results(self, batch: ResultBatch, response: ImagesResponse, notice: str) -> None:
        outside = [image.metadata.get("changed_outside_mask") for image in response.data]
        changed = [value for value in outside if isinstance(value, (int, float))]
        if changed and max(changed) >= OUTSIDE_NOTICE_FROM:
            first = next(image for image in response.data if "changed_outside_mask" in image.metadata)
            notice = f"Outside the mask, {outside_mask_text(first.metadata)}. " + notice
        super()._show_results(batch, response, notice)
        if response.data and self._compared is self.picture.prepared:
            self.candidates.show(list(response.data))  # on the painter, each against the picture before

    def _accepted(self, image: GeneratedImage, number: int, count: int) -> None:
        """A candidate becomes the picture to keep editing (its mask cleared; its parent is the last)."""
        self.use_image(image)
        others = f" The other {count - 1} are in the results" if count > 1 else " It is in the results"
        history = " and History." if self.gallery is not None else "."
        self.controls.show_status(
            f"Accepted result {number} of {count}: paint what to change next.{others}{history}", "ok"
        )


def unsupported_message(backend: Backend) -> str:
    """What the tab says when ``backend`` makes no edits."""
    return (
        f"{backend.name} does not edit images. "
        "Use a backend that does (OpenAI, or the offline preview engine)."
    )


def compare_with_original(
    prepared: PreparedEdit, mask: np.ndarray, feather: float, keep_outside: bool
) -> Callable[[GeneratedImage], None]:
    """What each result of an edit of ``prepared`` gets before it is shown: how much the model changed
    outside ``mask`` (in its metadata) and, with ``keep_outside``, the original put back there, blended
    over ``feather`` pixels."""

    def finish(image: GeneratedImage) -> None:
        try:
            outside = outside_mask(
                prepared.picture, image.data, image.mime_type, mask, feather, put_back=keep_outside
            )
        except Exception:  # a picture Pillow cannot read: shown as the model made it
            log.exception("could not blend an edit's result with its original")
            return
        if outside is None:  # frames, vectors or another shape: shown as the model made it
            return
        image.metadata["changed_outside_mask"] = round(outside.changed, 4)
        if outside.data is not None:
            image.data = outside.data
            image.metadata.update(pasted_back=True, feather=feather)

    return finish
