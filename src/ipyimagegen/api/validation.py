"""Check a request against the model capability table before anything is sent.

Every message names the field and the values allowed, so the user knows what to change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..models import ModelSpec, model_spec, models_for, size_allowed
from .errors import ValidationError
from .types import EditRequest, GenerateRequest, ImageRequest, InputImage, VariationRequest


def _choices(values: Iterable[str]) -> str:
    return ", ".join(repr(v) for v in values)


def _check_choice(spec: ModelSpec, param: str, value: str | None, allowed: Sequence[str]) -> None:
    if value is None or spec.family == "custom":
        return
    if not allowed:
        raise ValidationError(f"{spec.name} does not take {param!r} (got {value!r}).", param=param)
    if value not in allowed:
        raise ValidationError(
            f"{param} must be one of {_choices(allowed)} for {spec.name}, got {value!r}.", param=param
        )


def _check_prompt(spec: ModelSpec, prompt: str) -> None:
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValidationError("The prompt is empty: describe the image you want.", param="prompt")
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
        raise ValidationError(
            f"n must be between 1 and {spec.n_max} for {spec.name}, got {request.n} "
            "(ask for more with parallel requests: ipyimagegen.run_parallel).",
            param="n",
        )
    if request.size is not None and not size_allowed(spec, request.size):
        raise ValidationError(
            f"size must be one of {_choices(spec.sizes)} for {spec.name}, got {request.size!r}.",
            param="size",
        )
    if request.response_format is not None:
        if spec.is_gpt_image:
            raise ValidationError(
                f"{spec.name} always returns base64 images: leave response_format unset.",
                param="response_format",
            )
        _check_choice(spec, "response_format", request.response_format, spec.response_formats)


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
        if output_format in (None, "png") and spec.family != "custom":
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
            f"{spec.max_input_bytes // 2**20} MB.",
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


def validate_request(request: ImageRequest) -> ModelSpec:
    """Raise :class:`ValidationError` if ``request`` cannot be sent; return the model's spec."""
    spec = model_spec(request.model)
    _check_common(spec, request)
    if isinstance(request, GenerateRequest):
        _check_prompt(spec, request.prompt)
        _check_choice(spec, "style", request.style, spec.styles)
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
