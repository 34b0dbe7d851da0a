"""The Variations tab: images like an input image, shown in the studio's grid.

The model selector offers every model that makes variations here, one way or the other, and the
user chooses. A model that serves ``/images/variations`` (DALL-E 2 semantics: the preview engine, a
workshop server, a local model) makes real variations from the picture alone: no prompt is sent and
the prompt box is hidden. Any other edit model (every OpenAI model today) makes them as edits of the
whole picture with the prompt in the tab's prompt box, which is required then; it starts with a
prompt that keeps subject and composition and varies the rest. A note beside the selector says
which model does what, and so does every result's metadata (``variation_method``).

The image comes from an upload or a drop on the tab, from a result's "Variations" (whose model is
taken too, until the user chooses one here) or from Python (:meth:`VariationsTab.use_image`). It is
prepared for the model at once (a square PNG under 4 MB for DALL-E 2, cropped or padded) and a
thumbnail and a line show what will be sent. A backend that makes no variations says so here
instead of failing later.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets

from ..api.backend import VARIATION_PROMPT, Backend
from ..api.types import EditRequest, InputImage, VariationRequest
from ..errors import ImageInputError, UnsupportedError, ValidationError, describe_error
from ..gallery import GalleryWriter
from ..imaging import image_size, prepare_input_image, thumbnail
from ..models import EDITS, VARIATIONS
from ..session import Job, JobRunner
from .edit_tab import NO_IMAGE
from .image_input import MAX_FILE_BYTES, ImageUpload, LoadedImage, SquareFit, load_image, size_text
from .images_tab import ImagesTab
from .job_controls import JobControls
from .lifecycle import close_tree
from .params_panel import LABEL_WIDTH, ParamsPanel
from .prompt_box import PromptBox
from .result_grid import ResultGrid

PREVIEW_SIDE_PX = 192
CHOOSE_PICTURE = "Choose a picture: Upload, drop one here, or click Variations on a result."
"""What the tab says before it has a picture (and when Make variations is clicked without one)."""
VARIATIONS_CSS = """
.ipyimagegen-variations-tab .ipyimagegen-variations-model-note .widget-html-content,
.ipyimagegen-variations-tab .ipyimagegen-variations-prompt-label .widget-html-content { line-height: 1.4; }
"""


def _model_of(source: Any) -> str | None:
    """The model that made ``source`` (a result or gallery item), where it says."""
    model = getattr(getattr(source, "request", None), "model", None) or getattr(source, "model", None)
    return model if isinstance(model, str) and model else None


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
        self._adopting = False  # True while the tab takes the model of the picture it was given
        self.model_chosen = False
        """True once the user chose the model here: a result's "Variations" then keeps that choice."""
        edits = list(backend.models(EDITS))
        self.real_models = list(backend.models(VARIATIONS))
        """The models that serve ``/images/variations`` here (real variations, no prompt)."""
        self.offered = [*edits, *(name for name in self.real_models if name not in edits)]
        """Every model the tab offers: those with real variations, and the edit models (as edits)."""

        self.upload = ImageUpload(
            "Upload image",
            max_bytes=max_file_bytes,
            css_class="ipyimagegen-variations-upload",
            drop_area=".ipyimagegen-variations-tab",
        )
        self.fit_control = self.fit_toggle()
        self.preview: widgets.Image | None = None  # made when there is an image to show
        self.empty_state = widgets.HTML(
            f'<div class="ipyimagegen-placeholder">{html.escape(CHOOSE_PICTURE)}</div>',
            layout=widgets.Layout(width="100%", max_width="480px", height="96px"),
        )
        self.empty_state.add_class("ipyimagegen-variations-empty")
        self.preview_slot = widgets.Box([self.empty_state])
        self.summary = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.summary.add_class("ipyimagegen-variations-summary")
        self.model_note = widgets.HTML(layout=widgets.Layout(margin="2px 0 2px 8px", flex="1 1 200px"))
        self.model_note.add_class("ipyimagegen-variations-model-note")
        self.params = ParamsPanel(
            backend,
            model=self._first_model(),
            endpoint=EDITS,
            models=self.offered,
            beside_model=[self.model_note],
        )
        self.prompt_label = widgets.HTML()
        self.prompt_label.add_class("ipyimagegen-note")
        self.prompt_label.add_class("ipyimagegen-variations-prompt-label")
        self.prompt_box = PromptBox(
            VARIATION_PROMPT,
            limit=self.params.spec.prompt_max,
            placeholder="Describe the variations: what to keep, what to change…",
        )
        if self.prompt_box.shortcut is not None:
            self.prompt_box.hint.value = "Ctrl+Enter (⌘+Enter) to make variations"
        self.prompt_section = widgets.VBox(
            [self.prompt_label, self.prompt_box], layout=widgets.Layout(width="100%")
        )
        self.prompt_section.add_class("ipyimagegen-variations-prompt")
        self.controls = JobControls(
            runner, run_label="Make variations", run_class="ipyimagegen-variations-run"
        )
        caption = widgets.Label("Image", layout=widgets.Layout(width=LABEL_WIDTH, flex="0 0 auto"))
        self.input_row = widgets.HBox(
            [caption, self.upload, self.fit_control],
            layout=widgets.Layout(align_items="center", flex_flow="row wrap"),
        )
        style = widgets.HTML(f"<style>{VARIATIONS_CSS}</style>", layout=widgets.Layout(display="none"))
        super().__init__(
            [
                style,
                self.input_row,
                self.preview_slot,
                self.summary,
                self.prompt_section,
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
        self.params.observe(self._model_changed, "model")
        self.prompt_box.on_submit(lambda _box: self.make_variations())
        self._refresh_method()
        self.controls.on_run(self.make_variations)
        if not self.offered:
            self.controls.run_button.disabled = True
            self.controls.show_status(self._unsupported_message(), "error")

    def _first_model(self) -> str | None:
        """Real variations where a model serves them, else the backend's edit model (None: neither)."""
        for endpoint in (VARIATIONS, EDITS):
            try:
                return self.backend.model_for(endpoint)
            except UnsupportedError:
                continue
        return None

    @property
    def prepared(self) -> InputImage | None:
        """The image file as it will be sent (``None`` before an image is chosen)."""
        return self._prepared

    @property
    def by_edit(self) -> bool:
        """True when the chosen model makes the variations as edits of the whole picture (with the prompt)."""
        return bool(self.offered) and self.params.model not in self.real_models

    # -- input -------------------------------------------------------------------------------

    def use_image(self, source: Any) -> None:
        """Make variations of ``source``: a path, bytes, PIL image, array, a result or gallery item.

        A result's model is chosen too, where it makes variations here and the user has not chosen
        one in this tab. Raises :class:`ImageInputError` (and says so in the status line) when it is
        not a usable image; the current image and model are then kept.
        """
        made_by = _model_of(source)
        before = self.params.model
        adopted = self._adopt_model(made_by)
        try:
            self._load(load_image(source, max_bytes=self.upload.max_bytes))
        except ImageInputError as exc:
            if adopted:
                self._set_model(before)
            self.controls.show_status(describe_error(exc), "error")
            raise
        self.controls.show_status(self._model_words(made_by, adopted), "info")

    def _adopt_model(self, made_by: str | None) -> bool:
        """Choose ``made_by``, the model that made the picture, where it makes variations here and the
        user has not chosen a model; whether it was taken."""
        if (
            made_by is None
            or self.model_chosen
            or made_by not in self.offered
            or made_by == self.params.model
        ):
            return False
        self._set_model(made_by)
        return True

    def _model_words(self, made_by: str | None, adopted: bool) -> str:
        """Which model makes the variations of a picture just given, and why ("" when nothing to say)."""
        model = self.params.model
        how = "as edits with the prompt" if self.by_edit else "from the picture alone"
        if adopted:
            return (
                f"Variations by {model}, the model that made this picture ({how}); "
                "the Model menu has the others."
            )
        if made_by is not None and made_by != model:
            return f"Variations by {model}, the model chosen here ({how}); {made_by} made this picture."
        return ""

    def _set_model(self, model: str) -> None:
        self._adopting = True
        try:
            self.params.model = model
        finally:
            self._adopting = False

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
            close_tree(self.empty_state)  # its layout and style too
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

    # -- the model and the prompt ------------------------------------------------------------

    def _model_changed(self, _change: dict[str, Any]) -> None:
        if not self._adopting:
            self.model_chosen = True
        self._refresh_method()

    def _refresh_method(self) -> None:
        """Show what the chosen model does: the note beside the selector, the prompt where it is sent."""
        square = self.params.spec.needs_square_png_input
        # only square inputs are cropped or padded
        self.fit_control.layout.display = None if square else "none"
        self.model_note.value = self._model_note_html()
        model = html.escape(self.params.model)
        self.prompt_box.limit = self.params.spec.prompt_max
        self.prompt_label.value = f"Prompt: <b>{model}</b> edits the whole picture with it"
        self.prompt_section.layout.display = None if self.by_edit else "none"
        if not self.by_edit:
            self.prompt_box.show_problem("")

    def _model_note_html(self) -> str:
        if not self.offered:
            return ""
        model = f"<b>{html.escape(self.params.model)}</b>"
        if not self.by_edit:
            text = f"{model} makes variations here from the picture alone: no prompt is sent"
        elif self.real_models:
            text = (
                f"{html.escape(' or '.join(self.real_models))} makes variations here; "
                f"{model} makes them as edits with your prompt"
            )
        else:
            text = f"no model here makes variations; {model} makes them as edits with your prompt"
        return f'<span class="ipyimagegen-note">{text}</span>'

    def _prompt_needed(self) -> str:
        return (
            f"Write a prompt: {self.params.model} makes the variations as edits of the whole picture "
            "with it (say what to keep and what to vary)."
        )

    # -- the call ------------------------------------------------------------------------------

    def request(self) -> VariationRequest | EditRequest:
        """The variation request for the current image, model and parameters (an edit of the whole
        picture with the prompt where the chosen model makes no real variations)."""
        if not self.offered:
            raise ValidationError(self._unsupported_message())
        if self._prepared is None:
            raise ImageInputError(NO_IMAGE, hint=CHOOSE_PICTURE)
        if not self.by_edit:
            return VariationRequest(
                image=self._prepared,
                model=self.params.model,
                n=self.params.n,
                size=self.params.size or None,
                seed=self.params.seed if self.params.takes_seeds else None,
            )
        prompt = self.prompt_box.value.strip()
        if not prompt:
            raise ValidationError(self._prompt_needed(), param="prompt")
        return self.params.edit_request(prompt, [self._prepared])

    def make_variations(self) -> Job | None:
        """Start making variations; returns the job, or None if refused (the reason is in the status,
        or at the prompt when the prompt is missing)."""
        if self.by_edit and not self.prompt_box.value.strip():
            self.prompt_box.show_problem(self._prompt_needed())
            if self._prepared is not None:
                return None  # with no picture either, the status says that too
        parent_id = self._loaded.parent_id if self._loaded is not None else None
        method = "edit" if self.by_edit else "variations"
        return self.start(self.request, parent_id=parent_id, labels={"variation_method": method})

    def _unsupported_message(self) -> str:
        return (
            f"{self.backend.name} makes neither variations nor edits. "
            "Use a backend that does (OpenAI, a workshop server, or the offline preview engine)."
        )
