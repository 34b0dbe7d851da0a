"""The gallery: every result written to disk, with its metadata, before it is shown.

Layout of a gallery folder (``./ipyimagegen-gallery/`` by default, or ``$IPYIMAGEGEN_GALLERY``)::

    images/<id>.png          the image as the model returned it, metadata in PNG text chunks
    images/<id>.gif          an animated GIF, metadata in a comment extension
    images/<id>.svg          an SVG drawing, metadata in a <metadata> element
    images/<id>.jpg|.webp    JPEG and WebP results, untouched ...
    images/<id>.json         ... with their metadata in this sidecar file
    inputs/<sha256>.<ext>    the input images of edits and variations (content-addressed)
    masks/<sha256>.png       the masks of edits
    thumbnails/<id>-<side>.<ext>   small display copies, made on first use
    index.sqlite             the search index (SQLite, WAL mode)

A PNG carries an ``iTXt`` chunk ``ipyimagegen`` with a JSON document (prompt, revised prompt,
model, size, options, seed, backend, request id, created time, endpoint, parent and input ids)
and readable ``prompt`` and ``Software`` entries; a GIF carries the same document in a comment
(``ipyimagegen:`` and the JSON), an SVG in ``<metadata id="ipyimagegen-metadata">`` (escaped JSON
text). :func:`read_metadata` reads it back (an SVG is parsed safely: no entities, nothing fetched).

The files are the truth and the index is a cache of them. A file is written to a temporary
name in its folder, flushed to disk and renamed into place; only then is its index row added.
Opening a gallery reads nothing but the index, so it takes as long at 50,000 images as at 1,000;
then a background pass indexes any image that has no row (a crash between the rename and the
row, a file put there by hand), drops rows whose file is gone, and removes stale temporary files
(:meth:`Gallery.wait_tidy` waits for it).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import re
import secrets
import threading
import time
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ._version import __version__
from .api.types import (
    EXTENSION_BY_MIME,
    EditRequest,
    GeneratedImage,
    GenerateRequest,
    ImageRequest,
    ImagesResponse,
    InputImage,
    VariationRequest,
    sniff_mime_type,
)
from .gallery_index import Filters, GalleryIndex, Moment, Row, iso, parse_iso, utc_now
from .models import EDITS, GENERATIONS, VARIATIONS
from .pngtext import (
    GIF_SIGNATURES,
    GifFormatError,
    PngFormatError,
    itxt_chunk,
    read_gif_comments,
    read_text,
    text_chunk,
    with_gif_comment,
    with_text_chunks,
)
from .thumbnails import made_thumbnails, small_picture

ENV_VARIABLE = "IPYIMAGEGEN_GALLERY"
DEFAULT_FOLDER = "ipyimagegen-gallery"
METADATA_KEY = "ipyimagegen"
FORMAT_VERSION = 1
STALE_TEMP_S = 60.0
"""Temporary files older than this are left over from a crash and removed when a gallery opens."""

IMAGE_EXTENSIONS = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "svg": "image/svg+xml",
}
EMBEDDED_EXTENSIONS = ("png", "gif", "svg")
"""Image files that carry their metadata inside; the others have a ``.json`` file beside them."""
GIF_COMMENT_PREFIX = f"{METADATA_KEY}:"
INPUT_KINDS = {"input": "inputs", "mask": "masks"}
_INPUT_EXTENSIONS = ("png", "jpg", "webp", "bin")
_THUMBNAIL_EXTENSIONS = ("jpg", "webp", "png")
log = logging.getLogger(__name__)

_REQUEST_TYPES: dict[str, type[GenerateRequest] | type[EditRequest] | type[VariationRequest]] = {
    GENERATIONS: GenerateRequest,
    EDITS: EditRequest,
    VARIATIONS: VariationRequest,
}


_CSV_COLUMNS = (
    "id",
    "file",
    "created",
    "model",
    "endpoint",
    "size",
    "seed",
    "backend",
    "request_id",
    "parent_id",
    "prompt",
    "revised_prompt",
    "options",
    "input_ids",
    "mask_id",
)


# --- files ---------------------------------------------------------------------------------------


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; Windows has no directory handles to sync)."""
    if os.name != "posix":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")


def _is_temporary(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith(".tmp")


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` is either absent, or whole and on disk."""
    temporary = _temporary_name(path)
    try:
        with open(temporary, "xb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


# --- metadata ------------------------------------------------------------------------------------


def _valid_text(value: Any) -> Any:
    """``value`` with every string made valid Unicode: half of a surrogate pair becomes U+FFFD,
    so a result whose prompt holds one is still saved (as UTF-8 in the file and the index)."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, dict):
        return {_valid_text(key): _valid_text(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_valid_text(item) for item in value]
    return value


def _software() -> str:
    return f"ipyimagegen {__version__}"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def embed_metadata(data: bytes, document: dict[str, Any]) -> bytes:
    """PNG ``data`` with ``document`` in an ``iTXt`` chunk (and readable prompt and Software entries).

    The image data is copied byte for byte. Earlier ``ipyimagegen`` and ``prompt`` entries are
    replaced; a ``Software`` entry already there is kept.
    """
    chunks = [itxt_chunk(METADATA_KEY, _json(document))]
    if document.get("prompt"):
        chunks.append(itxt_chunk("prompt", document["prompt"]))
    if "Software" not in read_text(data):
        chunks.append(text_chunk("Software", _software()))
    return with_text_chunks(data, chunks, replace=(METADATA_KEY, "prompt"))


def embed_gif_metadata(data: bytes, document: dict[str, Any]) -> bytes:
    """GIF ``data`` with ``document`` in a comment extension (``ipyimagegen:`` and ASCII JSON)
    before its first frame; an earlier one is replaced, the frames are copied byte for byte."""
    text = GIF_COMMENT_PREFIX + json.dumps(document, ensure_ascii=True, sort_keys=True, default=str)
    return with_gif_comment(data, text, replace_prefix=GIF_COMMENT_PREFIX)


def embed_svg_metadata(data: bytes, document: dict[str, Any]) -> bytes:
    """SVG ``data`` with ``document`` in a ``<metadata>`` element (see :func:`ipyimagegen.svg.with_metadata`)."""
    from . import svg

    return svg.with_metadata(data, document)


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def _document(raw: str | None) -> dict[str, Any]:
    if raw is None:
        return {}
    try:
        document = json.loads(raw)
    except json.JSONDecodeError:
        return {}
    return document if isinstance(document, dict) else {}


def read_metadata(source: bytes | str | os.PathLike[str]) -> dict[str, Any]:
    """The ipyimagegen metadata of a saved image: a PNG's, GIF's or SVG's bytes or path, or a
    JPEG/WebP path.

    PNG files carry it in an ``iTXt`` chunk, GIF files in a comment, SVG files in a ``<metadata>``
    element; JPEG and WebP files (and a GIF or SVG it could not be put into) in the ``.json`` file
    next to them. Returns ``{}`` when there is none (an image saved by something else).
    """
    data: bytes | None = None  # a PNG file is read chunk by chunk, its pixels skipped
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        extension, sidecar = path.suffix.lower().lstrip("."), _sidecar(path)
        if extension != "png" and sidecar.exists():
            return json.loads(sidecar.read_text("utf-8"))
        if extension not in EMBEDDED_EXTENSIONS:
            return {}
        if extension != "png":
            data = path.read_bytes()
    else:
        data = bytes(source)
    if data is not None and data[:6] in GIF_SIGNATURES:
        try:
            comments = read_gif_comments(data)
        except GifFormatError:
            return {}
        ours = [text for text in comments if text.startswith(GIF_COMMENT_PREFIX)]
        return _document(ours[0][len(GIF_COMMENT_PREFIX) :]) if ours else {}
    if data is not None and sniff_mime_type(data) == "image/svg+xml":
        from . import svg

        return svg.read_metadata(data)
    try:
        text = read_text(source if data is None else data)
    except PngFormatError:
        return {}
    return _document(text.get(METADATA_KEY))


def _embedded(data: bytes, extension: str, document: dict[str, Any]) -> bytes | None:
    """The image file with ``document`` inside it, or None where it goes into a ``.json`` file beside
    it (JPEG, WebP, and a GIF or SVG too damaged to take it: it is kept as it came)."""
    if extension == "png":
        return embed_metadata(data, document)
    try:
        if extension == "gif":
            return embed_gif_metadata(data, document)
        if extension == "svg":
            return embed_svg_metadata(data, document)
    except ValueError as exc:  # GifFormatError, SvgError
        log.info("metadata kept beside a %s result that cannot hold it: %s", extension.upper(), exc)
    return None


# --- items ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GalleryItem:
    """One saved image and how it was made. ``data`` reads the file; ``to_request()`` rebuilds the request."""

    id: str
    path: Path
    prompt: str
    revised_prompt: str | None
    model: str | None
    endpoint: str
    size: str | None
    options: dict[str, Any]
    seed: int | None
    backend: str | None
    request_id: str | None
    created: datetime
    parent_id: str | None
    input_ids: list[str]
    mask_id: str | None = None
    mime_type: str = "image/png"
    metadata: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    root: Path | None = field(default=None, repr=False, compare=False)

    @property
    def data(self) -> bytes:
        """The image file's bytes."""
        return self.path.read_bytes()

    @property
    def file(self) -> str:
        """The file name under ``images/``."""
        return self.path.name

    def to_dict(self) -> dict[str, Any]:
        """The item as JSON-ready data (as in the PNG's metadata document)."""
        return {
            "id": self.id,
            "file": f"images/{self.path.name}",
            "created": iso(self.created),
            "prompt": self.prompt,
            "revised_prompt": self.revised_prompt,
            "model": self.model,
            "endpoint": self.endpoint,
            "size": self.size,
            "options": self.options,
            "seed": self.seed,
            "backend": self.backend,
            "request_id": self.request_id,
            "parent_id": self.parent_id,
            "input_ids": self.input_ids,
            "mask_id": self.mask_id,
            "mime_type": self.mime_type,
        }

    def to_request(self) -> ImageRequest:
        """The request that makes this image again: its endpoint, prompt, options and seed, ``n=1``.

        Edits and variations get their stored input images and mask back.
        """
        kind = _REQUEST_TYPES.get(self.endpoint, GenerateRequest)
        names = {f.name for f in fields(kind)} - {"images", "image", "mask", "extra", "prompt"}
        arguments: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in self.options.items():
            if key in names:
                arguments[key] = value
            elif key != "prompt":
                extra[key] = value
        arguments["n"] = 1
        if self.seed is not None:
            arguments["seed"] = self.seed
        if self.model:
            arguments["model"] = self.model
        if kind is GenerateRequest:
            return GenerateRequest(prompt=self.prompt, extra=extra, **arguments)
        images = [self._input(input_id) for input_id in self.input_ids]
        if kind is EditRequest:
            mask = self._input(self.mask_id) if self.mask_id else None
            return EditRequest(prompt=self.prompt, images=images, mask=mask, extra=extra, **arguments)
        return VariationRequest(image=images[0] if images else None, extra=extra, **arguments)

    def _input(self, input_id: str) -> InputImage:
        path = find_input(self.root, input_id) if self.root is not None else None
        if path is None:
            raise FileNotFoundError(
                f"The input image {input_id} of {self.id} is not in the gallery any more; "
                "the request cannot be rebuilt without it."
            )
        return InputImage.from_bytes(path.read_bytes(), path.stem)

    @classmethod
    def from_document(cls, document: dict[str, Any], path: Path, root: Path | None = None) -> GalleryItem:
        created = document.get("created")
        return cls(
            id=str(document.get("id") or path.stem),
            path=path,
            prompt=document.get("prompt") or "",
            revised_prompt=document.get("revised_prompt"),
            model=document.get("model"),
            endpoint=document.get("endpoint") or GENERATIONS,
            size=document.get("size"),
            options=dict(document.get("options") or {}),
            seed=document.get("seed"),
            backend=document.get("backend"),
            request_id=document.get("request_id"),
            created=parse_iso(created) if created else utc_now(),
            parent_id=document.get("parent_id"),
            input_ids=list(document.get("input_ids") or []),
            mask_id=document.get("mask_id"),
            mime_type=document.get("mime_type") or IMAGE_EXTENSIONS.get(path.suffix[1:], "image/png"),
            metadata=document,
            root=root,
        )


def find_input(root: Path, input_id: str) -> Path | None:
    """The stored input image or mask with this id, if the gallery at ``root`` has it."""
    if not re.fullmatch(r"[0-9a-f]{64}", input_id):
        return None
    for folder in INPUT_KINDS.values():
        for extension in _INPUT_EXTENSIONS:
            path = root / folder / f"{input_id}.{extension}"
            if path.exists():
                return path
    return None


def _image_size(data: bytes) -> str | None:
    from .imaging import image_size

    try:
        width, height = image_size(data)
    except Exception:  # a damaged result is still saved as it came
        return None
    return f"{width}x{height}"


# --- the gallery ---------------------------------------------------------------------------------


class OutsideGalleryError(KeyError):
    """An index row names a file outside the gallery's images folder: it is skipped, never touched."""

    def __init__(self, file: str, root: Path) -> None:
        super().__init__(
            f"The gallery at {root} lists a file outside its images folder ({file!r}); it is skipped."
        )
        self.file = file

    def __str__(self) -> str:
        return str(self.args[0])


@runtime_checkable
class GalleryWriter(Protocol):
    """What the studio needs of a gallery: a place that keeps every response before it is shown.

    ``save_response`` returns what it saved, one per image (a :class:`GalleryItem` has an ``id``
    that an edit or variation made from it records)."""

    def save_response(self, response: ImagesResponse, parent_id: str | None = None) -> Sequence[Any]: ...


@runtime_checkable
class GalleryReader(Protocol):
    """What reads a gallery back: its folder, an item, listings and their cost, thumbnails, the inputs
    of an edit, lineage, and a zip of some items (the History tab and the results grid use it)."""

    @property
    def root(self) -> Path: ...

    def get(self, item_id: str) -> GalleryItem: ...

    def items(
        self,
        offset: int = 0,
        limit: int | None = 50,
        text: str | None = None,
        model: str | None = None,
        since: Moment | None = None,
        until: Moment | None = None,
        endpoint: str | None = None,
    ) -> list[GalleryItem]: ...

    def count(
        self,
        text: str | None = None,
        model: str | None = None,
        since: Moment | None = None,
        until: Moment | None = None,
        endpoint: str | None = None,
    ) -> int: ...

    def total_cost(
        self,
        ids: Iterable[str] | None = None,
        *,
        text: str | None = None,
        model: str | None = None,
        since: Moment | None = None,
        until: Moment | None = None,
        endpoint: str | None = None,
        billed: bool = True,
    ) -> float: ...

    def models(self) -> list[str]: ...

    def lineage(self, item_id: str) -> list[GalleryItem]: ...

    def children(self, item_id: str) -> list[GalleryItem]: ...

    def thumbnail(
        self, item_id: str, max_side: int = 256, *, animated: bool = False
    ) -> tuple[bytes, str]: ...

    def input_data(self, input_id: str) -> bytes: ...

    def export(self, ids: Iterable[str] | None, zip_path: str | os.PathLike[str]) -> Path: ...


@runtime_checkable
class GalleryStore(GalleryReader, GalleryWriter, Protocol):
    """A gallery that reads back what it writes (:class:`Gallery`): it also deletes, and keeps the
    thumbnails made while saving, so that the History tab need not make them again."""

    def keep_thumbnails(self, item_id: str, image: GeneratedImage) -> None: ...

    def delete(self, item_id: str) -> None: ...


def _new_id(created: datetime) -> str:
    """Sortable and unique: ``20250102-143005-1a2b3c4d`` (UTC time and 32 random bits)."""
    return f"{created:%Y%m%d-%H%M%S}-{secrets.token_hex(4)}"


def _inside(root: Path, file: str) -> Path | None:
    """The path of an index row's file, if it lies in the images folder (links resolved); else None.

    A gallery folder may come from someone else: a row naming ``../notes.txt``, an absolute
    path or a link out of the folder is never read, exported or deleted.
    """
    path = root / file
    try:
        inside = path.resolve().parent == (root / "images").resolve()
    except (OSError, RuntimeError):  # a loop of links
        inside = False
    return path if inside else None


def _item(root: Path, row: Row) -> GalleryItem:
    """The item of an index row, if its file lies in the images folder."""
    document, file = row
    path = _inside(root, file)
    if path is None:
        raise OutsideGalleryError(file, root)
    return GalleryItem.from_document(json.loads(document), path, root)


def _listed(root: Path, rows: Sequence[Row]) -> list[GalleryItem]:
    items = []
    for row in rows:
        try:
            items.append(_item(root, row))
        except OutsideGalleryError as exc:
            log.warning("%s", exc)
    return items


class Tidying:
    """The background pass that opening a gallery starts: it makes the index agree with the files
    (see the module's notes). It runs in a daemon thread until done or stopped."""

    def __init__(self, root: Path, index: GalleryIndex) -> None:
        self.root = root
        self.index = index
        self.error: Exception | None = None
        """What went wrong, if anything (the index then stays as it was)."""
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ipyimagegen-gallery-tidy", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the pass to end; True once it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the pass where it is, and wait for it to end."""
        self._stopping.set()
        self.wait(timeout)

    def _run(self) -> None:
        try:
            self._reconcile()
        except Exception as exc:  # closed meanwhile, or a folder that cannot be read: the index stays
            if not self._stopping.is_set():
                self.error = exc
                log.warning("could not tidy the gallery in %s", self.root, exc_info=True)

    def _reconcile(self) -> None:
        """Index images that have no row, drop rows whose image is gone, remove stale temporary files.

        The rows are read before the folder: a save writes its file before its row, so a row read
        first whose file is then missing is really gone (and not another process's save in progress).
        """
        images = self.root / "images"
        indexed = self.index.files()
        now = time.time()
        on_disk: dict[str, Path] = {}
        sidecars: list[Path] = []
        for folder in (images, self.root / "thumbnails", *(self.root / f for f in INPUT_KINDS.values())):
            for entry in os.scandir(folder):
                if self._stopping.is_set():
                    return
                path = Path(entry.path)
                try:
                    stale = now - entry.stat().st_mtime > STALE_TEMP_S
                except FileNotFoundError:  # another process renamed or removed it since the listing
                    continue
                if _is_temporary(path):
                    if stale:
                        path.unlink(missing_ok=True)
                elif folder != images:
                    continue
                elif path.suffix[1:] in IMAGE_EXTENSIONS:
                    on_disk[path.stem] = path
                elif path.suffix == ".json" and stale:
                    sidecars.append(path)
        gone = [item_id for item_id in indexed if item_id not in on_disk]
        if gone:
            self.index.remove(gone)
        for item_id, path in on_disk.items():
            if item_id not in indexed:
                try:
                    _adopt(self.index, item_id, path)
                except FileNotFoundError:  # deleted by another process meanwhile: nothing to index
                    continue
        for sidecar in sidecars:  # metadata of an image whose write never finished
            if sidecar.stem not in on_disk:
                sidecar.unlink(missing_ok=True)


def _adopt(index: GalleryIndex, item_id: str, path: Path) -> None:
    """Index an image file that has no row, from the metadata it carries."""
    try:
        document = read_metadata(path)
    except (OSError, ValueError):
        document = {}
    modified = iso(datetime.fromtimestamp(path.stat().st_mtime, timezone.utc))
    try:
        created = iso(parse_iso(str(document.get("created") or modified)))
    except ValueError:
        created = modified
    document = {"prompt": "", "endpoint": GENERATIONS, **document, "id": item_id, "created": created}
    if not document.get("size"):
        document["size"] = _image_size(path.read_bytes())
    document.setdefault("mime_type", IMAGE_EXTENSIONS[path.suffix[1:]])
    index.add(document, f"images/{path.name}", _json(document))


class Gallery:
    """Images on disk with their metadata, indexed in SQLite for listing and search. Thread-safe.
    A :class:`GalleryStore`: it reads back what it writes.

    It owns the files; the rows and their queries are :attr:`index`'s (a
    :class:`~ipyimagegen.gallery_index.GalleryIndex`), and the pass that makes the two agree after
    a crash runs in a :class:`Tidying`.

    ``path`` defaults to ``$IPYIMAGEGEN_GALLERY``, else ``./ipyimagegen-gallery`` (the folder the
    notebook runs in). Several processes may use one gallery at the same time.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        if path is None:
            path = os.environ.get(ENV_VARIABLE) or Path.cwd() / DEFAULT_FOLDER
        self.root = Path(path).expanduser().resolve()
        self.images_dir = self.root / "images"
        self.thumbnails_dir = self.root / "thumbnails"
        for folder in (self.images_dir, self.thumbnails_dir, *(self.root / f for f in INPUT_KINDS.values())):
            folder.mkdir(parents=True, exist_ok=True)
        self.index = GalleryIndex(self.root / "index.sqlite")
        self._tidying = Tidying(self.root, self.index)

    def __repr__(self) -> str:
        state = "closed" if self.index.closed else f"{len(self)} images"
        return f"Gallery({str(self.root)!r}, {state})"

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def wait_tidy(self, timeout: float | None = None) -> bool:
        """Wait for the background pass that opening starts (see the module's notes); True once it is done."""
        return self._tidying.wait(timeout)

    @property
    def tidy_error(self) -> Exception | None:
        """What went wrong in the background pass, if anything (the index then stays as it was)."""
        return self._tidying.error

    def close(self) -> None:
        """Close the index (the files stay). Further use raises an error."""
        self._tidying.stop(timeout=30)
        self.index.close()

    # -- saving -------------------------------------------------------------------------------

    def save(
        self,
        image: GeneratedImage,
        *,
        parent_id: str | None = None,
        inputs: Sequence[str | bytes | InputImage] | None = None,
        backend: str | None = None,
        request_id: str | None = None,
    ) -> GalleryItem:
        """Write one result to disk with its metadata, then index it.

        ``parent_id`` is the gallery image an edit or variation was made from. ``inputs`` are the
        input images (stored ids or bytes); by default those of an edit or variation request are
        stored, and an edit's mask too, so the request can be made again.
        """
        data = bytes(image.data)
        mime = sniff_mime_type(data)
        extension = EXTENSION_BY_MIME.get(mime)
        if extension is None:
            raise ValueError(
                "The result is not a PNG, JPEG or WebP image, nor a GIF or SVG, so the gallery cannot "
                "store it; save its bytes with GeneratedImage.save(path) instead."
            )
        request = image.request
        input_ids, mask_id = self._store_inputs(request, inputs)
        created = utc_now()
        item_id = _new_id(created)
        options = request.options() if request is not None else {}
        options.pop("prompt", None)
        document: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "id": item_id,
            "created": iso(created),
            "prompt": getattr(request, "prompt", None) or "",
            "revised_prompt": image.revised_prompt,
            "model": getattr(request, "model", None) or image.metadata.get("model"),
            "endpoint": request.endpoint if request is not None else GENERATIONS,
            "size": _image_size(data),
            "options": options,
            "seed": image.seed if image.seed is not None else image.metadata.get("seed"),
            "backend": backend or image.metadata.get("backend"),
            "request_id": request_id or image.metadata.get("request_id"),
            "parent_id": parent_id,
            "input_ids": input_ids,
            "mask_id": mask_id,
            "mime_type": mime,
            "software": _software(),
            "details": {k: v for k, v in image.metadata.items() if k not in ("backend", "model", "seed")},
        }
        document = _valid_text(document)
        path = self.images_dir / f"{item_id}.{extension}"
        embedded = _embedded(data, extension, document)
        if embedded is not None:
            atomic_write(path, embedded)
        else:
            atomic_write(_sidecar(path), _json(document).encode("utf-8"))
            atomic_write(path, data)
        self.index.add(document, f"images/{path.name}", _json(document))
        item = GalleryItem.from_document(document, path, self.root)
        self.keep_thumbnails(item.id, image)
        return item

    def keep_thumbnails(self, item_id: str, image: GeneratedImage) -> None:
        """Store the thumbnails the image has made, so that the History tab need not decode it again.

        They are a cache (remade from the image when missing), so they are renamed into place
        without waiting for the disk; one already kept is not written again.
        """
        for side, (data, mime) in made_thumbnails(image).items():
            extension = EXTENSION_BY_MIME.get(mime)
            if extension in _THUMBNAIL_EXTENSIONS or extension == "gif":  # gif: an animation's, for History
                path = self.thumbnails_dir / f"{item_id}-{side}.{extension}"
                if path.exists():
                    continue
                temporary = _temporary_name(path)
                temporary.write_bytes(data)
                os.replace(temporary, path)

    def save_response(self, response: ImagesResponse, parent_id: str | None = None) -> list[GalleryItem]:
        """Save every image of a response (see :meth:`save`)."""
        return [
            self.save(
                image, parent_id=parent_id, backend=response.backend or None, request_id=response.request_id
            )
            for image in response.data
        ]

    def save_input(self, data: bytes | InputImage, kind: str = "input") -> str:
        """Store an input image (``kind="input"``) or mask (``kind="mask"``); returns its id (SHA-256).

        The same bytes are stored once.
        """
        if kind not in INPUT_KINDS:
            raise ValueError(f"kind must be 'input' or 'mask', got {kind!r}")
        raw = data.data if isinstance(data, InputImage) else bytes(data)
        input_id = hashlib.sha256(raw).hexdigest()
        if find_input(self.root, input_id) is None:
            extension = EXTENSION_BY_MIME.get(sniff_mime_type(raw), "bin")
            atomic_write(self.root / INPUT_KINDS[kind] / f"{input_id}.{extension}", raw)
        return input_id

    def input_data(self, input_id: str) -> bytes:
        """The bytes of a stored input image or mask."""
        path = find_input(self.root, input_id)
        if path is None:
            raise KeyError(f"No input image {input_id!r} in the gallery at {self.root}.")
        return path.read_bytes()

    def _store_inputs(
        self, request: ImageRequest | None, inputs: Sequence[str | bytes | InputImage] | None
    ) -> tuple[list[str], str | None]:
        sources: Sequence[str | bytes | InputImage]
        if inputs is not None:
            sources = inputs
        elif isinstance(request, EditRequest):
            sources = request.images
        elif isinstance(request, VariationRequest) and request.image is not None:
            sources = [request.image]
        else:
            sources = []
        ids = []
        for source in sources:
            if isinstance(source, str):
                if find_input(self.root, source) is None:
                    raise KeyError(f"No input image {source!r} in the gallery; store it with save_input().")
                ids.append(source)
            else:
                ids.append(self.save_input(source, "input"))
        mask = request.mask if isinstance(request, EditRequest) else None
        return ids, (self.save_input(mask, "mask") if mask is not None else None)

    # -- reading ------------------------------------------------------------------------------

    def get(self, item_id: str) -> GalleryItem:
        """The item with this id; ``KeyError`` when there is none."""
        row = self.index.row(item_id)
        if row is None:
            raise KeyError(f"No image {item_id!r} in the gallery at {self.root}.")
        return _item(self.root, row)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.index

    def __len__(self) -> int:
        return self.count()

    def items(
        self,
        offset: int = 0,
        limit: int | None = 50,
        text: str | None = None,
        model: str | None = None,
        since: Moment | None = None,
        until: Moment | None = None,
        endpoint: str | None = None,
    ) -> list[GalleryItem]:
        """Items newest first. ``text`` finds words (or word beginnings) in the prompt or revised
        prompt; ``since`` is inclusive, ``until`` exclusive; ``limit=None`` returns all."""
        return _listed(
            self.root, self.index.rows(Filters(text, model, since, until, endpoint), offset, limit)
        )

    def count(
        self,
        text: str | None = None,
        model: str | None = None,
        since: Moment | None = None,
        until: Moment | None = None,
        endpoint: str | None = None,
    ) -> int:
        """How many items :meth:`items` would list with these filters."""
        return self.index.count(Filters(text, model, since, until, endpoint))

    def total_cost(
        self,
        ids: Iterable[str] | None = None,
        *,
        text: str | None = None,
        model: str | None = None,
        since: Moment | None = None,
        until: Moment | None = None,
        endpoint: str | None = None,
        billed: bool = True,
    ) -> float:
        """The estimated dollars of some items (``ids``, or those :meth:`items` lists with these filters).

        ``billed=False`` sums what offline results would have cost on OpenAI instead.
        """
        return self.index.total_cost(Filters(text, model, since, until, endpoint), ids, billed)

    def models(self) -> list[str]:
        """The models of the saved images, sorted."""
        return self.index.models()

    def lineage(self, item_id: str) -> list[GalleryItem]:
        """The chain from the first ancestor still in the gallery down to this item (last)."""
        chain = [self.get(item_id)]
        seen = {item_id}
        while chain[0].parent_id and chain[0].parent_id not in seen:
            seen.add(chain[0].parent_id)
            try:
                chain.insert(0, self.get(chain[0].parent_id))
            except KeyError:
                break
        return chain

    def children(self, item_id: str) -> list[GalleryItem]:
        """The items made from this one (its edits and variations), oldest first."""
        return _listed(self.root, self.index.children(item_id))

    # -- changing -----------------------------------------------------------------------------

    def delete(self, item_id: str) -> None:
        """Delete an image: its file (and sidecar and thumbnails), then its row.

        Stored inputs stay: other images may share them.
        """
        item = self.get(item_id)
        item.path.unlink(missing_ok=True)  # the file first: a crash now leaves a row that opening drops
        _sidecar(item.path).unlink(missing_ok=True)
        self.index.remove([item_id])
        for thumbnail in self.thumbnails_dir.glob(f"{item_id}-*"):
            thumbnail.unlink(missing_ok=True)

    # -- display and export -------------------------------------------------------------------

    def thumbnail(self, item_id: str, max_side: int = 256, *, animated: bool = False) -> tuple[bytes, str]:
        """A small copy of the image (bytes, MIME type), made once and kept in ``thumbnails/``.

        An animated GIF's is its first frame, or with ``animated`` a small animated GIF (as the
        results grid shows it).
        """
        item = self.get(item_id)  # an unknown id fails here, before it is used in a file name
        if animated and item.mime_type == "image/gif":
            cached = self.thumbnails_dir / f"{item_id}-{max_side}.gif"
            if cached.exists():
                return cached.read_bytes(), "image/gif"
            data, mime = small_picture(item.path, max_side)  # a still for a GIF that cannot play small
            atomic_write(self.thumbnails_dir / f"{item_id}-{max_side}.{EXTENSION_BY_MIME[mime]}", data)
            return data, mime
        for extension in _THUMBNAIL_EXTENSIONS:
            cached = self.thumbnails_dir / f"{item_id}-{max_side}.{extension}"
            if cached.exists():
                return cached.read_bytes(), IMAGE_EXTENSIONS[extension]
        from .imaging import thumbnail

        data, mime = thumbnail(item.path, max_side=max_side)
        extension = EXTENSION_BY_MIME[mime]
        atomic_write(self.thumbnails_dir / f"{item_id}-{max_side}.{extension}", data)
        return data, mime

    def export(self, ids: Iterable[str] | None, zip_path: str | os.PathLike[str]) -> Path:
        """A zip of images (all when ``ids`` is None), their stored inputs, manifest.json and manifest.csv."""
        items = self.items(limit=None) if ids is None else [self.get(item_id) for item_id in ids]
        target = Path(zip_path).expanduser()
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = _temporary_name(target)
        try:
            with zipfile.ZipFile(temporary, "x", compression=zipfile.ZIP_DEFLATED) as archive:
                written: set[str] = set()
                for item in items:
                    archive.write(item.path, f"images/{item.path.name}", compress_type=zipfile.ZIP_STORED)
                    for input_id in [*item.input_ids, *([item.mask_id] if item.mask_id else [])]:
                        path = find_input(self.root, input_id)
                        name = f"{path.parent.name}/{path.name}" if path is not None else ""
                        if path is not None and name not in written:
                            archive.write(path, name, compress_type=zipfile.ZIP_STORED)
                            written.add(name)
                manifest = {"format": FORMAT_VERSION, "exported": iso(utc_now()), "items": []}
                manifest["items"] = [item.to_dict() for item in items]
                archive.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2))
                archive.writestr("manifest.csv", _manifest_csv(items))
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return target


def _manifest_csv(items: Sequence[GalleryItem]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for item in items:
        row = item.to_dict()
        row["options"] = _json(row["options"])
        row["input_ids"] = " ".join(row["input_ids"])
        writer.writerow(row)
    return buffer.getvalue()
