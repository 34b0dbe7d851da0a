"""Downloads: the name a picture (or a sheet) is downloaded under, and what the Save notice says.

Every download is named by :func:`download_name`: ``20261206-155706-1a2b3c4d-a-red-lighthouse.png``,
the picture's gallery id (a numeric one zero-padded to four digits: ``0042-...``) and a slug of its
prompt. The gallery id is unique across sessions and sorts by time, so a name never stands for two
pictures. A picture the gallery does not keep gets a name of the same shape from when it was made
and a tag that is unique to this kernel.

A notice says where a saved file was written only where the user can open that folder:
:func:`shows_paths` is false in Voila (the kernels it starts get ``VOILA_*`` variables) and on
Binder (``BINDER_*`` variables), where the files are on a server the user cannot browse, or one that
goes away with the session. There the notice says what the browser downloaded.
"""

from __future__ import annotations

import hashlib
import html
import os
import re
import secrets
import unicodedata
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

from ..media import EXTENSION_BY_MIME

SLUG_CHARS = 40
"""The longest prompt slug in a file name."""

EXTENSIONS = {**EXTENSION_BY_MIME, "application/pdf": "pdf", "application/zip": "zip"}

HOSTED_VARIABLES = (
    "VOILA_BASE_URL",
    "VOILA_SERVER_URL",
    "VOILA_KERNEL_ID",
    "BINDER_LAUNCH_HOST",
    "BINDER_REPO_URL",
    "BINDER_REQUEST",
)
"""Set in the kernel's environment by Voila or Binder: its files are not the user's."""

_KERNEL_TAG = secrets.token_hex(8)  # makes the names of pictures the gallery does not keep unique


def slug(text: str, limit: int = SLUG_CHARS) -> str:
    """``a-red-lighthouse``: the words of ``text`` in lower case, joined by hyphens, accents dropped
    (other scripts kept), at most ``limit`` characters and cut at a word's end; ``""`` when no word."""
    letters = []
    for char in text:
        plain = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode("ascii")
        letters.append(plain or char)  # é -> e; 灯 stays
    words = re.findall(r"[^\W_]+", "".join(letters).lower())
    found = ""
    for word in words:
        longer = f"{found}-{word}" if found else word
        if len(longer) > limit:
            return found or word[:limit]
        found = longer
    return found


def download_name(
    prompt: str,
    mime: str,
    gallery_id: str | None = None,
    *,
    made: datetime | None = None,
    key: str = "",
) -> str:
    """``<gallery id>-<slug of the prompt>.<ext>``, the name every download of a picture gets.

    ``gallery_id``: the picture's id in the gallery (only letters, digits, ``-`` and ``_`` are kept;
    an all-digit id is zero-padded to four). Without one, an id of the gallery's shape is made from
    ``made`` (default: now) and ``key``, which names the picture within this kernel (a tile's id):
    the same picture gets the same name again, another picture another name, in any session.
    ``prompt`` may be empty (a variation): the name then says ``image``.
    """
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", gallery_id or "").strip("-")
    if stem.isdigit():
        stem = stem.zfill(4)
    if not stem:
        moment = (made or datetime.now()).astimezone(timezone.utc)
        tag = hashlib.sha256(f"{_KERNEL_TAG}:{key or secrets.token_hex(8)}".encode()).hexdigest()[:8]
        stem = f"{moment:%Y%m%d-%H%M%S}-{tag}"
    return f"{stem}-{slug(prompt) or 'image'}.{EXTENSIONS.get(mime, 'png')}"


def shows_paths(environ: Mapping[str, str] | None = None) -> bool:
    """Whether a notice may show where a file was written: not in Voila nor on Binder (see the module)."""
    environ = os.environ if environ is None else environ
    return not any(environ.get(name) for name in HOSTED_VARIABLES)


def shown_path(path: Path) -> str:
    """``path`` as a notice shows it: relative to the notebook's folder when it lies inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (OSError, ValueError):
        return str(path)


def saved_notice(path: Path, downloaded: bool = True, environ: Mapping[str, str] | None = None) -> str:
    """What a Save says (HTML): ``Downloaded <name>``, and where the file was written when
    :func:`shows_paths` (or when nothing was downloaded: the file is all there is)."""
    where = f"<code>{html.escape(shown_path(path))}</code>"
    if not downloaded:
        return f"Saved to {where}."
    said = f"Downloaded <code>{html.escape(path.name)}</code>"
    return f"{said} (also saved to {where})." if shows_paths(environ) else f"{said}."
