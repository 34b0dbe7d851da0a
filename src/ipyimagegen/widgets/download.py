"""Downloads: the name a picture is downloaded under."""

from __future__ import annotations

import re
from datetime import datetime

from ..media import EXTENSION_BY_MIME


def download_name(made: datetime, tag: str, mime: str) -> str:
    """``ipyimagegen-20261206-155706-2-1.gif``: when the picture was made (local time), ``tag`` (which
    picture it is: ``2-1``, a gallery id's end) and its type's extension (png, jpg, webp, gif, svg).

    The grid's Save and its viewer's Download, and History's Download, all name a picture so.
    """
    safe = re.sub(r"[^A-Za-z0-9_-]+", "-", tag).strip("-") or "image"
    return f"ipyimagegen-{made.astimezone():%Y%m%d-%H%M%S}-{safe}.{EXTENSION_BY_MIME.get(mime, 'png')}"
