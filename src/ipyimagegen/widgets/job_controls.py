"""Run and Cancel buttons, a progress line and a status area for jobs on a shared JobRunner.

Each tab that makes images (Generate, Edit, Variations) has its own controls over the
studio's one runner: while any job runs every run button is disabled; progress and Cancel
belong to the controls that started the job. The progress line sits under the buttons, across
the whole width, so that what a call waits for ("The workshop is busy: about 4 min, 37 ahead of
you. Trying again at 12:04.") is read whole, wrapped where the column is narrow.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
from ipywidgets import CallbackDispatcher

from ..errors import CancelledError, ImagesError, describe_error
from ..session import Job, JobRunner

log = logging.getLogger(__name__)


class JobControls(widgets.VBox):
    """``[Generate] [Cancel] [bar]``, then ``2 of 4 · 3.4 s · what it waits for`` while a job runs, then a
    status line.

    ``on_run(callback)`` is called with no arguments when the run button is clicked; the
    owner then starts a job and has these controls :meth:`follow` it.
    """

    def __init__(
        self, runner: JobRunner, *, run_label: str = "Generate", run_class: str = "ipyimagegen-generate"
    ) -> None:
        self.runner = runner
        self._job: Job | None = None
        self._run_handlers = CallbackDispatcher()
        self.run_button = widgets.Button(
            description=run_label,
            button_style="primary",
            icon="magic",
            layout=widgets.Layout(width="auto", min_width="130px"),
        )
        self.run_button.add_class(run_class)
        self.run_button.on_click(lambda _b: self._run_handlers())
        self.cancel_button = widgets.Button(
            description="Cancel", icon="stop", disabled=True, tooltip="Stop: the images made so far are kept",
            layout=widgets.Layout(width="100px"),
        )  # fmt: skip
        self.cancel_button.add_class("ipyimagegen-cancel")
        self.cancel_button.on_click(lambda _b: self.cancel())
        self.bar = widgets.IntProgress(
            value=0, min=0, max=1, layout=widgets.Layout(width="160px", visibility="hidden")
        )
        self.progress = widgets.HTML(layout=widgets.Layout(display="none"))
        self.progress.add_class("ipyimagegen-progress")
        self.status = widgets.HTML(layout=widgets.Layout(width="100%", min_height="24px"))
        self.status.add_class("ipyimagegen-status")
        row = widgets.HBox(
            [self.run_button, self.cancel_button, self.bar],
            layout=widgets.Layout(align_items="center", width="100%"),
        )
        super().__init__([row, self.progress, self.status], layout=widgets.Layout(width="100%"))
        runner.observe(self._runner_changed, ["busy", "done", "total", "elapsed_s", "note"])
        self._show_busy(runner.busy)

    @property
    def job(self) -> Job | None:
        """The last job these controls started."""
        return self._job

    @property
    def working(self) -> bool:
        return self._job is not None and self.runner.busy and self.runner.job is self._job

    def on_run(self, callback: Callable[[], Any], remove: bool = False) -> None:
        self._run_handlers.register_callback(callback, remove=remove)

    def follow(self, job: Job) -> None:
        """Show ``job``'s progress here and let Cancel stop it (the owner started it on the runner)."""
        self._job = job
        self._show_busy(self.runner.busy)  # the runner went busy before this job was ours
        self._refresh_progress()

    def cancel(self) -> bool:
        """Cancel this controls' job, if it is the one running."""
        if not self.working:
            return False
        return self.runner.cancel()

    def show_status(self, text: str, kind: str = "info") -> None:
        """One line of plain text in the status area; kind: info, ok, warning or error."""
        self.status.value = f'<span class="ipyimagegen-{kind}">{html.escape(text)}</span>' if text else ""

    def show_error(self, exc: BaseException) -> None:
        """What went wrong and what to do, readable; unexpected errors are logged with their traceback."""
        if isinstance(exc, CancelledError):
            self.show_status("Cancelled.", "info")
            return
        if not isinstance(exc, ImagesError):
            log.error("unexpected error while making images", exc_info=exc)
        self.show_status(describe_error(exc), "error")

    # -- following the runner ------------------------------------------------------------------

    def _runner_changed(self, change: dict[str, Any]) -> None:
        if change["name"] == "busy":
            self._show_busy(change["new"])
        self._refresh_progress()

    def _show_busy(self, busy: bool) -> None:
        self.run_button.disabled = busy
        self.cancel_button.disabled = not self.working
        self.bar.layout.visibility = "visible" if self.working else "hidden"
        self.progress.layout.display = None if self.working else "none"
        if not self.working:
            self.progress.value = ""  # the status line now says how it went

    def _refresh_progress(self) -> None:
        job = self._job
        if job is None or not self.working:
            return
        runner = self.runner
        total = max(runner.total, 1)
        if self.bar.max != total:
            self.bar.max = total
        self.bar.value = min(runner.done, total)
        note = f" · {html.escape(runner.note)}" if runner.note else ""
        self.progress.value = f"{runner.done} of {runner.total} · {runner.elapsed_s:.1f} s{note}"
