"""The prompt editor: a multi-line text box with a live character count and Ctrl+Enter to submit.

ipywidgets' Textarea has no key events, so Ctrl+Enter (Cmd+Enter on a Mac) comes from a tiny
anywidget that listens for that one key combination inside its own prompt box and sends the
text along. anywidget ships its front end in the Python package (JupyterLab, Notebook 7,
Voila, VS Code, Colab): nothing to build or enable. Without it the Generate button still works.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
from ipywidgets import CallbackDispatcher
from traitlets import Int, observe

from .problem_line import ProblemLine

log = logging.getLogger(__name__)

try:
    import anywidget
except ImportError:  # pragma: no cover - anywidget is a dependency; this keeps the box usable without it
    anywidget = None  # type: ignore[assignment]

_SHORTCUT_ESM = """
function render({ model, el }) {
  const onKeyDown = (event) => {
    if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
    const box = el.closest(".ipyimagegen-prompt-box");
    const target = event.target;
    if (!box || !(target instanceof HTMLTextAreaElement) || !box.contains(target)) return;
    event.preventDefault();
    event.stopPropagation();
    model.send({ event: "submit", value: target.value });
  };
  document.addEventListener("keydown", onKeyDown, true);
  return () => document.removeEventListener("keydown", onKeyDown, true);
}
export default { render };
"""

if anywidget is not None:

    class SubmitShortcut(anywidget.AnyWidget):  # type: ignore[misc, name-defined]
        """Invisible helper: Ctrl/Cmd+Enter in the surrounding prompt box sends its text here."""

        _esm = _SHORTCUT_ESM

        def __init__(self, on_submit: Callable[[str | None], None]) -> None:
            super().__init__(layout=widgets.Layout(display="none"))
            self._on_submit = on_submit
            self.on_msg(self._handle_message)

        def _handle_message(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
            if isinstance(content, dict) and content.get("event") == "submit":
                value = content.get("value")
                self._on_submit(value if isinstance(value, str) else None)

else:  # pragma: no cover
    SubmitShortcut = None  # type: ignore[assignment, misc]


class PromptBox(widgets.VBox):
    """A prompt Textarea with "812 / 1000" against the model's limit, a Clear button and Ctrl+Enter.

    ``on_submit(callback)`` is called with this box on Ctrl/Cmd+Enter (or :meth:`submit`).
    """

    limit = Int(32000, help="The model's prompt length limit in characters.")

    def __init__(self, value: str = "", *, limit: int = 32000, placeholder: str | None = None) -> None:
        self._submit_handlers = CallbackDispatcher()
        self.textarea = widgets.Textarea(
            value=value,
            placeholder=placeholder or "Describe the image you want…",
            continuous_update=True,  # live character count; Ctrl+Enter sends the text itself anyway
            rows=4,
            # "auto": the box stretches to the prompt box's width less its own margins (a width of 100%
            # would add ipywidgets' 2 px margins to it, and the right border would be cut off)
            layout=widgets.Layout(width="auto"),
        )
        self.textarea.add_class("ipyimagegen-prompt")
        self.count = widgets.HTML(layout=widgets.Layout(flex="0 0 auto"))
        self.count.add_class("ipyimagegen-count")
        self.hint = widgets.HTML(
            "Ctrl+Enter (⌘+Enter) to generate" if SubmitShortcut is not None else "",
            layout=widgets.Layout(flex="0 0 auto", margin="0 8px"),
        )
        self.hint.add_class("ipyimagegen-hint")
        self.clear_button = widgets.Button(
            description="Clear", icon="times", tooltip="Clear the prompt", layout=widgets.Layout(width="auto")
        )
        self.clear_button.add_class("ipyimagegen-clear")
        self.clear_button.on_click(lambda _button: self.clear())
        footer = widgets.HBox(
            [self.count, widgets.Box(layout=widgets.Layout(flex="1 1 auto")), self.hint, self.clear_button],
            layout=widgets.Layout(width="100%", align_items="center"),
        )
        self.problem = ProblemLine()
        """What is wrong with the prompt, under it (cleared as soon as the prompt changes)."""
        children: list[widgets.Widget] = [self.textarea, self.problem, footer]
        self.shortcut = SubmitShortcut(self._submit_from_keyboard) if SubmitShortcut is not None else None
        if self.shortcut is not None:
            children.append(self.shortcut)
        super().__init__(children, layout=widgets.Layout(width="100%"))
        self.add_class("ipyimagegen-prompt-box")
        self.limit = limit
        self.textarea.observe(lambda _change: self._update_count(), "value")
        self.textarea.observe(lambda _change: self.show_problem(""), "value")
        self._update_count()

    @property
    def value(self) -> str:
        return self.textarea.value

    @value.setter
    def value(self, text: str) -> None:
        self.textarea.value = text

    @property
    def length(self) -> int:
        return len(self.textarea.value)

    @property
    def over_limit(self) -> bool:
        return self.length > self.limit

    def clear(self) -> None:
        self.textarea.value = ""

    def show_problem(self, message: str) -> None:
        """Say under the prompt what is wrong with it ("" clears it)."""
        self.problem.say(message)

    def on_submit(self, callback: Callable[[PromptBox], Any], remove: bool = False) -> None:
        """Register ``callback(prompt_box)`` for Ctrl/Cmd+Enter (``remove=True`` unregisters it)."""
        self._submit_handlers.register_callback(callback, remove=remove)

    def submit(self) -> None:
        """Fire the submit callbacks, as Ctrl+Enter does."""
        self._submit_handlers(self)

    def _submit_from_keyboard(self, text: str | None) -> None:
        # The key message carries the text as typed: state updates may still be on their way.
        if text is not None and text != self.textarea.value:
            self.textarea.value = text
        self.submit()

    @observe("limit")
    def _limit_changed(self, _change: dict[str, Any]) -> None:
        self._update_count()

    def _update_count(self) -> None:
        text = f"{self.length:,} / {self.limit:,}"
        if self.over_limit:
            text = f'<span class="ipyimagegen-over" title="Too long for this model: shorten it">{text}</span>'
        self.count.value = f'<span title="{html.escape("characters / limit")}">{text}</span>'
