"""Downloads: the name a picture is downloaded under, and a button whose file crosses to the browser
only when it is clicked.

A ``data:`` link would keep the whole file in the widget's state, and so in every saved notebook.
This button keeps only a file name: on a click the page asks the kernel, which sends the bytes
once, as a binary buffer, and the page hands them to the browser's own download.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import anywidget
from traitlets import Unicode

from ..media import EXTENSION_BY_MIME

log = logging.getLogger(__name__)


def download_name(made: datetime, tag: str, mime: str) -> str:
    """``ipyimagegen-20261206-155706-2-1.gif``: when the picture was made (local time), ``tag`` (which
    picture it is: ``2-1``, a gallery id's end) and its type's extension (png, jpg, webp, gif, svg).

    The grid's Save and its viewer's Download, and History's Download, all name a picture so.
    """
    safe = re.sub(r"[^A-Za-z0-9_-]+", "-", tag).strip("-") or "image"
    return f"ipyimagegen-{made.astimezone():%Y%m%d-%H%M%S}-{safe}.{EXTENSION_BY_MIME.get(mime, 'png')}"


FileSource = Callable[[], tuple[bytes, str]]
"""Gives the file's bytes and MIME type when the download is asked for."""

_DOWNLOAD_ESM = """
function render({ model, el }) {
  const button = document.createElement("button");
  button.className = "jupyter-button widget-button ipyimagegen-download";
  const label = () => { button.textContent = model.get("label"); button.title = "Download " + model.get("filename"); };
  label();
  model.on("change:label", label);
  model.on("change:filename", label);
  button.addEventListener("click", () => model.send({ event: "download" }));
  const onMessage = (message, buffers) => {
    if (!message || message.event !== "file" || !buffers || !buffers.length) return;
    const blob = new Blob([buffers[0]], { type: message.mime || "application/octet-stream" });
    const url = URL.createObjectURL(blob);
    const link = document.createElement("a");
    link.href = url;
    link.download = message.name || model.get("filename");
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  };
  model.on("msg:custom", onMessage);
  el.appendChild(button);
  return () => model.off("msg:custom", onMessage);
}
export default { render };
"""


class DownloadButton(anywidget.AnyWidget):  # type: ignore[misc]
    """A button that downloads ``filename``; the bytes come from ``source`` when it is clicked."""

    _esm = _DOWNLOAD_ESM
    filename = Unicode("image.png", help="The name the browser saves the file under.").tag(sync=True)
    label = Unicode("Download", help="The button's text.").tag(sync=True)

    def __init__(self, source: FileSource, filename: str, *, label: str = "Download", **kwargs: Any) -> None:
        super().__init__(filename=filename, label=label, **kwargs)
        self._source = source
        self.on_msg(self._handle_message)

    def _handle_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("event") == "download":
            self.send_file()

    def send_file(self) -> bool:
        """Send the file to the page (as a click does); False when it could not be read."""
        try:
            data, mime = self._source()
        except OSError as exc:
            log.warning("could not read %s for download: %s", self.filename, exc)
            return False
        self.send({"event": "file", "name": self.filename, "mime": mime}, buffers=[data])
        return True
