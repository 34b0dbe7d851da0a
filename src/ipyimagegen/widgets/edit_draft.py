"""The Edit tab's draft: its picture, mask and prompt kept in the gallery folder, so that a page
reload, a Voila reconnect or a kernel restart gives the work back.

Saving runs in one background thread: the tab hands over a snapshot (cheap: the picture's file
bytes once per picture, a copy of the mask) and returns; a newer snapshot replaces one not yet
written. Each file is written to a temporary name and renamed, so a draft is whole or absent.
:class:`DraftBinding` makes the snapshots of the tab's form and puts a draft back into it.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from ..imaging import read_mask
from .image_input import LoadedImage, load_image
from .mask_painter import MAX_FEATHER

if TYPE_CHECKING:
    from .edit_tab import EditTab

log = logging.getLogger(__name__)

FOLDER = "drafts"
PICTURE, MASK, STATE = "edit-picture", "edit-mask.png", "edit.json"
DRAFT_VARIABLE = "IPYIMAGEGEN_DRAFT"
"""Names the draft of a kernel that knows no notebook of its own (an app: ``ipyimagegen studio`` sets it)."""


def notebook_identity(environ: Mapping[str, str] | None = None, folder: Path | None = None) -> str:
    """Which notebook this kernel runs, as far as it can tell: each one has a draft of its own.

    ``$IPYIMAGEGEN_DRAFT`` first; then the notebook's path that JupyterLab and Notebook give their
    kernels (``JPY_SESSION_NAME``); in Voila, the page's path (``SCRIPT_NAME``) in the notebook's
    folder; otherwise the working folder (a script, a notebook run by nbclient).
    """
    environ = os.environ if environ is None else environ
    folder = Path.cwd() if folder is None else folder
    if environ.get(DRAFT_VARIABLE, "").strip():
        return environ[DRAFT_VARIABLE].strip()
    if environ.get("JPY_SESSION_NAME", "").strip():
        return environ["JPY_SESSION_NAME"].strip()
    if "SCRIPT_NAME" in environ and "voila" in environ.get("SERVER_SOFTWARE", ""):
        return f"voila:{folder}{environ['SCRIPT_NAME'].rstrip('/')}"
    return f"python:{folder}"


def draft_folder_name(identity: str) -> str:
    """A folder name for a notebook's draft: readable, and distinct for distinct notebooks."""
    stem = Path(identity.split(":", 1)[-1]).stem or "notebook"
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.")[:40] or "notebook"
    digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:10]
    return f"{readable}-{digest}"


@dataclass
class Draft:
    """What the Edit tab keeps: the loaded picture's file, the mask on the picture shown, the form."""

    picture: bytes | Image.Image = field(repr=False)
    name: str
    mask: np.ndarray | None = field(default=None, repr=False)
    state: dict[str, Any] = field(default_factory=dict)
    saved_at: str = ""


def _write(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


class DraftStore:
    """The draft files of one notebook, in ``<gallery>/drafts/<notebook>`` (see the module's docstring).

    ``owner``: the notebook's identity (:func:`notebook_identity` by default, or a name the caller
    gives): notebooks and Voila apps sharing a gallery never open each other's draft.
    """

    def __init__(self, root: str | os.PathLike[str], owner: str | None = None) -> None:
        self.owner = owner if owner else notebook_identity()
        self.folder = Path(root) / FOLDER / draft_folder_name(self.owner)
        self._lock = threading.Condition()
        self._next: tuple[Draft, bool] | None = None  # the snapshot to write, and whether its picture is new
        self._writing = False
        self._thread: threading.Thread | None = None
        self.error: Exception | None = None
        """The last failure to write, if any (the draft on disk is then the one before)."""

    def load(self) -> Draft | None:
        """The draft on disk, or None when there is none or it cannot be read."""
        try:
            state = json.loads((self.folder / STATE).read_text(encoding="utf-8"))
            picture = (self.folder / PICTURE).read_bytes()
            mask_path = self.folder / MASK
            mask = read_mask(mask_path.read_bytes(), "white") if mask_path.exists() else None
        except FileNotFoundError:
            return None
        except Exception:
            log.warning("the Edit tab's draft in %s could not be read; it is left as it is", self.folder)
            return None
        if not isinstance(state, dict):
            return None
        return Draft(picture, str(state.get("name", "draft")), mask, state, str(state.get("saved_at", "")))

    def save(self, draft: Draft, new_picture: bool) -> None:
        """Keep ``draft`` (in the background; a later call replaces it if it is not written yet)."""
        with self._lock:
            if self._next is not None and self._next[1]:
                new_picture = True  # the picture of the snapshot replaced was not written either
            self._next = (draft, new_picture)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="ipyimagegen-draft", daemon=True)
                self._thread.start()
            self._lock.notify_all()

    def clear(self) -> None:
        """Forget the draft (its files are removed)."""
        with self._lock:
            self._next = None
            self.wait_locked()
            for name in (STATE, PICTURE, MASK):
                (self.folder / name).unlink(missing_ok=True)

    def wait(self, timeout: float | None = 10.0) -> bool:
        """Wait until every snapshot handed over is on disk; False on timeout."""
        with self._lock:
            return self.wait_locked(timeout)

    def wait_locked(self, timeout: float | None = 10.0) -> bool:
        return self._lock.wait_for(lambda: self._next is None and not self._writing, timeout)

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._next is None:
                    return
                (draft, new_picture), self._next = self._next, None
                self._writing = True
            try:
                self._store(draft, new_picture)
                self.error = None
            except Exception as exc:
                self.error = exc
                log.warning("could not keep the Edit tab's draft in %s: %s", self.folder, exc)
            finally:
                with self._lock:
                    self._writing = False
                    self._lock.notify_all()

    def _store(self, draft: Draft, new_picture: bool) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if new_picture or not (self.folder / PICTURE).exists():
            picture = draft.picture
            _write(self.folder / PICTURE, picture if isinstance(picture, bytes) else picture_bytes(picture))
        if draft.mask is not None and draft.mask.any():
            _write(self.folder / MASK, one_bit_png(draft.mask))
        else:
            (self.folder / MASK).unlink(missing_ok=True)
        state = {**draft.state, "name": draft.name, "saved_at": datetime.now().isoformat(timespec="seconds")}
        _write(self.folder / STATE, json.dumps(state, indent=1).encode("utf-8"))


def one_bit_png(mask: np.ndarray) -> bytes:
    """A black-and-white PNG of one bit a pixel, white where marked: written in a few ms at 4K (the
    Images API's RGBA mask takes a quarter of a second), and read by any mask import."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(mask, dtype=bool)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def picture_bytes(image: Image.Image) -> bytes:
    """A picture that came from Python, not as a file, kept as a PNG."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


class DraftBinding:
    """The Edit tab's form kept in a :class:`DraftStore` (:meth:`keep`, after each change) and a
    draft put back into it (:meth:`restore`, when the tab is made)."""

    def __init__(self, tab: EditTab, store: DraftStore) -> None:
        self.tab = tab
        self.store = store
        self._drafted: LoadedImage | None = None  # the picture the draft on disk has

    def keep(self) -> None:
        """Hand the picture, mask and form to the store (written in the background)."""
        tab = self.tab
        loaded = tab.picture.loaded
        if loaded is None:
            return
        state = {
            "prompt": tab.prompt_box.value,
            "model": tab.params.model,
            "size": tab.params.size,
            "fit": tab.fit,
            "outpaint": tab.outpainting.state(),
            "keep_outside": bool(tab.keep_outside.value),
            "feather": float(tab.painter.feather),
            "parent_id": loaded.parent_id,
        }
        picture = loaded.data if loaded.data is not None else loaded.image
        self.store.save(
            Draft(picture, loaded.name, tab.painter.mask, state), new_picture=loaded is not self._drafted
        )
        self._drafted = loaded

    def restore(self, load: Callable[[LoadedImage], Any]) -> Draft | None:
        """Put the draft on disk back into the form, its picture shown by ``load``; None when there is
        no draft. Raises when it cannot be brought back (the form may then hold part of it)."""
        draft = self.store.load()
        if draft is None:
            return None
        tab, state = self.tab, draft.state
        loaded = load_image(draft.picture, max_bytes=tab.upload.max_bytes)
        loaded = LoadedImage(loaded.image, draft.name, loaded.data, state.get("parent_id"))
        settings = {name: state.get(name) for name in ("model", "size")}
        if settings["model"] not in tab.offered:
            settings = {}
        tab.params.apply({name: value for name, value in settings.items() if value})
        if state.get("fit") in ("crop", "pad"):
            tab.fit = state["fit"]
        tab.outpainting.restore(state.get("outpaint") or {})
        load(loaded)
        painted = tab.painter.mask
        if draft.mask is not None and painted is not None and draft.mask.shape == painted.shape:
            tab.painter.set_mask(draft.mask | painted)
        tab.prompt_box.value = str(state.get("prompt") or "")
        tab.keep_outside.value = bool(state.get("keep_outside", True))
        if isinstance(state.get("feather"), (int, float)):
            tab.painter.feather = min(max(float(state["feather"]), 0.0), MAX_FEATHER)
        self._drafted = tab.picture.loaded
        return draft
