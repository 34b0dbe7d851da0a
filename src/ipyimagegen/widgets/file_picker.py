"""A file button whose files cross to the kernel once and are never kept in the widget's state.

ipywidgets' ``FileUpload`` keeps the files in its value (and so in a saved notebook) until the
kernel clears it, and its label counts them ("Upload (0)" once cleared). This button reads the
chosen files in the page, sends them as binary buffers in one message, and says what the kernel
made of them in its label ("holiday.jpg" after a good upload). With ``drop_area``, files dropped on
that part of the page, or images pasted (Ctrl/⌘+V) while it is shown, are taken the same way.
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
  const send = async (chosen) => {
    let files = Array.from(chosen || []);
    if (!model.get("multiple")) files = files.slice(0, 1);
    if (!files.length || button.disabled) return;
    note.textContent = "reading…";
    const buffers = await Promise.all(files.map((file) => file.arrayBuffer()));
    model.send(
      { event: "files", files: files.map((f) => ({ name: f.name, type: f.type, size: f.size, last_modified: f.lastModified })) },
      undefined,
      buffers,
    );
  };
  button.addEventListener("click", () => input.click());
  input.addEventListener("change", () => {
    const files = Array.from(input.files || []);
    input.value = "";
    send(files);
  });
  el.append(button, note, input);

  // Files dropped anywhere on the area this picker serves, or pasted while that area is in view.
  let area = null;
  const hasFiles = (event) => event.dataTransfer && Array.from(event.dataTransfer.types || []).includes("Files");
  const onDragOver = (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    area.classList.add("ipyimagegen-drop-here");
  };
  const onDragLeave = (event) => {
    if (!area.contains(event.relatedTarget)) area.classList.remove("ipyimagegen-drop-here");
  };
  const onDrop = (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.stopPropagation();
    area.classList.remove("ipyimagegen-drop-here");
    send(event.dataTransfer.files);
  };
  const onPaste = (event) => {
    if (!area || area.offsetParent === null) return; // its tab is not the one shown
    const target = event.target;
    if (target && (target.tagName === "TEXTAREA" || target.tagName === "INPUT") && !area.contains(target)) return;
    const files = Array.from((event.clipboardData && event.clipboardData.files) || []).filter((f) =>
      f.type.startsWith("image/"),
    );
    if (!files.length) return;
    event.preventDefault();
    send(files.map((f, i) => (f.name && f.name !== "image.png" ? f : new File([f], `pasted-${i + 1}.${(f.type.split("/")[1] || "png")}`, { type: f.type }))));
  };
  const attach = () => {
    const scope = model.get("drop_area");
    if (!scope) return true;
    area = el.closest(scope);
    if (!area) return false;
    area.addEventListener("dragover", onDragOver);
    area.addEventListener("dragleave", onDragLeave);
    area.addEventListener("drop", onDrop);
    document.addEventListener("paste", onPaste);
    return true;
  };
  let tries = 0;
  const retry = () => { if (!attach() && ++tries < 100) setTimeout(retry, 100); };
  retry();
  return () => {
    if (!area) return;
    area.removeEventListener("dragover", onDragOver);
    area.removeEventListener("dragleave", onDragLeave);
    area.removeEventListener("drop", onDrop);
    document.removeEventListener("paste", onPaste);
  };
}
export default { render };
"""


class FilePicker(anywidget.AnyWidget):  # type: ignore[misc]
    """A button that opens the browser's file chooser; ``on_files(callback)`` gets the files as
    upload entries (``name``, ``type``, ``size``, ``content``), like ipywidgets' ``FileUpload``."""

    _esm = _ESM
    _css = """
    .ipyimagegen-file-note { margin-left: 6px; font-size: 12px; color: var(--jp-ui-font-color2, #666); }
    .ipyimagegen-drop-here { outline: 2px dashed var(--jp-brand-color1, #1976d2); outline-offset: -4px; }
    """
    description = Unicode("Upload").tag(sync=True)
    tooltip = Unicode("").tag(sync=True)
    accept = Unicode("").tag(sync=True)
    multiple = Bool(False).tag(sync=True)
    disabled = Bool(False).tag(sync=True)
    busy = Bool(False).tag(sync=True)
    note = Unicode("", help="What the last files became (a name, or why not).").tag(sync=True)
    drop_area = Unicode(
        "",
        help="A CSS selector of an ancestor: files dropped on it, or pasted while it is shown, count as chosen.",
    ).tag(sync=True)

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
