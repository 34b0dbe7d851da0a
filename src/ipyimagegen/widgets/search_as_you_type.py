"""Search as you type: a search box's text is sent once typing pauses, not only on Enter.

A Text box with ``continuous_update=False`` sends its value on Enter (or when it loses focus), and
its observers search at once, as they do when Python sets the value. :class:`SearchAsYouType` is a
tiny page-side helper placed beside such a box: it listens to the box's ``input`` events and, once
the typing has paused for ``delay_ms``, commits the text as Enter does. So the kernel hears one
search per pause instead of one per key, nothing waits in the kernel, and Enter still searches at
once (it also drops the pending pause).
"""

from __future__ import annotations

import anywidget
import ipywidgets as widgets
from traitlets import Int, Unicode

SEARCH_DELAY_MS = 300
"""How long typing pauses before the search runs."""

_ESM = """
function render({ model, el }) {
  let timer = null;
  let pending = null;
  const field = (target) => {
    const scope = el.closest("." + model.get("scope"));
    const box = target instanceof HTMLInputElement ? target.closest("." + model.get("field")) : null;
    return scope && box && scope.contains(box) ? target : null;
  };
  const commit = () => {
    timer = null;
    if (pending && pending.isConnected) pending.dispatchEvent(new Event("change", { bubbles: true }));
    pending = null;
  };
  const onInput = (event) => {
    const input = field(event.target);
    if (!input) return;
    clearTimeout(timer);
    pending = input;
    timer = setTimeout(commit, model.get("delay_ms"));
  };
  const onKeyDown = (event) => {
    if (event.key === "Enter" && field(event.target)) { clearTimeout(timer); timer = null; pending = null; }
  };
  document.addEventListener("input", onInput, true);
  document.addEventListener("keydown", onKeyDown, true);
  return () => {
    clearTimeout(timer);
    document.removeEventListener("input", onInput, true);
    document.removeEventListener("keydown", onKeyDown, true);
  };
}
export default { render };
"""


class SearchAsYouType(anywidget.AnyWidget):  # type: ignore[misc]
    """Invisible helper: commits the text of the ``field`` box inside the same ``scope`` element
    (both CSS classes) after ``delay_ms`` without a key, as Enter would."""

    _esm = _ESM
    scope = Unicode(help="CSS class of the element that holds this helper and its box.").tag(sync=True)
    field = Unicode(help="CSS class of the search box (an ipywidgets Text).").tag(sync=True)
    delay_ms = Int(SEARCH_DELAY_MS, help="The pause, in ms, after which the text is sent.").tag(sync=True)

    def __init__(self, scope: str, field: str, *, delay_ms: int = SEARCH_DELAY_MS) -> None:
        super().__init__(scope=scope, field=field, delay_ms=delay_ms, layout=widgets.Layout(display="none"))
