"""The studio: a backend status line, tabs (Generate, Edit, Variations, History) and one result grid.

Each tab runs its jobs through a :class:`~ipyimagegen.session.Session`; the tabs share the
studio's :class:`JobRunner` (one job at a time), its spending and its :class:`ResultGrid`. A tile's
"Edit" and "Variations" actions are routed to the tab of that name: its widget (an
:class:`ImageReceiver`) receives the image and is selected.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from os import PathLike
from pathlib import Path
from typing import Any, Literal, Protocol, cast, get_args, runtime_checkable

import ipywidgets as widgets
from ipywidgets import CallbackDispatcher

from ..api.backend import Backend, ClassWall
from ..api.types import GeneratedImage
from ..backend_choice import default_backend, describe_backend
from ..engines.preview import PreviewEngine
from ..errors import ImagesError, UnsupportedError, describe_error
from ..gallery import GalleryReader
from ..session import JobRunner
from .budget_line import BudgetLine
from .edit_tab import EditTab
from .generate_tab import GenerateTab
from .history import HistoryBrowser
from .lifecycle import close_contents, close_tree
from .result_grid import ResultGrid
from .studio_gallery import history_tab, open_gallery, settings_of
from .style import style_widget
from .variations_tab import VariationsTab

TabTitle = Literal["Generate", "Edit", "Variations", "History"]
TAB_TITLES: tuple[TabTitle, ...] = get_args(TabTitle)
RECEIVING: tuple[TabTitle, ...] = ("Edit", "Variations")
WORK_BESIDE: tuple[TabTitle, ...] = ("Generate", "Variations")
"""The tabs whose results show beside their controls on a wide page."""
"""The tabs a tile's action (or History's) sends an image to."""


@runtime_checkable
class ImageReceiver(Protocol):
    """What the Edit and Variations tabs hold: a widget that takes an image to work on."""

    def use_image(self, image: GeneratedImage) -> None: ...


def _unopened_tab() -> widgets.HTML:
    """What stands in a tab until it is first opened (then its widgets are made)."""
    return widgets.HTML('<div class="ipyimagegen-placeholder">Opening…</div>')


REVEAL: dict[TabTitle, tuple[str, str, str | None]] = {
    "Generate": (
        ".ipyimagegen-generate-tab textarea.ipyimagegen-prompt, .ipyimagegen-generate-tab .ipyimagegen-prompt textarea",
        "center",
        None,
    ),
    "Edit": (".ipyimagegen-edit-tab .ipyimagegen-mask-painter", "start", ".ipyimagegen-painter-box"),
    "Variations": (".ipyimagegen-variations-tab .ipyimagegen-variations-run", "center", None),
}
"""What a tile's Use prompt, Edit and Variations bring into view in the tab they open: (selector,
where it goes in the window, what takes the keys). Edit puts the painter's top at the window's top."""


class Studio(widgets.VBox):
    """The composite image studio. ``ipyimagegen.studio()`` makes one on the default backend.

    ``gallery``: where every result is saved before it is shown, and what the History tab
    browses. By default the gallery folder (``$IPYIMAGEGEN_GALLERY``, else
    ``./ipyimagegen-gallery``); a path opens the gallery there; ``False`` saves nothing (the grid
    then keeps every result it shows in memory); or any object with
    ``save_response(response, parent_id=None)``. ``save_dir``: where a tile's Save
    and Compare's Save PDF write (default: the gallery's folder when it has one, else the
    current folder). ``draft_name``: whose Edit draft this studio keeps and brings back (by default
    the notebook's own: each notebook, and each Voila app, has its own).

    The Edit, Variations and History tabs are made when they are first opened (or used from
    Python), so a new studio sends the browser a fraction of its widgets.
    """

    def __init__(
        self,
        backend: Backend | None = None,
        gallery: Any = None,
        *,
        save_dir: str | Path | None = None,
        draft_name: str | None = None,
    ) -> None:
        if backend is None:
            backend = default_backend()
        self.backend = backend
        self._owns_gallery = gallery is None or isinstance(gallery, (str, PathLike))
        gallery, gallery_problem = open_gallery(gallery)
        self.gallery = gallery
        self.runner = JobRunner()
        folder = save_dir if save_dir is not None else _gallery_folder(gallery)
        self.grid = ResultGrid(save_dir=folder)
        self.grid.gallery = gallery
        self.header = widgets.HTML(self._header_html(gallery_problem))
        self.header.add_class("ipyimagegen-backend")
        self.generate_tab = GenerateTab(backend, self.runner, self.grid, gallery=gallery)
        self.spending = self.generate_tab.spending
        self.budget_line = BudgetLine(backend, self.runner)  # a workshop token's images and dollars left
        self.generate_tab.budget = self.budget_line
        self._unopened: dict[str, Callable[[], widgets.Widget]] = {
            "Edit": lambda: self._sharing(
                EditTab(backend, self.runner, self.grid, gallery=gallery, draft_name=draft_name)
            ),
            "Variations": lambda: self._sharing(
                VariationsTab(backend, self.runner, self.grid, gallery=gallery)
            ),
            "History": lambda: self._make_history(gallery_problem),
        }
        self.tabs = widgets.Tab(
            children=[self.generate_tab, *(_unopened_tab() for _ in TAB_TITLES[1:])], titles=TAB_TITLES
        )
        self._edit_handlers = CallbackDispatcher()
        self._variations_handlers = CallbackDispatcher()
        self.grid.on_action("use_prompt", self.use_prompt)
        self.grid.on_action("same_seed", self.same_seed)
        self.grid.can_share = lambda: isinstance(backend, ClassWall) and backend.shares_pictures
        self.grid.on_action("share", self.share)
        self.grid.on_action("edit", lambda image: self._route("Edit", image, self._edit_handlers))
        self.grid.on_action(
            "variations", lambda image: self._route("Variations", image, self._variations_handlers)
        )
        self._history_stale = False
        self.grid.on_action("filled", lambda _response: self._results_saved())
        self.tabs.observe(self._tab_selected, "selected_index")
        self.body = widgets.GridBox([self.tabs, self.grid])
        self.body.add_class("ipyimagegen-studio-body")
        self._place_work("Generate")
        super().__init__([style_widget(), self.header, self.budget_line, self.body])
        self.add_class("ipyimagegen-studio")

    def _sharing(self, tab: EditTab | VariationsTab) -> EditTab | VariationsTab:
        tab.spending = self.spending  # one session total across the tabs
        tab.budget = self.budget_line
        return tab

    # -- the gallery -------------------------------------------------------------------------

    def _make_history(self, problem: str) -> widgets.Widget:
        history = history_tab(self.gallery, problem)
        if isinstance(history, HistoryBrowser):
            history.on_reuse(self.reuse_settings)
            history.on_edit(lambda item: self._route("Edit", item, self._edit_handlers))
            history.on_variations(lambda item: self._route("Variations", item, self._variations_handlers))
            history.on_delete(self.grid.remove_saved)
        self._history_stale = False  # a new browser lists the gallery as it is now
        return history

    @property
    def history(self) -> HistoryBrowser | None:
        """The History tab's browser (None when there is no gallery to browse)."""
        history = self.tab("History")
        return history if isinstance(history, HistoryBrowser) else None

    def refresh_history(self) -> None:
        """Show newly saved images in the History tab."""
        self._history_stale = False
        if self.history is not None:
            self.history.refresh()

    def _results_saved(self) -> None:
        """New results are in the gallery: the History tab shows them now if it is open, else when opened."""
        if "History" in self._unopened:
            return  # it lists the gallery when it is made
        if self.tabs.selected_index == self._index("History"):
            self.refresh_history()
        else:
            self._history_stale = True

    def _place_work(self, title: TabTitle) -> None:
        """Where the results go: beside the tab's controls on a wide page (Generate, Variations), or
        under the tab (Edit has its painter beside its controls; History fills the width)."""
        if title in WORK_BESIDE:
            self.body.add_class("ipyimagegen-work-beside")
        else:
            self.body.remove_class("ipyimagegen-work-beside")

    def _tab_selected(self, change: dict[str, Any]) -> None:
        index = change["new"]
        if index is None:
            return
        title = cast(TabTitle, self.tabs.titles[index])
        self._place_work(title)
        self.tab(title)  # made now if it is opened for the first time
        if title == "History" and self._history_stale:
            self.refresh_history()

    def reuse_settings(self, item: Any) -> list[str]:
        """Put a saved image's prompt and parameters in the Generate tab and show it.

        Returns the parameters skipped because the backend or model does not take them.
        """
        tab = self.generate_tab
        skipped = tab.params.apply(settings_of(item))
        if item.prompt:
            tab.prompt_box.value = item.prompt
        parts = [f"Settings of {item.id} are in the form"]
        if not item.prompt:
            parts.append("it had no prompt, so the prompt box is as it was")
        if skipped:
            parts.append(f"{tab.params.model} does not take its {', '.join(skipped)}, so those are unchanged")
        tab.controls.show_status("; ".join(parts) + ".", "warning" if skipped else "info")
        self.select("Generate")
        return skipped

    def close(self) -> None:
        """Close every widget the studio made (opened tabs, tiles, panels), and the gallery it opened itself."""
        self.runner.cancel()
        close_contents(self)  # the grid among them: its close() takes its shared parts and panels too
        super().close()
        if self._owns_gallery and self.gallery is not None:
            self.gallery.close()

    # -- tabs --------------------------------------------------------------------------------

    @property
    def edit_tab(self) -> EditTab:
        return self.tab("Edit")  # type: ignore[return-value]

    @property
    def variations_tab(self) -> VariationsTab:
        return self.tab("Variations")  # type: ignore[return-value]

    def tab(self, title: TabTitle) -> widgets.Widget:
        """The widget of the tab called ``title`` (made now if the tab was never opened)."""
        make = self._unopened.get(title)
        if make is not None:
            self.set_tab(title, make())
        return self.tabs.children[self._index(title)]

    def set_tab(self, title: TabTitle, widget: widgets.Widget) -> None:
        """Put ``widget`` in the tab called ``title`` (the widget it replaces is closed); the Edit and
        Variations tabs take an :class:`ImageReceiver`."""
        if title in RECEIVING and not isinstance(widget, ImageReceiver):
            raise TypeError(
                f"the {title} tab takes a widget with a use_image(image) method, not {type(widget).__name__}"
            )
        self._unopened.pop(title, None)
        index = self._index(title)
        old = self.tabs.children[index]
        children = list(self.tabs.children)
        children[index] = widget
        titles = self.tabs.titles
        self.tabs.children = tuple(children)
        self.tabs.titles = titles
        if old is not widget:
            close_tree(old)

    def select(self, title: TabTitle) -> None:
        self.tabs.selected_index = self._index(title)

    def _index(self, title: TabTitle) -> int:
        titles = list(self.tabs.titles)
        if title not in titles:
            raise KeyError(f"no tab called {title!r}; the tabs are {', '.join(titles)}")
        return titles.index(title)

    # -- routing tile actions ----------------------------------------------------------------

    def on_edit(self, callback: Callable[[GeneratedImage], Any], remove: bool = False) -> None:
        """``callback(image)`` when a tile's "Edit" is clicked."""
        self._edit_handlers.register_callback(callback, remove=remove)

    def on_variations(self, callback: Callable[[GeneratedImage], Any], remove: bool = False) -> None:
        """``callback(image)`` when a tile's "Variations" is clicked."""
        self._variations_handlers.register_callback(callback, remove=remove)

    def use_prompt(self, prompt: str) -> None:
        """Put ``prompt`` in the Generate tab's prompt box, show that tab and bring the box into view."""
        self.generate_tab.prompt_box.value = prompt
        self.select("Generate")
        self.grid.reveal(*REVEAL["Generate"])

    def same_seed(self, image: GeneratedImage) -> None:
        """A result's prompt, settings and seed in the Generate tab (the same image again, or a
        variant of it with a changed prompt, on an engine that honours seeds)."""
        request = image.request
        tab = self.generate_tab
        if request is not None:
            settings = {
                name: getattr(request, name, None)
                for name in ("model", "size", "quality", "style", "background", "output_format", "complexity")
            }
            tab.params.apply(
                {**{k: v for k, v in settings.items() if v is not None}, "seed": image.seed, "n": 1}
            )
            prompt = getattr(request, "prompt", None)
            if prompt:
                tab.prompt_box.value = prompt
        tab.controls.show_status(f"Seed {image.seed} and its settings are in the form.", "info")
        self.select("Generate")
        self.grid.reveal(*REVEAL["Generate"])

    def share(self, image: GeneratedImage) -> threading.Thread:
        """Put a result, with the prompt the user wrote, on the workshop server's class wall: sent from a
        worker thread, with a notice when it is there (or why it is not). Returns the thread."""
        prompt = getattr(image.request, "prompt", None) or image.prompt or ""

        def send() -> None:
            try:
                if not isinstance(self.backend, ClassWall):
                    raise UnsupportedError(f"{self.backend.name} has no class wall to share on.")
                self.backend.share_picture(image.data, prompt)
            except ImagesError as exc:
                self.grid.show_notice(html.escape(f"Not shared: {describe_error(exc)}"), "error")
            else:
                self.grid.show_notice("Shared with the class: it is on the workshop host's wall.", "ok")

        worker = threading.Thread(target=send, name="ipyimagegen-share", daemon=True)
        worker.start()
        return worker

    def _route(self, title: TabTitle, image: GeneratedImage, handlers: CallbackDispatcher) -> None:
        receiver = cast(ImageReceiver, self.tab(title))  # set_tab takes nothing else for these tabs
        receiver.use_image(image)
        self.select(title)
        self.grid.reveal(*REVEAL[title])
        handlers(image)

    # -- header ------------------------------------------------------------------------------

    def _header_html(self, gallery_problem: str = "") -> str:
        """What makes the images (the preview engine is marked, so nobody takes it for a model), and
        a gallery that could not be opened (it stays in view: results are not kept meanwhile)."""
        text = html.escape(describe_backend(self.backend))
        if isinstance(self.backend, PreviewEngine):
            text = f'<span class="ipyimagegen-offline">{text}</span>'
        problem = f'<div class="ipyimagegen-warning">{gallery_problem}</div>' if gallery_problem else ""
        return f"<b>Backend:</b> {text}{problem}"


def _gallery_folder(gallery: Any) -> Path | None:
    """The folder of a gallery that reads back what it keeps (None for one that only saves)."""
    return Path(gallery.root) if isinstance(gallery, GalleryReader) else None


def studio(
    backend: Backend | None = None,
    gallery: Any = None,
    *,
    save_dir: str | Path | None = None,
    draft_name: str | None = None,
) -> Studio:
    """Open the image studio (on the default backend: OpenAI when configured, else the preview engine)."""
    return Studio(backend=backend, gallery=gallery, save_dir=save_dir, draft_name=draft_name)
