"""Check a request against the model capability table before anything is sent.

Every message names the field and the values allowed, so the user knows what to change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date

from ..errors import ModelShutDownError, ValidationError
from ..models import CUSTOM, ModelSpec, live_models, model_spec, models_for, size_allowed, today
from .types import EditRequest, GenerateRequest, ImageRequest, InputImage, VariationRequest


def _choices(values: Iterable[str]) -> str:
    return ", ".join(repr(v) for v in values)


def _takers(param: str, value: str) -> list[str]:
    """Live catalogued models that take ``param=value``."""
    field_name = {"background": "backgrounds", "quality": "qualities", "output_format": "output_formats"}.get(
        param
    )
    if field_name is None:
        return []
    return [name for name in live_models("generations") if value in getattr(model_spec(name), field_name)]


def _check_choice(spec: ModelSpec, param: str, value: str | None, allowed: Sequence[str]) -> None:
    if value is None or spec.family == CUSTOM:
        return
    if not isinstance(value, str):
        raise ValidationError(f"{param} must be a string, got {value!r}.", param=param)
    if value in allowed:
        return
    why = spec.refused.get(f"{param}={value}")
    others = [name for name in _takers(param, value) if name != spec.name]
    instead = f" Models that take it: {_choices(others)}." if others else ""
    if why:
        raise ValidationError(f"{spec.name} does not take {param}={value!r}: {why}.{instead}", param=param)
    if not allowed:
        raise ValidationError(
            f"{spec.name} does not take {param!r} (got {value!r}): leave it unset.{instead}", param=param
        )
    raise ValidationError(
        f"{param} must be one of {_choices(allowed)} for {spec.name}, got {value!r}.{instead}", param=param
    )


def check_lifecycle(spec: ModelSpec, *, shutdown: date | None = None, on: date | None = None) -> None:
    """Raise :class:`ModelShutDownError` if ``spec`` is past its shutdown date (or ``shutdown``, which overrides it)."""
    end = shutdown or spec.lifecycle.shutdown  # a snapshot carries its model's lifecycle
    if end is not None and end <= (on or today()):
        raise ModelShutDownError(spec.name, end.isoformat(), spec.lifecycle.replacements)


def _check_prompt(spec: ModelSpec, prompt: str) -> None:
    if not isinstance(prompt, str):
        raise ValidationError(
            f"The prompt must be text (a string), got {type(prompt).__name__} {prompt!r}.", param="prompt"
        )
    if not prompt.strip():
        raise ValidationError("The prompt is empty: describe the image you want.", param="prompt")
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = prompt[exc.start : exc.end].encode("unicode_escape").decode("ascii")
        raise ValidationError(
            f"The prompt holds {bad} at character {exc.start + 1}, half of a character pair that is not "
            "valid text: retype or remove it.",
            param="prompt",
        ) from None
    if len(prompt) > spec.prompt_max:
        raise ValidationError(
            f"The prompt has {len(prompt)} characters; {spec.name} takes at most {spec.prompt_max}. "
            "Shorten it.",
            param="prompt",
        )


def _check_common(spec: ModelSpec, request: ImageRequest) -> None:
    if not spec.serves(request.endpoint):
        others = _choices(models_for(request.endpoint)) or "none"
        raise ValidationError(
            f"{spec.name} does not do {request.endpoint}. Models that do: {others}.", param="model"
        )
    if not isinstance(request.n, int) or isinstance(request.n, bool) or request.n < 1:
        raise ValidationError(f"n must be a whole number of at least 1, got {request.n!r}.", param="n")
    if request.n > spec.n_max:
        told = (
            f"{spec.name} makes one image per request: n must be 1, got {request.n}."
            if spec.n_max == 1
            else f"n must be between 1 and {spec.n_max} for {spec.name}, got {request.n}."
        )
        raise ValidationError(
            f"{told[:-1]}: ask for fewer, or send several requests.",
            param="n",
            hint="ipyimagegen.run_parallel (and the studio's Images box) sends as many requests as it takes.",
        )
    if request.size is not None and not (isinstance(request.size, str) and size_allowed(spec, request.size)):
        rule = f", or any size with {spec.size_rule()}" if spec.custom_sizes else ""
        raise ValidationError(
            f"size must be one of {_choices(spec.sizes)}{rule} for {spec.name}, got {request.size!r}.",
            param="size",
        )
    for name in ("user", "safety_identifier"):
        value = getattr(request, name)
        if value is not None and not isinstance(value, str):
            raise ValidationError(f"{name} must be a string, got {value!r}.", param=name)
    if request.response_format is not None:
        if spec.is_gpt_image:
            raise ValidationError(
                f"{spec.name} always returns base64 images: leave response_format unset.",
                param="response_format",
            )
        _check_choice(spec, "response_format", request.response_format, spec.response_formats)


def _check_animation(spec: ModelSpec, request: GenerateRequest | EditRequest) -> None:
    """GIF and SVG output, and the parameters that go only with them."""
    output_format = request.output_format
    if output_format != "gif":
        for name in ("frame_count", "frame_duration_ms"):
            if getattr(request, name) is not None:
                raise ValidationError(f"{name} goes with output_format='gif' only.", param=name)
    else:
        if request.frame_count is not None and (
            not isinstance(request.frame_count, int) or not 2 <= request.frame_count <= 16
        ):
            raise ValidationError(
                f"frame_count must be a whole number from 2 to 16, got {request.frame_count!r}.",
                param="frame_count",
            )
        duration = request.frame_duration_ms
        if duration is not None and (not isinstance(duration, int) or not 0 <= duration <= 655_350):
            raise ValidationError(
                f"frame_duration_ms must be a whole number from 0 to 655350, got {duration!r}.",
                param="frame_duration_ms",
            )
    if output_format != "svg" and request.svg is not None:
        raise ValidationError("svg goes with output_format='svg' only.", param="svg")
    if output_format == "svg":
        if request.n != 1:
            raise ValidationError(
                f"SVG output makes one image per request (n=1), got n={request.n}.", param="n"
            )
        svg = request.svg
        if svg is not None and not (isinstance(svg, dict) and isinstance(svg.get("model"), str)):
            raise ValidationError("svg must be an object with a 'model' (the SVG author).", param="svg")
    if output_format in ("gif", "svg"):
        if request.partial_images:
            raise ValidationError(
                f"{output_format.upper()} output does not stream partial images.", param="partial_images"
            )
        if request.output_compression is not None:
            raise ValidationError(
                f"{output_format.upper()} output takes no output_compression.", param="output_compression"
            )
    if output_format == "gif" and isinstance(request, EditRequest) and request.mask is not None:
        raise ValidationError(
            "GIF output cannot be combined with a mask: choose output_format 'png', 'jpeg' or 'webp' for an "
            "edit with a mask, or send no mask for a GIF.",
            param="mask",
        )


def _check_output(
    spec: ModelSpec,
    quality: str | None,
    background: str | None,
    output_format: str | None,
    output_compression: int | None,
    partial_images: int | None,
) -> None:
    _check_choice(spec, "quality", quality, spec.qualities)
    _check_choice(spec, "background", background, spec.backgrounds)
    _check_choice(spec, "output_format", output_format, spec.output_formats)
    if output_compression is not None:
        if spec.family != "custom" and not spec.output_compression:
            raise ValidationError(
                f"{spec.name} does not take output_compression.", param="output_compression"
            )
        if not isinstance(output_compression, int) or not 0 <= output_compression <= 100:
            raise ValidationError(
                f"output_compression must be a whole number from 0 to 100, got {output_compression!r}.",
                param="output_compression",
            )
        if output_format not in ("jpeg", "webp") and spec.family != "custom":
            raise ValidationError(
                "output_compression applies to output_format 'jpeg' or 'webp' only.",
                param="output_compression",
            )
    if background == "transparent" and output_format == "jpeg":
        raise ValidationError(
            "A transparent background needs output_format 'png' or 'webp' (JPEG has no transparency).",
            param="background",
        )
    if partial_images is not None and partial_images != 0:
        if spec.family != "custom" and not spec.partial_images_max:
            raise ValidationError(f"{spec.name} does not stream partial images.", param="partial_images")
        limit = spec.partial_images_max or 3
        if not isinstance(partial_images, int) or not 0 <= partial_images <= limit:
            raise ValidationError(
                f"partial_images must be from 0 to {limit}, got {partial_images!r}.", param="partial_images"
            )


def _check_input(spec: ModelSpec, image: InputImage, what: str, param: str) -> None:
    if not image.data:
        raise ValidationError(f"The {what} is empty.", param=param)
    if spec.family != "custom" and image.mime_type not in spec.input_mime_types:
        raise ValidationError(
            f"The {what} must be {' or '.join(m.split('/')[1].upper() for m in spec.input_mime_types)} "
            f"for {spec.name}, got {image.mime_type}.",
            param=param,
            hint="Prepare it with ipyimagegen.imaging.prepare_input_image().",
        )
    if len(image.data) > spec.max_input_bytes:
        raise ValidationError(
            f"The {what} is {len(image.data) / 2**20:.1f} MB; {spec.name} takes at most "
            f"{spec.max_input_bytes // 2**20} MB: send it smaller (fewer pixels, or simpler).",
            param=param,
            hint="Use a smaller size, or let ipyimagegen.imaging.prepare_input_image() shrink it.",
        )
    if spec.needs_square_png_input:
        from ..imaging import image_size

        width, height = image_size(image.data)
        if width != height:
            raise ValidationError(
                f"{spec.name} needs a square image; the {what} is {width}x{height}. "
                "Crop or pad it to a square first.",
                param=param,
            )


def _check_mask(image: InputImage, mask: InputImage) -> None:
    from ..imaging import image_size

    if mask.mime_type != "image/png":
        raise ValidationError("The mask must be a PNG with an alpha channel.", param="mask")
    image_wh, mask_wh = image_size(image.data), image_size(mask.data)
    if image_wh != mask_wh:
        raise ValidationError(
            f"The mask is {mask_wh[0]}x{mask_wh[1]} but the image is {image_wh[0]}x{image_wh[1]}: "
            "they must be the same size.",
            param="mask",
            hint="ipyimagegen.imaging.prepare_mask() resizes a mask to its image.",
        )


def _check_markup(spec: ModelSpec, request: EditRequest) -> None:
    if request.markup is None:
        return
    if spec.family != CUSTOM and not spec.markup:
        raise ValidationError(f"{spec.name} does not take a markup image.", param="markup")
    if request.mask is not None:
        raise ValidationError("Send a mask or a markup image, not both.", param="markup")
    from ..imaging import image_size

    if request.markup.mime_type != "image/png":
        raise ValidationError("The markup must be a PNG with transparent pixels.", param="markup")
    if image_size(request.markup.data) != image_size(request.images[0].data):
        raise ValidationError("The markup must be the same size as the first image.", param="markup")


def validate_request(request: ImageRequest) -> ModelSpec:
    """Raise :class:`ValidationError` if ``request`` cannot be sent; return the model's spec.

    Where the call named no model, a message that names the model it resolved to says why.
    """
    try:
        return _validate(request)
    except ValidationError as exc:
        explain_model(exc, request)
        raise


def explain_model(exc: ValidationError, request: ImageRequest) -> None:
    """Add why the call's model was chosen to ``exc``, where the call named none and the message names it."""
    reason = request.model_reason
    named = re.search(rf"(?<![\w.-]){re.escape(str(request.model))}(?![\w.-]*\w)", exc.message)
    if reason and named and reason not in exc.message:
        exc.message = f"{exc.message.rstrip('.')} ({reason})."
        exc.args = (exc.message,)


def _validate(request: ImageRequest) -> ModelSpec:
    if not isinstance(request.model, str) or not request.model.strip():
        raise ValidationError(f"model must be a model name, got {request.model!r}.", param="model")
    spec = model_spec(request.model)
    _check_common(spec, request)
    if isinstance(request, GenerateRequest):
        _check_prompt(spec, request.prompt)
        _check_choice(spec, "style", request.style, spec.styles)
        _check_choice(spec, "moderation", request.moderation, spec.moderations)
        _check_choice(spec, "complexity", request.complexity, spec.complexities)
        _check_animation(spec, request)
        _check_output(
            spec,
            request.quality,
            request.background,
            request.output_format,
            request.output_compression,
            request.partial_images,
        )
    elif isinstance(request, EditRequest):
        _check_prompt(spec, request.prompt)
        if not request.images:
            raise ValidationError("An edit needs an input image.", param="image")
        if len(request.images) > spec.max_input_images:
            raise ValidationError(
                f"{spec.name} takes at most {spec.max_input_images} input image(s), got {len(request.images)}.",
                param="image",
            )
        for image in request.images:
            _check_input(spec, image, "input image", "image")
        if request.mask is not None:
            _check_mask(request.images[0], request.mask)
        _check_markup(spec, request)
        _check_choice(spec, "input_fidelity", request.input_fidelity, spec.input_fidelities)
        _check_choice(spec, "complexity", request.complexity, spec.complexities)
        _check_animation(spec, request)
        _check_output(
            spec,
            request.quality,
            request.background,
            request.output_format,
            request.output_compression,
            request.partial_images,
        )
    elif isinstance(request, VariationRequest):
        if request.image is None:
            raise ValidationError("A variation needs an input image.", param="image")
        _check_input(spec, request.image, "input image", "image")
    return spec
