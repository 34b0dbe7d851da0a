"""Images API parameters from a JSON body or a multipart form, checked as the public API checks them.

Unknown parameters, missing ones and values of the wrong type are refused with the API's own
messages (``Unknown parameter: 'foo'.``); the values themselves are checked later, against the
model, by :func:`ipyimagegen.api.validation.validate_request`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData, UploadFile

from ..api.types import (
    EditRequest,
    GenerateRequest,
    ImageRequest,
    InputImage,
    VariationRequest,
    sniff_mime_type,
)
from ..errors import ImageInputError, continued
from ..models import EDITS, GENERATIONS, VARIATIONS, ModelChoice, effective_size
from .replies import ErrorReply, bad_request

ChooseModel = Callable[[str, dict[str, Any]], ModelChoice]
"""The backend's rule for the model a call means when it names none (``Backend.choose_model``)."""

MAX_INPUT_PIXELS = 36_000_000  # 6000 x 6000: more is refused before an engine decodes it
UPLOAD_MIME_TYPES = ("image/png", "image/jpeg", "image/webp")

_COMMON: dict[str, type] = {
    "model": str,
    "n": int,
    "size": str,
    "response_format": str,
    "user": str,
    "safety_identifier": str,
    "seed": int,
}
_OUTPUT: dict[str, type] = {
    "quality": str,
    "background": str,
    "output_format": str,
    "output_compression": int,
    "partial_images": int,
    "stream": bool,
    "complexity": str,
    "frame_count": int,
    "frame_duration_ms": int,
    "svg": dict,
}
GENERATION_PARAMS: dict[str, type] = {**_COMMON, **_OUTPUT, "prompt": str, "style": str, "moderation": str}
EDIT_PARAMS: dict[str, type] = {**_COMMON, **_OUTPUT, "prompt": str, "input_fidelity": str}
VARIATION_PARAMS: dict[str, type] = dict(_COMMON)
EDIT_FILES = ("image", "image[]", "mask", "markup")
_OBJECT_FIELD = re.compile(r"^([a-z_]+)((?:\[[a-z_]+\])+)$")
VARIATION_FILES = ("image",)

_TYPE_NAMES = {str: "a string", int: "an integer", bool: "a boolean", dict: "an object"}


@dataclass
class ParsedCall:
    """A request to run, and whether to answer with a stream of events."""

    request: ImageRequest
    stream: bool = False


@dataclass
class FormParts:
    """A multipart form split into text fields and uploaded files (name -> [(filename, bytes)])."""

    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, list[tuple[str, bytes]]] = field(default_factory=dict)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _invalid_type(name: str, expected: type, got: str) -> ErrorReply:
    return bad_request(
        f"Invalid type for '{name}': expected {_TYPE_NAMES[expected]}, but got {got} instead.",
        name,
        code="invalid_type",
    )


def _from_json(name: str, value: Any, expected: type) -> Any:
    if value is None:
        return None
    ok = isinstance(value, expected) and (expected is bool or not isinstance(value, bool))
    if not ok:
        raise _invalid_type(name, expected, _json_type(value))
    return value


def _from_form(name: str, value: str, expected: type) -> Any:
    if expected is dict:
        raise bad_request(
            f"Send '{name}' as form fields such as '{name}[model]', not as one text field.", name
        )
    if expected is int:
        try:
            return int(value.strip())
        except ValueError:
            raise _invalid_type(name, int, f"{value!r}") from None
    if expected is bool:
        text = value.strip().lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise _invalid_type(name, bool, f"{value!r}")
    return value


def _check_names(
    names: list[str], allowed: dict[str, type] | tuple[str, ...], *extra: tuple[str, ...]
) -> None:
    known = set(allowed).union(*extra)
    for name in names:
        if name not in known and _object_root(name) not in known:
            raise bad_request(f"Unknown parameter: '{name}'.", name, code="unknown_parameter")


def _object_root(name: str) -> str | None:
    """``svg`` for a form field ``svg[model]`` or ``svg[reasoning][effort]`` (None for a plain name)."""
    match = _OBJECT_FIELD.match(name)
    return match.group(1) if match else None


def _object_fields(fields: dict[str, str], params: dict[str, type]) -> dict[str, Any]:
    """Form fields such as ``svg[model]`` folded into objects (``{"svg": {"model": ...}}``)."""
    objects: dict[str, Any] = {}
    for name in [n for n in fields if _object_root(n)]:
        root = _object_root(name) or ""
        if params.get(root) is not dict:
            raise bad_request(f"Unknown parameter: '{name}'.", name, code="unknown_parameter")
        keys = re.findall(r"\[([a-z_]+)\]", name)
        node = objects.setdefault(root, {})
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise bad_request(f"'{name}' conflicts with another field.", name)
        node[keys[-1]] = fields.pop(name)
    return objects


def _require(values: dict[str, Any], name: str) -> None:
    if values.get(name) is None:
        raise bad_request(f"Missing required parameter: '{name}'.", name, code="missing_required_parameter")


def _split_stream(values: dict[str, Any]) -> bool:
    return bool(values.pop("stream", None))


def _model(values: dict[str, Any], endpoint: str, choose: ChooseModel, **given: Any) -> None:
    """Set ``model`` (and ``model_reason``) in ``values``: the one named, else the one the call means;
    and the size the call gets (a DALL-E model's default), so every check sees what will be made."""
    if not values.get("model"):
        choice = choose(endpoint, {**values, **given})
        values["model"], values["model_reason"] = choice.model, choice.reason
    if isinstance(values["model"], str):
        values["size"] = effective_size(values["model"], values.get("size"))


def parse_generation(body: Any, choose: ChooseModel) -> ParsedCall:
    """A :class:`GenerateRequest` from the JSON body of ``POST /images/generations``."""
    if not isinstance(body, dict):
        raise bad_request(f"The body must be a JSON object of parameters, got {_json_type(body)}.", code=None)
    _check_names(list(body), GENERATION_PARAMS)
    values = {name: _from_json(name, value, GENERATION_PARAMS[name]) for name, value in body.items()}
    _require(values, "prompt")
    values = {name: value for name, value in values.items() if value is not None}
    _model(values, GENERATIONS, choose)
    stream = _split_stream(values)
    return ParsedCall(GenerateRequest(**values), stream)


async def read_form(form: FormData, file_fields: tuple[str, ...], params: dict[str, type]) -> FormParts:
    """Text fields and uploads of a multipart form; anything out of place is a 400."""
    _check_names([name for name, _ in form.multi_items()], params, file_fields)
    _check_edit_order(form)
    parts = FormParts()
    for name, value in form.multi_items():
        if name in file_fields:
            if not isinstance(value, UploadFile):
                raise bad_request(f"'{name}' must be a file upload, not a text field.", name.rstrip("[]"))
            parts.files.setdefault(name, []).append((value.filename or name, await value.read()))
        elif isinstance(value, UploadFile):
            raise bad_request(f"'{name}' must be a text field, not a file upload.", name)
        elif name in parts.fields:
            raise bad_request(f"'{name}' is given more than once.", name)
        else:
            parts.fields[name] = value
    return parts


def _check_edit_order(form: FormData) -> None:
    """A mask file sent as the prompt and the prompt as the mask: arguments in another SDK's order."""
    if isinstance(form.get("prompt"), UploadFile) and isinstance(form.get("mask"), str):
        raise bad_request(
            "The prompt arrived as a file and the mask as text: the edit's arguments are in another order "
            "than the client takes. openai-node 3.2 and later take createImageEdit(image, prompt, mask, n, "
            "size): pass the prompt second and the mask third.",
            "mask",
        )


def _typed_fields(parts: FormParts, params: dict[str, type]) -> dict[str, Any]:
    fields = dict(parts.fields)
    objects = _object_fields(fields, params)
    return {**{name: _from_form(name, value, params[name]) for name, value in fields.items()}, **objects}


def input_image(data: bytes, filename: str, param: str) -> InputImage:
    """An uploaded file as an :class:`InputImage`, if its bytes are a PNG, JPEG or WebP image."""
    if not data:
        raise bad_request(f"The '{param}' file is empty.", param, code="invalid_image")
    if sniff_mime_type(data) not in UPLOAD_MIME_TYPES:
        raise bad_request(
            f"The '{param}' file ({filename!r}) is not a PNG, JPEG or WebP image.",
            param,
            code="invalid_image_format",
        )
    return InputImage.from_bytes(data, filename)


def parse_edit(parts: FormParts, choose: ChooseModel) -> ParsedCall:
    """An :class:`EditRequest` from the form of ``POST /images/edits`` (``image`` or ``image[]``, ``mask``)."""
    values = _typed_fields(parts, EDIT_PARAMS)
    uploads = parts.files.get("image", []) + parts.files.get("image[]", [])
    if not uploads:
        raise bad_request("Missing required parameter: 'image'.", "image", code="missing_required_parameter")
    _require(values, "prompt")
    masks = parts.files.get("mask", [])
    markups = parts.files.get("markup", [])
    for name, sent in (("mask", masks), ("markup", markups)):
        if len(sent) > 1:
            raise bad_request(f"Send one '{name}' (it applies to the first image).", name)
    _model(values, EDITS, choose, images=len(uploads), mask=masks or None, markup=markups or None)
    stream = _split_stream(values)
    request = EditRequest(
        images=[input_image(data, filename, "image") for filename, data in uploads],
        mask=input_image(masks[0][1], masks[0][0], "mask") if masks else None,
        markup=input_image(markups[0][1], markups[0][0], "markup") if markups else None,
        **values,
    )
    return ParsedCall(request, stream)


def parse_variation(parts: FormParts, choose: ChooseModel) -> ParsedCall:
    """A :class:`VariationRequest` from the form of ``POST /images/variations``."""
    values = _typed_fields(parts, VARIATION_PARAMS)
    uploads = parts.files.get("image", [])
    if not uploads:
        raise bad_request("Missing required parameter: 'image'.", "image", code="missing_required_parameter")
    if len(uploads) > 1:
        raise bad_request("A variation is made from one 'image'.", "image")
    _model(values, VARIATIONS, choose)
    filename, data = uploads[0]
    return ParsedCall(VariationRequest(image=input_image(data, filename, "image"), **values))


def uploads(request: ImageRequest) -> list[tuple[str, InputImage]]:
    """Every uploaded file of a request, with its parameter name."""
    if isinstance(request, EditRequest):
        found = [("image", image) for image in request.images]
        extra = [(name, getattr(request, name)) for name in ("mask", "markup")]
        return found + [(name, image) for name, image in extra if image is not None]
    if isinstance(request, VariationRequest) and request.image is not None:
        return [("image", request.image)]
    return []


def _unusable(param: str, exc: ImageInputError) -> ErrorReply:
    return bad_request(
        f"The '{param}' upload cannot be used: {continued(exc.message)}", param, code="invalid_image"
    )


def check_upload_sizes(request: ImageRequest) -> None:
    """Refuse uploads whose header says they would decode to too many pixels (reads headers only)."""
    from ..imaging import image_size

    for param, image in uploads(request):
        try:
            width, height = image_size(image.data)
        except ImageInputError as exc:
            raise _unusable(param, exc) from None
        if width * height > MAX_INPUT_PIXELS:
            raise bad_request(
                f"The '{param}' image is {width}x{height} pixels; this server takes at most "
                f"{MAX_INPUT_PIXELS // 1_000_000} million pixels. Use a smaller image.",
                param,
                code="image_too_large",
            )


def check_uploads_decode(request: ImageRequest) -> None:
    """Refuse uploads that do not decode (a 400 each); run once the call is admitted, it decodes them all."""
    from ..imaging import open_image

    for param, image in uploads(request):
        try:
            open_image(image.data)
        except ImageInputError as exc:
            raise _unusable(param, exc) from None
