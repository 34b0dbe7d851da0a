"""Keyboard shortcuts for the mask painter while the pointer is over its canvas, without a click.

ipycanvas hears keys only once its canvas has the focus, which a click gives (and with the brush,
that click paints). This invisible widget gives the canvas the focus when the pointer enters it,
unless the user is typing somewhere (a prompt box keeps its keys).
"""

from __future__ import annotations

import anywidget

_ESM = """
function render({ el }) {
  el.style.display = "none";
  let painter = null;
  const typing = () => {
    const active = document.activeElement;
    return active && (active.tagName === "TEXTAREA" || (active.tagName === "INPUT" && active.type !== "checkbox")
      || active.isContentEditable);
  };
  const onOver = (event) => {
    const canvas = event.target;
    if (canvas && canvas.tagName === "CANVAS" && document.activeElement !== canvas && !typing()) {
      canvas.focus({ preventScroll: true });
    }
  };
  const attach = () => {
    painter = el.closest(".ipyimagegen-mask-painter");
    if (!painter) return false;
    painter.addEventListener("pointerover", onOver);
    return true;
  };
  let tries = 0;
  const retry = () => { if (!attach() && ++tries < 100) setTimeout(retry, 100); };
  retry();
  return () => { if (painter) painter.removeEventListener("pointerover", onOver); };
}
export default { render };
"""


class CanvasKeys(anywidget.AnyWidget):  # type: ignore[misc]
    """Put inside a mask painter: its canvas takes the keys while the pointer is over it."""

    _esm = _ESM
