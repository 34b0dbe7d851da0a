"""A file button whose files cross to the kernel once and are never kept in the widget's state.

ipywidgets' ``FileUpload`` keeps the files in its value (and so in a saved notebook) until the
kernel clears it, and its label counts them ("Upload (0)" once cleared). This button reads the
chosen files in the page, sends them as binary buffers in one message, and says what the kernel
made of them in its label ("holiday.jpg" after a good upload).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anywidget
from ipywidgets import CallbackDispatcher
from traitlets import Bool, Unicode

log = logging.getLogger(__name__)

_ESM = """
function render({ model, el }) {
  const input = document.createElement("input");
  input.type = "file";
  input.style.display = "none";
  const button = document.createElement("button");
  button.type = "button";
  button.className = "jupyter-button widget-button ipyimagegen-file-button";
  const glyph = document.createElement("i");
  glyph.className = "fa fa-upload";
  glyph.setAttribute("aria-hidden", "true");
  const label = document.createElement("span");
  label.style.marginLeft = "4px";
  button.append(glyph, label);
  const note = document.createElement("span");
  note.className = "ipyimagegen-file-note";
  const show = () => {
    label.textContent = model.get("description");
    button.title = model.get("tooltip") || model.get("description");
    button.disabled = model.get("disabled") || model.get("busy");
    input.accept = model.get("accept");
    input.multiple = model.get("multiple");
    note.textContent = model.get("busy") ? "reading…" : model.get("note");
  };
  show();
  for (const name of ["description", "tooltip", "disabled", "busy", "accept", "multiple", "note"]) {
    model.on("change:" + name, show);
  }
  button.addEventListener("click", () => input.click());
  input.addEventListener("change", async () => {
    const files = Array.from(input.files || []);
    input.value = "";
    if (!files.length) return;
    note.textContent = "reading…";
    const buffers = await Promise.all(files.map((file) => file.arrayBuffer()));
    model.send(
      { event: "files", files: files.map((f) => ({ name: f.name, type: f.type, size: f.size, last_modified: f.lastModified })) },
      undefined,
      buffers,
    );
  });
  el.append(button, note, input);
}
export default { render };
"""


class FilePicker(anywidget.AnyWidget):  # type: ignore[misc]
    """A button that opens the browser's file chooser; ``on_files(callback)`` gets the files as
    upload entries (``name``, ``type``, ``size``, ``content``), like ipywidgets' ``FileUpload``."""

    _esm = _ESM
    _css = """
    .ipyimagegen-file-note { margin-left: 6px; font-size: 12px; color: var(--jp-ui-font-color2, #666); }
    """
    description = Unicode("Upload").tag(sync=True)
    tooltip = Unicode("").tag(sync=True)
    accept = Unicode("").tag(sync=True)
    multiple = Bool(False).tag(sync=True)
    disabled = Bool(False).tag(sync=True)
    busy = Bool(False).tag(sync=True)
    note = Unicode("", help="What the last files became (a name, or why not).").tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._handlers = CallbackDispatcher()
        self.on_msg(self._handle_message)

    def on_files(self, callback: Callable[[list[dict[str, Any]]], Any], remove: bool = False) -> None:
        self._handlers.register_callback(callback, remove=remove)

    def receive(self, entries: list[dict[str, Any]]) -> None:
        """Files as the page sends them (each with its bytes in ``content``)."""
        self.busy = True
        try:
            self._handlers(entries)
        finally:
            self.busy = False

    def _handle_message(self, _widget: Any, content: Any, buffers: Any) -> None:
        if not isinstance(content, dict) or content.get("event") != "files":
            return
        described = content.get("files")
        if not isinstance(described, list) or len(described) != len(buffers or []):
            log.warning("a file message without its files")
            return
        entries = []
        for info, data in zip(described, buffers, strict=True):
            info = info if isinstance(info, dict) else {}
            entries.append(
                {
                    "name": str(info.get("name") or "upload"),
                    "type": str(info.get("type") or ""),
                    "size": len(data),
                    "content": memoryview(data),
                }
            )
        self.receive(entries)
