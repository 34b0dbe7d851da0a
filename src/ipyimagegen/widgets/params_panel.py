"""Model, size, count and the model's own options, all offered from the capability table.

Choosing a model changes the sizes and options shown; options the model does not take are
hidden and sent as nothing. Combinations the API refuses cannot be picked: a transparent
background removes JPEG from the formats, compression shows for JPEG and WebP only, frames and
their timing for GIF only, and SVG (one drawing per request) sets the count to 1.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import ipywidgets as widgets
from traitlets import Int, TraitError, Unicode, observe, validate

from ..api.backend import Backend
from ..api.parallel import requests_needed
from ..api.types import EditRequest, GenerateRequest, InputImage
from ..models import EDITS, GENERATIONS, ModelSpec, parse_size, size_allowed, today

LABEL_WIDTH = "110px"
COMMON_ROWS = ("model", "size", "n", "quality")
"""The settings always in view; the others are under "More settings"."""
ROW_LABELS = {"output_format": "format", "output_compression": "compression", "frame_count": "frames",
              "frame_duration_ms": "frame time", "partial_images": "previews", "input_fidelity": "fidelity"}  # fmt: skip
CONTROL_WIDTH = "320px"
N_MAX = 10
SETTINGS_ORDER = (
    "size",
    "quality",
    "style",
    "background",  # before output_format: a transparent background takes JPEG away
    "output_format",
    "output_compression",
    "frame_count",
    "frame_duration_ms",
    "n",
    "partial_images",
    "moderation",
    "complexity",
    "input_fidelity",
    "seed",
)
"""The order in which :meth:`ParamsPanel.apply` sets parameters, after the model."""


def size_label(size: str) -> str:
    """``"1536x1024"`` → ``"1536 × 1024 (landscape)"``; ``"auto"`` stays as it is."""
    try:
        width, height = parse_size(size)
    except ValueError:
        return size
    shape = "square" if width == height else "landscape" if width > height else "portrait"
    return f"{width} × {height} ({shape})"


def _row(label: str, control: widgets.Widget) -> widgets.HBox:
    """A labelled row: labels and controls line up in every row."""
    caption = widgets.Label(label, layout=widgets.Layout(width=LABEL_WIDTH, flex="0 0 auto"))
    return widgets.HBox([caption, control], layout=widgets.Layout(align_items="center"))


def _dropdown() -> widgets.Dropdown:
    return widgets.Dropdown(layout=widgets.Layout(width=CONTROL_WIDTH))


DEFAULT_CHOICE = ("model's default", "")
"""The first choice of an optional parameter: send nothing, the model decides."""
FRAME_COUNTS = tuple(range(2, 17))
"""The frames a GIF may have (the Images API's range)."""
FRAME_DURATIONS_MS = (50, 80, 100, 120, 150, 200, 250, 300, 400, 500, 750, 1000, 1500, 2000)
"""How long each GIF frame shows, as offered (any whole number of milliseconds up to 655350 is taken)."""
MAX_FRAME_DURATION_MS = 655_350
ONE_PER_REQUEST_FORMATS = ("svg",)
"""Output formats the API makes one image of per request: the count is 1 while one is chosen."""


def duration_label(milliseconds: int) -> str:
    """``200`` → ``"200 ms (5 per second)"``."""
    if milliseconds <= 0:
        return "0 ms (as fast as the viewer goes)"
    rate = 1000 / milliseconds
    return f"{milliseconds} ms ({rate:.3g} per second)"


def shutdown_ahead(backend: Backend, model: str) -> date | None:
    """The date ``model`` shuts down on ``backend``, when that day is still to come."""
    end = backend.shutdown_date(model)
    return end if end is not None and end > today() else None


def model_label(backend: Backend, model: str) -> str:
    """A model's name, with its shutdown date when one is ahead."""
    end = shutdown_ahead(backend, model)
    return f"{model} (shuts down {end.isoformat()})" if end is not None else model


class ParamsPanel(widgets.VBox):
    """The request parameters for generations. ``request(prompt)`` builds the request.

    The traits (``model``, ``size``, ``n``, ``quality``...) are the state; the controls show
    it. Setting a trait to a value the model does not take raises ``TraitError``.

    Size: each of its fifteen traits is a request parameter, and traitlets checks a trait with a
    validator method of its own; the rest builds the requests, applies saved settings, and keeps
    the controls (choices, visibility, notes) in step with the traits and the chosen model.
    """

    model = Unicode(help="Model name, one the backend offers.")
    size = Unicode(help="Image size, one the model offers.")
    n = Int(1, help="How many images (more than the model's per-request limit runs parallel requests).")
    quality = Unicode(None, allow_none=True, help="Quality, where the model has a choice.")
    style = Unicode(None, allow_none=True, help="dall-e-3 style: vivid or natural.")
    background = Unicode(None, allow_none=True, help="gpt-image background: auto, transparent, opaque.")
    output_format = Unicode(None, allow_none=True, help="gpt-image output format: png, jpeg, webp, gif, svg.")
    output_compression = Int(100, help="0-100, for jpeg and webp output.")
    frame_count = Int(None, allow_none=True, help="GIF frames, 2-16 (None: the model's default).")
    frame_duration_ms = Int(
        None, allow_none=True, help="How long each GIF frame shows, in ms (None: the model's default)."
    )
    partial_images = Int(0, help="Partial previews streamed per image (0 = off).")
    moderation = Unicode(None, allow_none=True, help="GPT image moderation: auto or low (generations).")
    complexity = Unicode(None, allow_none=True, help="Planning effort (GPT Image 2.6): low, medium, high.")
    input_fidelity = Unicode(None, allow_none=True, help="How closely edits keep input details: high or low.")
    seed = Int(
        None, allow_none=True, help="The seed, for engines that honour seeds (None: a new one each time)."
    )

    _syncing = False  # True while the panel itself sets controls: their changes are not user choices
    _n_before = 0  # the count chosen before a one-per-request format (SVG) set it to 1

    def __init__(
        self,
        backend: Backend,
        *,
        model: str | None = None,
        endpoint: str = GENERATIONS,
        models: Sequence[str] | None = None,
        beside_model: Sequence[widgets.Widget] = (),
    ) -> None:
        """``models``: the models offered (default: the backend's for ``endpoint``); ``beside_model``:
        widgets shown beside the model selector (a tab's note on what the chosen model does)."""
        self.backend = backend
        self.endpoint = endpoint
        self._models = list(backend.models(endpoint) if models is None else models) or [model or "dall-e-2"]
        self.model_control = _dropdown()
        self.model_control.options = [(model_label(backend, name), name) for name in self._models]
        self.model_note = widgets.HTML(layout=widgets.Layout(margin="0 0 0 8px"))
        self.model_note.add_class("ipyimagegen-note")
        self.size_control = _dropdown()
        # A text box, not a number box: the browser's number box clamps 11 to 10 and rounds 2.5
        # without a word; here the panel reads what was typed and says what it did with it.
        self.n_control = widgets.Text(value="1", continuous_update=False, layout=widgets.Layout(width="80px"))
        self.n_control.add_class("ipyimagegen-n")
        self.n_problem = ""  # what the panel said about the last count typed
        self.seed_control = widgets.Text(
            placeholder="random", continuous_update=False, layout=widgets.Layout(width="120px")
        )
        self.seed_control.add_class("ipyimagegen-seed")
        self.seed_note = widgets.HTML(layout=widgets.Layout(margin="0 0 0 8px"))
        self.seed_note.add_class("ipyimagegen-note")
        self.seed_control.observe(lambda change: self._seed_typed(change["new"]), "value")
        self.n_note = widgets.HTML(layout=widgets.Layout(margin="0 0 0 8px"))
        self.n_note.add_class("ipyimagegen-note")
        self.quality_control = _dropdown()
        self.style_control = widgets.ToggleButtons(style={"button_width": "80px"})
        self.background_control = _dropdown()
        self.format_control = _dropdown()
        self.compression_control = widgets.IntSlider(
            value=100, min=0, max=100, layout=widgets.Layout(width=CONTROL_WIDTH)
        )
        self.frame_count_control = _dropdown()
        self.frame_count_control.options = [DEFAULT_CHOICE, *((str(k), k) for k in FRAME_COUNTS)]
        self.frame_count_control.add_class("ipyimagegen-frame-count")
        self.frame_duration_control = _dropdown()
        self.frame_duration_control.options = [
            DEFAULT_CHOICE,
            *((duration_label(d), d) for d in FRAME_DURATIONS_MS),
        ]
        self.frame_duration_control.add_class("ipyimagegen-frame-duration")
        self.frame_count_control.value = self.frame_duration_control.value = ""  # the model's default
        self.partial_control = _dropdown()
        self.moderation_control = _dropdown()
        self.complexity_control = _dropdown()
        self.fidelity_control = _dropdown()

        self.rows = {
            "model": _row(
                "Model",
                widgets.HBox(  # a note goes below the selector where the row has no room beside it
                    [self.model_control, self.model_note, *beside_model],
                    layout={"align_items": "center", "flex_flow": "row wrap"},
                ),
            ),
            "size": _row("Size", self.size_control),
            "n": _row(
                "Images", widgets.HBox([self.n_control, self.n_note], layout={"align_items": "center"})
            ),
            "quality": _row("Quality", self.quality_control),
            "style": _row("Style", self.style_control),
            "background": _row("Background", self.background_control),
            "output_format": _row("Format", self.format_control),
            "output_compression": _row("Compression", self.compression_control),
            "frame_count": _row("Frames", self.frame_count_control),
            "frame_duration_ms": _row("Frame time", self.frame_duration_control),
            "partial_images": _row("Previews", self.partial_control),
            "moderation": _row("Moderation", self.moderation_control),
            "complexity": _row("Complexity", self.complexity_control),
            "input_fidelity": _row("Fidelity", self.fidelity_control),
            "seed": _row(
                "Seed", widgets.HBox([self.seed_control, self.seed_note], layout={"align_items": "center"})
            ),
        }
        common = [self.rows[name] for name in COMMON_ROWS]
        self.more = widgets.Accordion(
            children=[widgets.VBox([row for name, row in self.rows.items() if name not in COMMON_ROWS])],
            titles=("More settings",),
            selected_index=None,
        )
        self.more.add_class("ipyimagegen-more-settings")
        super().__init__([*common, self.more])
        self.add_class("ipyimagegen-params")

        self._controls = {
            "model": self.model_control,
            "size": self.size_control,
            "n": self.n_control,
            "quality": self.quality_control,
            "style": self.style_control,
            "background": self.background_control,
            "output_format": self.format_control,
            "output_compression": self.compression_control,
            "frame_count": self.frame_count_control,
            "frame_duration_ms": self.frame_duration_control,
            "partial_images": self.partial_control,
            "moderation": self.moderation_control,
            "complexity": self.complexity_control,
            "input_fidelity": self.fidelity_control,
        }
        for name, control in self._controls.items():
            control.observe(
                lambda change, name=name: self._control_changed(name, change["new"] or None), "value"
            )
        start = model if model in self._models else self._default_model()
        self.set_trait("model", start)
        self._apply_model()

    # -- state -----------------------------------------------------------------------------

    @property
    def offered_models(self) -> list[str]:
        """The model names the panel offers, in order."""
        return list(self._models)

    @property
    def spec(self) -> ModelSpec:
        return self.backend.spec_for(self.model)

    @property
    def requests_needed(self) -> int:
        """How many API requests the chosen count takes (more than 1 run in parallel)."""
        return requests_needed(GenerateRequest(model=self.model, n=self.n))

    def request(self, prompt: str) -> GenerateRequest:
        """The request for ``prompt`` with the chosen parameters (options the model lacks left unset)."""
        spec = self.spec
        output_format = self.output_format if spec.output_formats else None
        compressible = spec.output_compression and output_format in ("jpeg", "webp")
        streaming = self._streaming_allowed(spec) and output_format not in ("gif", "svg")
        animated = output_format == "gif"
        return GenerateRequest(
            prompt=prompt,
            model=self.model,
            n=self.n,
            size=self.size or None,
            quality=self.quality if len(spec.qualities) > 1 else None,
            style=self.style if spec.styles else None,
            background=self.background if spec.backgrounds else None,
            output_format=output_format,
            output_compression=self.output_compression if compressible else None,
            frame_count=self.frame_count if animated else None,
            frame_duration_ms=self.frame_duration_ms if animated else None,
            partial_images=self.partial_images if streaming and self.partial_images else None,
            moderation=self.moderation if spec.moderations and self.endpoint == GENERATIONS else None,
            complexity=self.complexity if spec.complexities else None,
            seed=self.seed if self.takes_seeds else None,
        )

    @property
    def takes_seeds(self) -> bool:
        """Whether the backend honours seeds (the Seed row is shown only then)."""
        return self.backend.honours_seeds

    def _seed_typed(self, text: str) -> None:
        typed = (text or "").strip()
        if not typed:
            self.seed = None
        elif typed.isdigit() and typed.isascii() and int(typed) < 2**63:
            self.seed = int(typed)
        else:
            self.seed_note.value = (
                f'<span class="ipyimagegen-warning">Seed: a whole number, or empty for a new one each time;'
                f" “{html.escape(typed[:20])}” is not one.</span>"
            )
            return
        self.seed_note.value = "" if self.seed is None else "the same seed and settings make the same image"

    @observe("seed")
    def _seed_changed(self, change: dict[str, Any]) -> None:
        shown = "" if change["new"] is None else str(change["new"])
        if self.seed_control.value.strip() != shown:
            self.seed_control.value = shown

    def edit_request(
        self, prompt: str, images: list[InputImage], mask: InputImage | None = None
    ) -> EditRequest:
        """The edit of ``images`` (a ``mask`` on the first) for ``prompt`` with the chosen parameters."""
        base = self.request(prompt)
        return EditRequest(
            images=list(images),
            mask=mask,
            prompt=base.prompt,
            model=base.model,
            n=base.n,
            size=base.size,
            quality=base.quality,
            background=base.background,
            output_format=base.output_format,
            output_compression=base.output_compression,
            frame_count=base.frame_count,
            frame_duration_ms=base.frame_duration_ms,
            partial_images=base.partial_images,
            complexity=base.complexity,
            input_fidelity=self.input_fidelity if self.spec.input_fidelities else None,
            seed=base.seed,
        )

    def apply(self, settings: Mapping[str, Any]) -> list[str]:
        """Set the parameters in ``settings`` (model first); returns the names of those skipped.

        A value the backend or the chosen model does not take is skipped, and that parameter
        keeps its current value. Keys that are not parameters of this panel are ignored.
        """
        skipped: list[str] = []
        model = settings.get("model")
        if model and model != self.model:
            try:
                self.model = model
            except TraitError:
                skipped.append("model")
        for name in SETTINGS_ORDER:
            value = settings.get(name)
            if value is None or getattr(self, name) == value:
                continue
            try:
                setattr(self, name, value)
            except TraitError:
                skipped.append(name)
        return skipped

    # -- validation: only what the chosen model takes ------------------------------------------

    @validate("model")
    def _check_model(self, proposal: dict[str, Any]) -> str:
        value = proposal["value"]
        if value not in self._models:
            raise TraitError(f"model must be one of {', '.join(self._models)}, got {value!r}.")
        return value

    @validate("size")
    def _check_size(self, proposal: dict[str, Any]) -> str:
        value = proposal["value"]
        if not size_allowed(self.spec, value):
            raise TraitError(
                f"size must be one of {', '.join(self.spec.sizes)} for {self.model}, got {value!r}."
            )
        return value

    @validate("n")
    def _check_n(self, proposal: dict[str, Any]) -> int:
        value = proposal["value"]
        if not 1 <= value <= N_MAX:
            raise TraitError(f"n must be from 1 to {N_MAX}, got {value}.")
        if value > 1 and self.output_format in ONE_PER_REQUEST_FORMATS:
            raise TraitError(f"{self.output_format.upper()} output makes one image per request: n must be 1.")
        return value

    @validate("frame_count")
    def _check_frame_count(self, proposal: dict[str, Any]) -> int | None:
        value = proposal["value"]
        if value is not None and value not in FRAME_COUNTS:
            raise TraitError(f"frame_count must be from 2 to 16, got {value}.")
        return value

    @validate("frame_duration_ms")
    def _check_frame_duration(self, proposal: dict[str, Any]) -> int | None:
        value = proposal["value"]
        if value is not None and not 0 <= value <= MAX_FRAME_DURATION_MS:
            raise TraitError(f"frame_duration_ms must be from 0 to {MAX_FRAME_DURATION_MS}, got {value}.")
        return value

    def _check_choice(self, name: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
        if value is None or value in allowed:
            return value
        if not allowed:
            raise TraitError(f"{self.model} does not take {name}.")
        raise TraitError(f"{name} must be one of {', '.join(allowed)} for {self.model}, got {value!r}.")

    @validate("quality")
    def _check_quality(self, proposal: dict[str, Any]) -> str | None:
        return self._check_choice("quality", proposal["value"], self.spec.qualities)

    @validate("style")
    def _check_style(self, proposal: dict[str, Any]) -> str | None:
        return self._check_choice("style", proposal["value"], self.spec.styles)

    @validate("background")
    def _check_background(self, proposal: dict[str, Any]) -> str | None:
        return self._check_choice("background", proposal["value"], self.spec.backgrounds)

    @validate("output_format")
    def _check_format(self, proposal: dict[str, Any]) -> str | None:
        value = self._check_choice("output_format", proposal["value"], self._output_formats())
        if value == "jpeg" and self.background == "transparent":
            raise TraitError("A transparent background needs png or webp: JPEG has no transparency.")
        return value

    @validate("moderation")
    def _check_moderation(self, proposal: dict[str, Any]) -> str | None:
        return self._check_choice("moderation", proposal["value"], self.spec.moderations)

    @validate("complexity")
    def _check_complexity(self, proposal: dict[str, Any]) -> str | None:
        return self._check_choice("complexity", proposal["value"], self.spec.complexities)

    @validate("input_fidelity")
    def _check_fidelity(self, proposal: dict[str, Any]) -> str | None:
        return self._check_choice("input_fidelity", proposal["value"], self.spec.input_fidelities)

    @validate("output_compression")
    def _check_compression(self, proposal: dict[str, Any]) -> int:
        value = proposal["value"]
        if not 0 <= value <= 100:
            raise TraitError(f"output_compression must be from 0 to 100, got {value}.")
        return value

    @validate("partial_images")
    def _check_partial(self, proposal: dict[str, Any]) -> int:
        value = proposal["value"]
        limit = self.spec.partial_images_max if self._streaming_allowed(self.spec) else 0
        if not 0 <= value <= limit:
            raise TraitError(f"partial_images must be from 0 to {limit} for {self.model}, got {value}.")
        return value

    # -- keeping traits and controls in step ----------------------------------------------------

    @observe("model")
    def _model_changed(self, _change: dict[str, Any]) -> None:
        self._apply_model()

    @observe("background")
    def _background_changed(self, _change: dict[str, Any]) -> None:
        self._show("background", self.background)
        if self.background == "transparent" and self.output_format == "jpeg":
            self.output_format = "png"
        self._refresh_formats()

    @observe("output_format")
    def _format_changed(self, change: dict[str, Any]) -> None:
        self._show("output_format", self.output_format)
        if change["new"] in ONE_PER_REQUEST_FORMATS and self.n > 1:
            self._n_before = self.n  # given back when another format is chosen
            self.set_trait("n", 1)
            self._show("n", 1)
        elif change["old"] in ONE_PER_REQUEST_FORMATS and change["new"] not in ONE_PER_REQUEST_FORMATS:
            if self._n_before > 1:
                self.n = self._n_before
            self._n_before = 0
        self.n_control.disabled = self.output_format in ONE_PER_REQUEST_FORMATS
        self._refresh_note()
        self._refresh_visibility()

    @observe(
        "size",
        "n",
        "quality",
        "style",
        "output_compression",
        "partial_images",
        "moderation",
        "complexity",
        "input_fidelity",
        "frame_count",
        "frame_duration_ms",
    )
    def _value_changed(self, change: dict[str, Any]) -> None:
        self._show(change["name"], change["new"])
        if change["name"] == "n":
            self.n_problem = ""
            self._refresh_note()

    def _control_changed(self, name: str, value: Any) -> None:
        """A user's choice in a control becomes the trait (the control is put back if refused)."""
        if name == "n" and not self._syncing:
            self._count_typed(str(value or ""))
            return
        if self._syncing or getattr(self, name) == value:
            return
        try:
            setattr(self, name, value)
        except TraitError:
            self._show(name, getattr(self, name))

    def _count_typed(self, text: str) -> None:
        """The Images box: a whole number from 1 to N_MAX; a larger one is lowered (and said so),
        anything else is refused (and said so) and the count stays as it was."""
        typed = text.strip()
        problem = ""
        one_only = self.output_format in ONE_PER_REQUEST_FORMATS
        if typed.isdigit() and typed.isascii():
            wanted = int(typed)
            count = 1 if one_only else min(max(wanted, 1), N_MAX)
            if count != wanted and one_only:
                problem = f"{str(self.output_format).upper()} output makes one image per request, so 1"
            elif count != wanted:
                problem = f"at most {N_MAX} at once, so {count}" if wanted > N_MAX else "at least 1, so 1"
            self.n = count
        else:
            problem = f"a whole number from 1 to {N_MAX}; “{html.escape(typed[:20])}” is not one"
        self._show("n", self.n)  # the box shows the count used ("011" reads "11", "2.5" the old count)
        self.n_problem = problem
        self._refresh_note()

    def _show(self, name: str, value: Any) -> None:
        control = self._controls[name]
        if name == "n":
            value = str(value)
        if name in ("complexity", "input_fidelity", "frame_count", "frame_duration_ms") and value is None:
            value = ""  # the "model's default" choice
        if name == "frame_duration_ms" and value not in ("", *(v for _label, v in control.options)):
            previous, self._syncing = self._syncing, True
            try:  # a duration from a saved result that the list lacks: offered too, in its place
                durations = sorted({*FRAME_DURATIONS_MS, value})
                control.options = [DEFAULT_CHOICE, *((duration_label(d), d) for d in durations)]
            finally:
                self._syncing = previous
        if control.value != value and value is not None:
            previous, self._syncing = self._syncing, True
            try:
                control.value = value
            finally:
                self._syncing = previous

    def _set_options(self, control: widgets.Widget, options: list[Any], value: Any) -> None:
        previous, self._syncing = self._syncing, True
        try:
            control.options = options  # resets the value to the first option...
            control.value = value  # ...so the value is set after
        finally:
            self._syncing = previous

    def _default_model(self) -> str:
        try:
            chosen = self.backend.model_for(self.endpoint)
        except Exception:
            chosen = None
        return chosen if chosen in self._models else self._models[0]

    def _streaming_allowed(self, spec: ModelSpec) -> bool:
        return spec.partial_images_max > 0 and bool(self.backend.supports_streaming(spec.name))

    def _apply_model(self) -> None:
        """Offer what the chosen model takes; keep earlier choices where they still apply."""
        spec = self.spec
        self._syncing = True
        try:
            self.model_control.value = self.model
            size = self.size if self.size in spec.sizes else spec.default_size
            self._set_options(self.size_control, [(size_label(s), s) for s in spec.sizes], size)
            self.set_trait("size", size)

            quality = self.quality if self.quality in spec.qualities else spec.default_quality
            self._set_options(self.quality_control, list(spec.qualities), quality)
            self.set_trait("quality", quality)

            style = self.style if self.style in spec.styles else (spec.styles[0] if spec.styles else None)
            self._set_options(self.style_control, list(spec.styles), style)
            self.set_trait("style", style)

            background = self.background if self.background in spec.backgrounds else None
            if background is None and spec.backgrounds:
                background = spec.backgrounds[0]
            self._set_options(self.background_control, list(spec.backgrounds), background)
            self.set_trait("background", background)

            output_format = self.output_format if self.output_format in spec.output_formats else None
            if output_format is None and spec.output_formats:
                output_format = spec.output_formats[0]
            self.set_trait("output_format", output_format)

            limit = spec.partial_images_max if self._streaming_allowed(spec) else 0
            partial = min(self.partial_images, limit)
            options = [("off", 0)] + [(f"{k} per image", k) for k in range(1, limit + 1)]
            self._set_options(self.partial_control, options, partial)
            self.set_trait("partial_images", partial)

            moderation = self.moderation if self.moderation in spec.moderations else None
            moderation = moderation or (spec.moderations[0] if spec.moderations else None)
            self._set_options(self.moderation_control, list(spec.moderations), moderation)
            self.set_trait("moderation", moderation)
            for name, control, allowed in (
                ("complexity", self.complexity_control, spec.complexities),
                ("input_fidelity", self.fidelity_control, spec.input_fidelities),
            ):
                kept = getattr(self, name) if getattr(self, name) in allowed else None
                self._set_options(control, [DEFAULT_CHOICE, *((v, v) for v in allowed)], kept or "")
                self.set_trait(name, kept)
            self._refresh_model_note()
        finally:
            self._syncing = False
        self._refresh_formats()
        self._refresh_note()

    def _refresh_model_note(self) -> None:
        end = shutdown_ahead(self.backend, self.model)
        if end is not None:
            newest = [name for name in self._models if name != self.model][:1]
            instead = " or ".join(self.spec.lifecycle.replacements or newest) or "a newer model"
            self.model_note.value = f"shuts down on {end.isoformat()}: move to {instead}"
        else:
            self.model_note.value = ""

    def _output_formats(self) -> tuple[str, ...]:
        """The model's output formats this panel offers: an edit's mask cannot make a GIF, so not there."""
        if self.endpoint == EDITS:
            return tuple(f for f in self.spec.output_formats if f != "gif")
        return self.spec.output_formats

    def _refresh_formats(self) -> None:
        formats = [
            f for f in self._output_formats() if not (f == "jpeg" and self.background == "transparent")
        ]
        value = self.output_format if self.output_format in formats else (formats[0] if formats else None)
        self._set_options(self.format_control, formats, value)
        if value != self.output_format:
            self.output_format = value
        self._refresh_visibility()

    def _refresh_visibility(self) -> None:
        spec = self.spec
        shown = {
            "quality": len(spec.qualities) > 1,
            "style": bool(spec.styles),
            "background": bool(spec.backgrounds),
            "output_format": bool(spec.output_formats),
            "output_compression": spec.output_compression and self.output_format in ("jpeg", "webp"),
            "frame_count": self.output_format == "gif",
            "frame_duration_ms": self.output_format == "gif",
            "partial_images": self._streaming_allowed(spec) and self.output_format not in ("gif", "svg"),
            "moderation": bool(spec.moderations) and self.endpoint == GENERATIONS,
            "complexity": bool(spec.complexities),
            "input_fidelity": bool(spec.input_fidelities) and self.endpoint == EDITS,
            "seed": self.takes_seeds,
        }
        for name, visible in shown.items():
            self.rows[name].layout.display = None if visible else "none"
        offered = [
            ROW_LABELS.get(name, name)
            for name, visible in shown.items()
            if visible and name not in COMMON_ROWS
        ]
        self.more.set_title(0, f"More settings: {', '.join(offered)}" if offered else "More settings")
        self.more.layout.display = None if offered else "none"

    def _refresh_note(self) -> None:
        needed = self.requests_needed
        notes = []
        if self.n_problem:
            notes.append(f'<span class="ipyimagegen-warning">Images: {self.n_problem}.</span>')
        if self.output_format in ONE_PER_REQUEST_FORMATS:
            notes.append(f"{str(self.output_format).upper()}: one drawing per request")
        if needed > 1:
            per = self.spec.n_max
            made = "1 image" if per == 1 else f"{per} images"
            notes.append(f"{needed} requests in parallel ({self.model} makes {made} per request)")
        self.n_note.value = " ".join(notes)

    def is_shown(self, name: str) -> bool:
        """Whether the control for parameter ``name`` is shown for the chosen model."""
        return self.rows[name].layout.display != "none"
