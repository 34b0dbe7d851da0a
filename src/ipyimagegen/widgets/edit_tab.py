"""The Edit tab: an input image, a painted mask, a prompt, and the edited images in the grid.

The image comes from an upload, from Python (:meth:`EditTab.use_image`) or from a result's
"Edit". It is prepared for the chosen model at once (dall-e-2: a square RGBA PNG under 4 MB,
cropped or padded; gpt-image models: the file as it is when they accept it) and the painter
shows exactly what will be sent, with a line giving its size, format and bytes. Outpainting
places the image in a larger frame whose empty border becomes the area to fill.

Bad input never costs the user their work: a refused upload or mask leaves the image and the
painting as they were, and a failed call keeps the painting for another try.
"""

from __future__ import annotations

import html
import io
import logging
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import numpy as np
from PIL import Image

from .. import masks
from ..api.backend import Backend
from ..api.errors import ImageInputError, ValidationError, describe_error
from ..api.types import EditRequest, GeneratedImage, ImagesResponse, InputImage
from ..gallery import GalleryLike
from ..imaging import input_framing, open_image, prepare_input_image, prepare_mask, read_mask
from ..models import EDITS, ModelSpec, parse_size, size_for_aspect
from .edit_draft import Draft, DraftStore
from .image_input import MAX_FILE_BYTES, ImageUpload, LoadedImage, SquareFit, load_image, size_text
from .images_tab import ImagesTab
from .job_controls import JobControls
from .mask_painter import MAX_FEATHER, MaskPainter
from .params_panel import LABEL_WIDTH, ParamsPanel
from .prompt_box import PromptBox
from .result_grid import ResultBatch, ResultGrid, outside_mask_text
from .studio_gallery import settings_of
from .worker import Job, JobRunner

ANIMATED_OR_VECTOR = ("image/gif", "image/svg+xml")
"""Results the original is not pasted back into (a GIF's frames, an SVG's shapes would be lost)."""

log = logging.getLogger(__name__)

CARRIED_SETTINGS = ("model", "quality", "background", "output_format", "moderation", "input_fidelity")
"""What Edit on a result or a saved image brings along (with its prompt; the size follows the picture)."""

OUTSIDE_NOTICE_FROM = 0.005
"""An edit that changed this share of the pixels outside its mask or more says so in the status."""
NOTHING_PAINTED = "Nothing is painted, so there is nothing to change."
PAINT_FIRST = "Paint the area to change first (or click Fill all to rework the whole picture)."
NO_IMAGE = "No image yet."
NO_IMAGE_HINT = "Upload an image, click Edit on a result, or call use_image(...)."


@dataclass(frozen=True)
class Prepared:
    """What will be sent: the image file, the picture the painter shows, how the loaded image was
    framed into that picture (crop, pad, scale, outpainting frame), and the outpainting border."""

    input: InputImage
    picture: Image.Image
    framing: masks.Framing
    border: np.ndarray | None
    note: str


def _row(label: str, *controls: widgets.Widget) -> widgets.HBox:
    caption = widgets.Label(label, layout=widgets.Layout(width=LABEL_WIDTH, flex="0 0 auto"))
    return widgets.HBox(
        [caption, *controls], layout=widgets.Layout(align_items="center", flex_flow="row wrap")
    )


def frame_sizes(spec: ModelSpec) -> list[str]:
    """The model's fixed sizes (``auto`` left out): the frames outpainting offers."""
    out = []
    for size in spec.sizes:
        try:
            parse_size(size)
        except ValueError:
            continue
        out.append(size)
    return out


class EditTab(ImagesTab, SquareFit):
    """Edit an image where the mask is painted. ``on_result(callback)`` gets each response shown."""

    def __init__(
        self,
        backend: Backend,
        runner: JobRunner,
        grid: ResultGrid,
        *,
        gallery: GalleryLike | None = None,
        max_workers: int = 4,
        max_display_size: int = 512,
        max_file_bytes: int = MAX_FILE_BYTES,
    ) -> None:
        self._connect(backend, runner, grid, gallery, max_workers)
        self._loaded: LoadedImage | None = None
        self._loading = False
        self._prepared: Prepared | None = None
        self._prepared_key: tuple[Any, ...] | None = None
        self._references: list[LoadedImage] = []
        self._compared: Prepared | None = None  # the picture the last edit was made from
        root = getattr(gallery, "root", None)
        self.draft = DraftStore(root) if root is not None else None
        """Where the picture, mask and prompt are kept between sessions (None without a gallery)."""
        self._drafted: LoadedImage | None = None  # the picture the draft on disk has
        self._restoring = False
        self.offered = list(backend.models(EDITS))

        self.upload = ImageUpload(
            "Upload image",
            max_bytes=max_file_bytes,
            css_class="ipyimagegen-edit-upload",
            drop_area=".ipyimagegen-edit-tab",  # drop a picture anywhere on the tab, or paste one
        )
        self.mask_upload = ImageUpload(
            "Import mask", max_bytes=max_file_bytes, css_class="ipyimagegen-mask-upload"
        )
        self.reference_upload = ImageUpload(
            "Add reference images",
            multiple=True,
            max_bytes=max_file_bytes,
            css_class="ipyimagegen-reference-upload",
        )
        self.references_label = widgets.HTML()
        self.clear_references_button = widgets.Button(
            description="Remove references", icon="times", layout=widgets.Layout(width="auto")
        )
        self.fit_control = self.fit_toggle()
        self.outpaint_control = widgets.Checkbox(
            value=False, description="Place the image in a larger frame", indent=False
        )
        self.outpaint_control.add_class("ipyimagegen-outpaint")
        self.frame_control = widgets.Dropdown(layout=widgets.Layout(width="160px"))
        self.scale_control = widgets.FloatSlider(
            value=0.75, min=0.1, max=1.0, step=0.05, description="Image scale",
            readout_format=".0%", continuous_update=False, style={"description_width": "initial"},
        )  # fmt: skip
        self.extend_amount = widgets.Dropdown(
            options=[("by 25%", 0.25), ("by 50%", 0.5), ("by 100%", 1.0)],
            value=0.5,
            layout=widgets.Layout(width="100px"),
        )
        self.extend_buttons = {
            side: widgets.Button(
                icon=f"arrow-{arrow}", tooltip=f"Extend the picture {word}", layout=widgets.Layout(width="36px")
            )
            for side, arrow, word in (
                ("left", "left", "to the left"), ("right", "right", "to the right"),
                ("up", "up", "upwards"), ("down", "down", "downwards"),
            )
        }  # fmt: skip
        for side, extend_button in self.extend_buttons.items():
            extend_button.add_class(f"ipyimagegen-extend-{side}")
            extend_button.on_click(lambda _b, side=side: self.extend(side, self.extend_amount.value))
        self._centre = (0.5, 0.5)  # where the picture's centre sits in the outpainting frame (fractions)
        self._extension = {"left": 0.0, "right": 0.0, "up": 0.0, "down": 0.0}
        self.painter = MaskPainter(max_display_size=max_display_size)
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

        self.params = ParamsPanel(backend, endpoint=EDITS)
        self.prompt_box = PromptBox(
            limit=self.params.spec.prompt_max,
            placeholder="Describe the whole new picture, painted area included…",
        )
        self.controls = JobControls(runner, run_label="Edit image", run_class="ipyimagegen-edit-run")

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
        super().__init__(
            [*self.rows.values(), self.painter, self.summary, self.prompt_box, self.params, self.controls],
            layout=widgets.Layout(width="100%"),
        )
        self.add_class("ipyimagegen-edit-tab")

        self.upload.on_image(self._uploaded)
        self.upload.on_error(lambda message: self.controls.show_status(message, "error"))
        self.mask_upload.on_image(lambda loaded: self._import_mask(loaded.data or loaded.image))
        self.mask_upload.on_error(lambda message: self.controls.show_status(message, "error"))
        self.reference_upload.on_image(self._add_reference_from_upload)
        self.reference_upload.on_error(lambda message: self.controls.show_status(message, "error"))
        self.clear_references_button.on_click(lambda _b: self.clear_references())
        self.params.observe(lambda _change: self._model_changed(), "model")
        self.params.observe(lambda _change: self._refresh(), "size")
        self.fit_control.observe(lambda _change: self._refresh(), "value")
        self.outpaint_control.observe(lambda _change: self._outpaint_changed(), "value")
        self.frame_control.observe(lambda _change: self._frame_changed(), "value")
        self.scale_control.observe(lambda _change: self._placed_by_hand(), "value")
        self.painter.on_change(lambda _painter: self._painted())
        self.painter.on_move(self.move_picture)
        self.prompt_box.on_submit(lambda _box: self.edit())
        self.controls.on_run(self.edit)
        self.prompt_box.textarea.observe(lambda _change: self._keep_draft(), "value")
        self.keep_outside.observe(lambda _change: self._keep_draft(), "value")
        self.painter.observe(lambda _change: self._keep_draft(), "feather")
        self._model_changed()
        if not self.offered:
            self.controls.show_status(self._unsupported_message(), "error")
        else:
            self._restore_draft()

    # -- state -------------------------------------------------------------------------------

    @property
    def prepared(self) -> Prepared | None:
        """The image as it will be sent (``None`` before an image is chosen)."""
        return self._prepared

    @property
    def references(self) -> list[LoadedImage]:
        return list(self._references)

    # -- input -------------------------------------------------------------------------------

    def use_image(self, source: Any) -> None:
        """Edit ``source``: a path, bytes, PIL image, array, a result (GeneratedImage) or gallery item.

        Raises :class:`ImageInputError` (and says so in the status line) when it is not a usable
        image; the current image and painting are then kept.
        """
        try:
            loaded = load_image(source, max_bytes=self.upload.max_bytes)
            self._load(loaded)
        except ImageInputError as exc:
            self.controls.show_status(describe_error(exc), "error")
            raise
        self._carry_settings(source)

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
        self._follow_shape()
        if prompt:
            self.prompt_box.value = prompt

    def _follow_shape(self) -> None:
        """Set the output size to the model's size closest in shape to the loaded picture."""
        if self._loaded is None:
            return
        size = size_for_aspect(self.params.spec, self._loaded.image.size, self.params.size)
        if size is not None and size != self.params.size:
            self.params.size = size

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
            self._add_reference(load_image(source, max_bytes=self.upload.max_bytes))
        except ImageInputError as exc:
            self.controls.show_status(describe_error(exc), "error")
            raise

    def clear_references(self) -> None:
        self._references.clear()
        self._show_references()
        self._show_summary()

    def _uploaded(self, loaded: LoadedImage) -> None:
        try:
            self._load(loaded)
        except ImageInputError as exc:
            self.controls.show_status(f"{loaded.name}: {describe_error(exc)}", "error")
        else:
            self.controls.show_status(f"Loaded {loaded.name}: paint the area to change.", "info")

    def _load(self, loaded: LoadedImage) -> None:
        """Prepare ``loaded`` for the model, then (only if that worked) show it with an empty mask.
        The output size follows its shape (a 3:2 photo is edited at the model's 3:2 size)."""
        before = self.params.size
        size = size_for_aspect(self.params.spec, loaded.image.size, before)
        self._loading = True  # the new picture is prepared once, below
        try:
            if size is not None and size != before:
                self.params.size = size
            prepared = self._prepare(loaded)
        except Exception:
            self.params.size = before
            raise
        finally:
            self._loading = False
        self._loaded = loaded
        self._show(prepared, carry_mask=False)
        self._keep_draft()

    def _import_mask(self, mask: Any, quiet: bool = True, convention: masks.Convention = "auto") -> None:
        try:
            self._apply_mask(mask, convention)
        except ImageInputError as exc:
            self.controls.show_status(f"The mask was not used: {describe_error(exc)}", "error")
            if not quiet:
                raise
        else:
            self.controls.show_status(
                f"Mask imported: {self.painter.painted_fraction:.1%} of the image marked to change.", "info"
            )

    def _apply_mask(self, mask: Any, convention: masks.Convention = "auto") -> None:
        if self._prepared is None or self._loaded is None:
            raise ImageInputError(NO_IMAGE, hint="Choose the image first, then its mask.")
        array = read_mask(mask, convention)
        shown = self._prepared.picture.size
        original = self._loaded.image.size
        size = masks.size_of(array)
        if size == shown:
            self.painter.set_mask(array)
        elif size == original:
            framed = self._prepared.framing.mask(array)
            if self._prepared.border is not None:
                framed |= self._prepared.border
            self.painter.set_mask(framed)
        else:
            raise ImageInputError(
                f"The mask is {size[0]}x{size[1]} but the image is {shown[0]}x{shown[1]}"
                + (f" ({original[0]}x{original[1]} before preparing)" if original != shown else "")
                + ": they must be the same size.",
                hint="Use a mask made for this image, or paint one here.",
            )

    def _add_reference_from_upload(self, loaded: LoadedImage) -> None:
        try:
            self._add_reference(loaded)
        except ImageInputError as exc:
            self.controls.show_status(describe_error(exc), "error")

    def _add_reference(self, loaded: LoadedImage) -> None:
        spec = self.params.spec
        room = spec.max_input_images - 1 - len(self._references)
        if room <= 0:
            raise ImageInputError(
                f"{spec.name} takes at most {spec.max_input_images} input image(s) in all.",
                hint="Remove references first, or choose a gpt-image model."
                if spec.max_input_images == 1
                else "Remove references first.",
            )
        self._references.append(loaded)
        self._show_references()
        self._show_summary()

    # -- preparing what will be sent -----------------------------------------------------------

    def _key(self) -> tuple[Any, ...]:
        spec = self.params.spec
        square = spec.needs_square_png_input
        outpaint = (
            (self.frame_control.value, self.scale_control.value, self._centre)
            if self.outpaint_control.value
            else None
        )
        return (
            id(self._loaded),
            square,
            self.params.size if square else None,
            self.fit if square else None,
            spec.max_input_bytes,
            spec.input_mime_types,
            outpaint,
        )

    def _prepare(self, loaded: LoadedImage) -> Prepared:
        """The file to send for ``loaded`` with the current model and choices (nothing shown yet)."""
        spec = self.params.spec
        size = self.params.size or None
        original = loaded.image.size
        outpainting = None
        if self.outpaint_control.value and self.frame_control.value:
            frame = parse_size(self.frame_control.value)
            fits = min(frame[0] / original[0], frame[1] / original[1])
            try:
                scale = fits * self.scale_control.value
                scaled = (max(1, round(original[0] * scale)), max(1, round(original[1] * scale)))
                offset = (
                    min(max(round(self._centre[0] * frame[0] - scaled[0] / 2), 0), frame[0] - scaled[0]),
                    min(max(round(self._centre[1] * frame[1] - scaled[1] / 2), 0), frame[1] - scaled[1]),
                )
                outpainting = masks.outpaint(original, frame, scale, offset)
            except masks.MaskError as exc:
                raise ImageInputError(str(exc), hint=exc.hint or None) from None
            framed = outpainting.image(loaded.image)
            prepared = prepare_input_image(framed, spec, size=size, fit=self.fit)
            framing = outpainting.then(input_framing(framed.size, spec, size, self.fit))
            note = f"the image at {self.scale_control.value:.0%} of a {frame[0]}×{frame[1]} frame; the border is to fill"
        else:
            prepared = prepare_input_image(loaded.source, spec, size=size, fit=self.fit)
            framing = input_framing(original, spec, size, self.fit)
            note = (
                "the file as it is"
                if prepared.data == loaded.data
                else "encoded as " + prepared.mime_type[6:].upper()
            )
        picture = open_image(prepared.data)
        if framing.size != picture.size:  # shrunk to fit the model's byte limit
            framing = framing.then(masks.scale_to(framing.size, picture.size))
        if outpainting is None and spec.needs_square_png_input and original[0] != original[1]:
            note = f"{'cropped' if self.fit == 'crop' else 'padded'} to a square from {original[0]}×{original[1]}"
        elif outpainting is None and picture.size != original:
            note = f"scaled from {original[0]}×{original[1]}"
        border = framing.border() if outpainting is not None else None
        return Prepared(prepared, picture, framing, border, note)

    def _show(self, prepared: Prepared, carry_mask: bool) -> None:
        """Show ``prepared`` in the painter; what was painted follows the picture through the new framing."""
        before = self._prepared if carry_mask else None
        old_mask = self.painter.mask if before is not None else None
        self._prepared = prepared
        self._prepared_key = self._key()
        self.painter.set_image(prepared.picture)
        mask = None
        if before is not None and old_mask is not None and old_mask.any():
            mask = prepared.framing.mask(before.framing.unframe(old_mask))
        if prepared.border is not None:
            mask = prepared.border if mask is None else mask | prepared.border
        if mask is not None and mask.any():
            self.painter.set_mask(mask)
        self.painter.set_placement(self._placement(prepared))
        self._show_summary()

    @staticmethod
    def _placement(prepared: Prepared) -> tuple[float, float, float, float] | None:
        """Where the loaded picture sits in the outpainting frame shown (None: no frame)."""
        if prepared.border is None:
            return None
        framing = prepared.framing
        width, height = framing.source_size
        return (framing.offset[0], framing.offset[1], width * framing.scale[0], height * framing.scale[1])

    # -- the draft -------------------------------------------------------------------------------

    def _painted(self) -> None:
        self._show_summary()
        self._keep_draft()

    def _keep_draft(self) -> None:
        """Hand the picture, mask and form to the draft store (written in the background)."""
        if self.draft is None or self._loaded is None or self._restoring or self._loading:
            return
        loaded = self._loaded
        state = {
            "prompt": self.prompt_box.value,
            "model": self.params.model,
            "size": self.params.size,
            "fit": self.fit,
            "outpaint": {
                "on": bool(self.outpaint_control.value),
                "frame": self.frame_control.value,
                "scale": float(self.scale_control.value),
                "centre": list(self._centre),
            },
            "keep_outside": bool(self.keep_outside.value),
            "feather": float(self.painter.feather),
            "parent_id": loaded.parent_id,
        }
        picture = loaded.data if loaded.data is not None else loaded.image
        self.draft.save(
            Draft(picture, loaded.name, self.painter.mask, state), new_picture=loaded is not self._drafted
        )
        self._drafted = loaded

    def _restore_draft(self) -> None:
        """Bring back the draft kept in the gallery folder, if there is one."""
        draft = self.draft.load() if self.draft is not None else None
        if draft is None:
            return
        state = draft.state
        self._restoring = True
        try:
            loaded = load_image(draft.picture, max_bytes=self.upload.max_bytes)
            loaded = LoadedImage(loaded.image, draft.name, loaded.data, state.get("parent_id"))
            settings = {name: state.get(name) for name in ("model", "size")}
            if settings["model"] not in self.offered:
                settings = {}
            self.params.apply({name: value for name, value in settings.items() if value})
            if state.get("fit") in ("crop", "pad"):
                self.fit = state["fit"]
            outpaint = state.get("outpaint") or {}
            self._loading = True
            try:
                if outpaint.get("frame") in self.frame_control.options:
                    self.frame_control.value = outpaint["frame"]
                if isinstance(outpaint.get("scale"), (int, float)):
                    self.scale_control.value = min(max(outpaint["scale"], self.scale_control.min), 1.0)
                centre = outpaint.get("centre")
                if isinstance(centre, list) and len(centre) == 2:
                    self._centre = (float(centre[0]), float(centre[1]))
                    self._clamp_centre()
                self.outpaint_control.value = bool(outpaint.get("on"))
            finally:
                self._loading = False
            self._load(loaded)
            if draft.mask is not None and draft.mask.shape == self.painter.mask.shape:  # type: ignore[union-attr]
                self.painter.set_mask(draft.mask | self.painter.mask)  # type: ignore[operator]
            self.prompt_box.value = str(state.get("prompt") or "")
            self.keep_outside.value = bool(state.get("keep_outside", True))
            if isinstance(state.get("feather"), (int, float)):
                self.painter.feather = min(max(float(state["feather"]), 0.0), MAX_FEATHER)
        except Exception as exc:
            log.warning("the Edit tab's draft could not be restored: %s", exc)
            self.controls.show_status(
                f"Your draft could not be brought back: {describe_error(exc)}", "warning"
            )
            return
        finally:
            self._restoring = False
        self._drafted = self._loaded
        when = draft.saved_at.replace("T", " ")[:16]
        self.controls.show_status(
            f"Your draft is back (kept {when}): the picture, its mask "
            f"({self.painter.painted_fraction:.1%} marked) and the prompt.",
            "info",
        )

    # -- outpainting: where the picture sits in its frame ----------------------------------------

    def move_picture(self, dx: float, dy: float) -> None:
        """Move the picture in the outpainting frame by ``dx``, ``dy`` pixels of the picture shown."""
        if self._prepared is None or self._prepared.border is None:
            return
        width, height = self._prepared.picture.size
        self._centre = (self._centre[0] + dx / width, self._centre[1] + dy / height)
        self._clamp_centre()
        self._extension = dict.fromkeys(self._extension, 0.0)
        self._refresh()

    def extend(self, side: str, amount: float = 0.5) -> None:
        """Outpaint towards ``side`` (left, right, up, down) by ``amount`` of the picture's width or
        height: the frame becomes the model's size closest to the extended shape, the picture is
        scaled into it and placed against the opposite edge, and the new area is marked to fill."""
        if side not in self._extension:
            raise ValueError(f"side must be one of {', '.join(self._extension)}; got {side!r}.")
        if self._loaded is None:
            self.controls.show_status(f"{NO_IMAGE} {NO_IMAGE_HINT}", "error")
            return
        sizes = frame_sizes(self.params.spec)
        if not sizes:
            self.controls.show_status(
                f"{self.params.spec.name} has no fixed sizes to outpaint into.", "error"
            )
            return
        extension = dict(self._extension)
        extension[side] += float(amount)
        width, height = self._loaded.image.size
        wide = width * (1 + extension["left"] + extension["right"])
        tall = height * (1 + extension["up"] + extension["down"])
        spec = self.params.spec
        frame = size_for_aspect(spec, (round(wide), round(tall))) or sizes[-1]
        frame_w, frame_h = parse_size(frame)
        scale = min(frame_w / wide, frame_h / tall)
        fits = min(frame_w / width, frame_h / height)
        left = (frame_w - scale * wide) / 2 + scale * width * extension["left"]
        top = (frame_h - scale * tall) / 2 + scale * height * extension["up"]
        self._loading = True  # one preparation, below, for all these changes
        try:
            self.outpaint_control.value = True
            self.frame_control.value = frame
            self.scale_control.value = max(self.scale_control.min, min(1.0, scale / fits))
            self._size_follows_frame()
        finally:
            self._loading = False
        self._centre = ((left + scale * width / 2) / frame_w, (top + scale * height / 2) / frame_h)
        self._extension = extension
        self._refresh()

    def _frame_changed(self) -> None:
        self._size_follows_frame()
        self._refresh()

    def _size_follows_frame(self) -> None:
        """An outpainting frame is the picture the model makes: the output size is the frame's."""
        frame = self.frame_control.value
        if self.outpaint_control.value and frame in self.params.spec.sizes and self.params.size != frame:
            loading, self._loading = self._loading, True  # the caller prepares once
            try:
                self.params.size = frame
            finally:
                self._loading = loading

    def _placed_by_hand(self) -> None:
        if not self._loading:
            self._extension = dict.fromkeys(self._extension, 0.0)
        self._refresh()

    def _clamp_centre(self) -> None:
        self._centre = (min(max(self._centre[0], 0.0), 1.0), min(max(self._centre[1], 0.0), 1.0))

    def _refresh(self) -> None:
        """Prepare again after a change of model, size, fit or frame (only when it changes what is sent)."""
        if self._loading or self._loaded is None or self._key() == self._prepared_key:
            return
        try:
            prepared = self._prepare(self._loaded)
        except (ImageInputError, ValueError) as exc:
            self.controls.show_status(describe_error(exc), "error")
            return
        self._show(prepared, carry_mask=True)

    def _outpaint_changed(self) -> None:
        self.frame_control.layout.display = None if self.outpaint_control.value else "none"
        self.scale_control.layout.display = None if self.outpaint_control.value else "none"
        if not self.outpaint_control.value:
            self._centre, self._extension = (0.5, 0.5), dict.fromkeys(self._extension, 0.0)
        self._size_follows_frame()
        self._refresh()

    def _model_changed(self) -> None:
        spec = self.params.spec
        self.prompt_box.limit = spec.prompt_max
        self.rows["fit"].layout.display = None if spec.needs_square_png_input else "none"
        self.rows["references"].layout.display = None if spec.max_input_images > 1 else "none"
        sizes = frame_sizes(spec)
        current = self.frame_control.value
        self.frame_control.options = sizes
        if sizes:
            self.frame_control.value = current if current in sizes else sizes[-1]
        self.rows["outpaint"].layout.display = None if sizes else "none"
        self.rows["extend"].layout.display = None if sizes else "none"
        self._outpaint_changed()
        self._show_references()

    def _show_references(self) -> None:
        count = len(self._references)
        spec = self.params.spec
        if count == 0:
            text = f"none (up to {spec.max_input_images - 1} more images to draw from)"
        else:
            names = ", ".join(ref.name for ref in self._references)
            text = f"{count}: {names}"
        self.references_label.value = f"<span>{_escape(text)}</span>"
        self.clear_references_button.layout.display = None if count else "none"

    def _show_summary(self) -> None:
        prepared = self._prepared
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
        if self._references and spec.max_input_images > 1:
            text += f"; plus {len(self._references)} reference image(s)"
        elif self._references:
            text += (
                f"; the {len(self._references)} reference image(s) are left out: {spec.name} takes one image"
            )
        self.summary.value = f'<span class="ipyimagegen-note">{_escape(text)}.</span>'

    # -- the edit ------------------------------------------------------------------------------

    def request(self) -> EditRequest:
        """The edit request for the current image, mask, prompt and parameters.

        Raises :class:`ImageInputError` when there is no image or nothing is painted, and
        :class:`ValidationError` when the model cannot take the request.
        """
        if not self.offered:
            raise ValidationError(self._unsupported_message())
        if self._prepared is None or self._loaded is None:
            raise ImageInputError(NO_IMAGE, hint=NO_IMAGE_HINT)
        mask = self.painter.mask
        if mask is None or not mask.any():
            raise ImageInputError(NOTHING_PAINTED, hint=PAINT_FIRST)
        spec = self.params.spec
        images = [self._prepared.input]
        if spec.max_input_images > 1:
            images += [
                prepare_input_image(ref.source, spec, size=self.params.size or None, fit=self.fit)
                for ref in self._references
            ]
        return self.params.edit_request(
            self.prompt_box.value, images, mask=prepare_mask(mask, self._prepared.input)
        )

    def edit(self) -> Job | None:
        """Start the edit; returns the job, or None if it was refused (the reason is in the status)."""
        mask = self.painter.mask
        whole = mask is not None and bool(mask.all())
        notice = "The whole image is painted, so all of it is made anew. " if whole else ""
        parent_id = self._loaded.parent_id if self._loaded is not None else None
        finish = (
            self._blend_into(self._prepared, mask)
            if self._prepared is not None and mask is not None
            else None
        )
        self._compared = self._prepared
        return self.start(self.request, parent_id=parent_id, notice=notice, finish=finish)

    def _blend_into(self, prepared: Prepared, mask: np.ndarray) -> Any:
        """What each result of this edit gets before it is shown: how much the model changed outside
        the mask (in its metadata) and, with "Keep the picture outside the mask", the original put
        back there, blended over the feather."""
        picture, feather, keep = prepared.picture, float(self.painter.feather), bool(self.keep_outside.value)
        whole = bool(mask.all())

        def finish(image: GeneratedImage) -> None:
            if image.mime_type in ANIMATED_OR_VECTOR:
                return  # frames or vectors: one raster would lose them, so they stay as the model made them
            try:
                edited = image.to_pil()
                if not same_shape(picture.size, edited.size):
                    return  # another shape than the picture: its pixels do not line up with the original's
                changed = masks.changed_outside(picture, edited, mask, margin=2 * feather + 2)
                image.metadata["changed_outside_mask"] = round(changed, 4)
                if keep and not whole:
                    blended = masks.paste_back(picture, edited, mask, feather)
                    image.data = encode_like(blended, image.mime_type)
                    image.metadata.update(pasted_back=True, feather=feather)
            except Exception:  # a picture Pillow cannot read: shown as the model made it
                log.exception("could not blend an edit's result with its original")

        return finish

    def _show_results(self, batch: ResultBatch, response: ImagesResponse, notice: str) -> None:
        outside = [image.metadata.get("changed_outside_mask") for image in response.data]
        changed = [value for value in outside if isinstance(value, (int, float))]
        if changed and max(changed) >= OUTSIDE_NOTICE_FROM:
            first = next(image for image in response.data if "changed_outside_mask" in image.metadata)
            notice = f"Outside the mask, {outside_mask_text(first.metadata)}. " + notice
        super()._show_results(batch, response, notice)
        if response.data and self._compared is self._prepared:
            self.painter.show_after(response.data[0].data, show=False)

    def _unsupported_message(self) -> str:
        name = getattr(self.backend, "name", type(self.backend).__name__)
        return (
            f"{name} does not edit images. Use a backend that does (OpenAI, or the offline preview engine)."
        )


def same_shape(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Whether two sizes have the same width to height ratio (within 1%)."""
    return abs(a[0] * b[1] - a[1] * b[0]) <= 0.01 * a[0] * b[1]


def encode_like(image: Image.Image, mime_type: str) -> bytes:
    """``image`` as a file of the given type (PNG, JPEG or WebP, as the model sent it)."""
    buffer = io.BytesIO()
    if mime_type == "image/jpeg":
        image.convert("RGB").save(buffer, format="JPEG", quality=95)
    elif mime_type == "image/webp":
        image.save(buffer, format="WEBP", quality=95)
    else:
        image.save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def _escape(text: str) -> str:
    return html.escape(text, quote=True)
