"""What the Generate, Edit and Variations tabs share: a job submitted to the session, its events
shown in the grid's tiles and the status line."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
from ipywidgets import CallbackDispatcher

from ..api.backend import Backend
from ..api.types import GeneratedImage, ImageRequest, ImagesResponse
from ..errors import ImageInputError, ValidationError, WorkshopBudgetError, describe_error
from ..gallery import GalleryWriter
from ..session import (
    ImageSaved,
    Job,
    JobCancelled,
    JobEvent,
    JobFailed,
    JobKept,
    JobRunner,
    LateArrived,
    PartialArrived,
    ResultsReady,
    Session,
    Spending,
    ThumbnailReady,
)
from .budget_line import BudgetLine
from .job_controls import JobControls
from .prompt_box import PromptBox
from .result_grid import ResultBatch, ResultGrid
from .style import THUMBNAIL_SIDE

FIRST_TILE = ".ipyimagegen-results .ipyimagegen-tile"
"""A job's tiles come first in the grid."""


class ImagesTab(widgets.VBox):
    """A tab that asks the backend for images through its :class:`Session`.

    A subclass calls :meth:`_connect` first in its constructor, makes ``self.controls`` (its
    Run/Cancel buttons and status line) and starts jobs with :meth:`start`. ``on_result(callback)``
    gets each :class:`ImagesResponse` once it is shown.
    """

    controls: JobControls
    reveal_results = True
    """Whether a job's new tiles are scrolled into view (the Edit tab shows its results on the painter)."""
    budget: BudgetLine | None = None
    """What the caller's workshop token has left (the studio's line): a request for more is lowered to fit."""

    def _connect(
        self,
        backend: Backend,
        runner: JobRunner,
        grid: ResultGrid,
        gallery: GalleryWriter | None,
        max_workers: int,
    ) -> None:
        """The session that runs the jobs (on ``runner``, shared by a studio's tabs) and the grid that shows them."""
        self.session = Session(
            backend, gallery, runner=runner, max_workers=max_workers, thumbnail_side=THUMBNAIL_SIDE
        )
        self.grid = grid
        self._result_handlers = CallbackDispatcher()

    @property
    def backend(self) -> Backend:
        return self.session.backend

    @property
    def runner(self) -> JobRunner:
        return self.session.runner

    @property
    def gallery(self) -> GalleryWriter | None:
        """Where results are saved before they are shown (None: nowhere)."""
        return self.session.gallery

    @gallery.setter
    def gallery(self, gallery: GalleryWriter | None) -> None:
        self.session.gallery = gallery

    @property
    def spending(self) -> Spending:
        """The estimated cost so far (a studio shares one between its tabs)."""
        return self.session.spending

    @spending.setter
    def spending(self, spending: Spending) -> None:
        self.session.spending = spending

    @property
    def status(self) -> widgets.HTML:
        return self.controls.status

    def on_result(self, callback: Callable[[ImagesResponse], Any], remove: bool = False) -> None:
        self._result_handlers.register_callback(callback, remove=remove)

    def start(
        self,
        make_request: Callable[[], ImageRequest],
        *,
        parent_id: str | None = None,
        notice: str = "",
        labels: dict[str, Any] | None = None,
        finish: Callable[[GeneratedImage], None] | None = None,
    ) -> Job | None:
        """Check the request at once, submit it to the session and show placeholder tiles while it runs.

        Returns the job, or None when the request is refused (the reason is in the status line).
        ``notice`` (a warning) stays in front of the status while the job runs and after it.
        ``labels`` go into every result's metadata (and so into the gallery). ``finish(image)``
        changes each image in place, once, before it is shown or saved (in the worker thread).
        """
        if self.session.busy:
            self.controls.show_status("Still working: wait for the current images or cancel them.", "warning")
            return None
        try:
            request = make_request()
            self.session.check(request)
            if self.budget is not None:
                request, notice = self.budget.fit(request, notice)
        except (ValidationError, ImageInputError, WorkshopBudgetError) as exc:
            self._show_refusal(exc)
            return None
        number = self.grid.next_number()
        view = _JobView(self, notice)
        self.controls.show_status(notice + "Working…", "warning" if notice else "info")
        job = self.session.submit(
            request, parent_id=parent_id, labels=labels, finish=finish, label=f"#{number}", watch=view
        )
        self.controls.follow(job)
        view.place(lambda: self.grid.start(request, number=number))  # while the call runs
        if self.reveal_results:
            self.grid.reveal(FIRST_TILE, "nearest", "")  # the new tiles in view, the keys where they were
        return job

    def _show_refusal(self, exc: Exception) -> None:
        """Why a request was not sent, beside its cause: a prompt's problem under the prompt (the run
        button's line points there), anything else at the run button."""
        prompt_box = getattr(self, "prompt_box", None)
        if getattr(exc, "param", None) == "prompt" and isinstance(prompt_box, PromptBox):
            prompt_box.show_problem(describe_error(exc))
            self.controls.show_status("Not sent: see the prompt.", "error")
        else:
            self.controls.show_error(exc)

    def _show_results(self, batch: ResultBatch, response: ImagesResponse, notice: str) -> None:
        batch.fill(response)
        self._show_outcome(response, notice)
        self._result_handlers(response)

    def _show_outcome(self, response: ImagesResponse, prefix: str) -> None:
        """``2 images in 0.3 s · ≈ $0.08 (estimate…).``, or what went wrong with some of them."""
        made = len(response.data)
        summary = f"{prefix}{made} image{'s' if made != 1 else ''} in {response.elapsed_s:.1f} s"
        summary += self.spending.words(response)
        if response.errors:
            first = response.errors[0]
            others = f" (and {len(response.errors) - 1} more)" if len(response.errors) > 1 else ""
            self.controls.show_status(
                f"{summary}. Not everything worked{others}: {describe_error(first)}", "warning"
            )
        else:
            self.controls.show_status(summary + ".", "warning" if prefix else "ok")


class _JobView:
    """One job as the tab shows it: its tiles and the status line follow the session's events.

    The call starts before the placeholder tiles are made, so events wait until they are there.
    """

    def __init__(self, tab: ImagesTab, notice: str) -> None:
        self.tab = tab
        self.notice = notice
        self._placed = threading.Event()
        self._batch: ResultBatch | None = None

    def place(self, make_tiles: Callable[[], ResultBatch]) -> None:
        try:
            self._batch = make_tiles()
        finally:
            self._placed.set()

    def __call__(self, event: JobEvent) -> None:
        controls = self.tab.controls
        match event:
            case PartialArrived(partial=partial):
                if (batch := self._tiles()) is not None:
                    batch.show_partial(partial)
            case ThumbnailReady(index=index, image=image):
                if (batch := self._tiles()) is not None:
                    batch.show_ready(index, image)
            case ImageSaved(index=index, image=image):
                if (batch := self._tiles()) is not None:
                    batch.fill_one(index, image)
            case ResultsReady(response=response):
                if (batch := self._tiles()) is not None:
                    self.tab._show_results(batch, response, self.notice)
            case JobFailed(error=error):
                controls.show_error(error)
                if (batch := self._tiles()) is not None:
                    batch.discard()
            case JobCancelled():
                controls.show_status("Cancelled.", "info")
                if (batch := self._tiles()) is not None:
                    batch.discard(keep_shown=True)
            case JobKept(kept=kept):
                if (batch := self._tiles()) is not None:
                    batch.keep(kept)
                controls.show_status(f"Cancelled: kept {len(kept.data)} of {event.asked}.", "info")
            case LateArrived(response=late, saved=True):  # the tiles are gone; the images are in the gallery
                controls.show_status(
                    f"{len(late.data)} more image(s) arrived after Cancel: they are in the gallery (History).",
                    "info",
                )

    def _tiles(self) -> ResultBatch | None:
        """The job's tiles, once they are made (None if they could not be)."""
        self._placed.wait()
        return self._batch
