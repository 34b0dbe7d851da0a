"""The Generate tab: prompt, parameters, Generate/Cancel, progress and status.

Clicking Generate (or Ctrl+Enter) checks the request at once, shows placeholder tiles and
starts the call in the worker thread: the kernel thread returns immediately. Results are
saved to the gallery (when there is one) before they are shown.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
from ipywidgets import CallbackDispatcher

from ..api.backend import Backend
from ..api.errors import ValidationError
from ..api.parallel import run_parallel, validate_parallel
from ..api.types import CallHooks, GenerateRequest, ImagesResponse
from .job_controls import JobControls
from .params_panel import ParamsPanel
from .prompt_box import PromptBox
from .result_grid import ResultBatch, ResultGrid
from .results import save_to_gallery, show_summary
from .worker import Job, JobRunner

log = logging.getLogger(__name__)


class GenerateTab(widgets.VBox):
    """Make images from a prompt. ``on_result(callback)`` gets each :class:`ImagesResponse` shown."""

    def __init__(
        self,
        backend: Backend,
        runner: JobRunner,
        grid: ResultGrid,
        *,
        gallery: Any = None,
        max_workers: int = 4,
    ) -> None:
        self.backend = backend
        self.runner = runner
        self.grid = grid
        self.gallery = gallery
        self.max_workers = max_workers
        self._result_handlers = CallbackDispatcher()
        self.params = ParamsPanel(backend)
        self.prompt_box = PromptBox(limit=self.params.spec.prompt_max)
        self.controls = JobControls(runner, run_label="Generate", run_class="ipyimagegen-generate")
        self.params.observe(lambda _change: self._model_changed(), "model")
        self.prompt_box.on_submit(lambda _box: self.generate())
        self.controls.on_run(self.generate)
        super().__init__([self.prompt_box, self.params, self.controls], layout=widgets.Layout(width="100%"))
        self.add_class("ipyimagegen-generate-tab")

    @property
    def status(self) -> widgets.HTML:
        return self.controls.status

    def on_result(self, callback: Callable[[ImagesResponse], Any], remove: bool = False) -> None:
        self._result_handlers.register_callback(callback, remove=remove)

    def generate(self) -> Job | None:
        """Start making images for the prompt; returns the job, or None if the request was refused."""
        if self.runner.busy:
            self.controls.show_status("Still working: wait for the current images or cancel them.", "warning")
            return None
        try:
            request = self.params.request(self.prompt_box.value)
            validate_parallel(request)
        except ValidationError as exc:
            self.controls.show_error(exc)
            return None
        batch = self.grid.start(request)
        return self.controls.start(
            lambda hooks: self._make(request, hooks),
            total=request.n,
            label=f"#{batch.number}",
            on_result=lambda response: self._show(batch, response),
            on_error=lambda _exc: batch.discard(),
            on_partial=batch.show_partial,
            on_cancel=batch.discard,
        )

    def _make(self, request: GenerateRequest, hooks: CallHooks) -> ImagesResponse:
        """Runs in the worker thread: the call, then the gallery, before anything is shown."""
        response = run_parallel(self.backend, request, hooks, max_workers=self.max_workers)
        hooks.check_cancelled()
        save_to_gallery(self.gallery, response, parent_id=None)
        return response

    def _show(self, batch: ResultBatch, response: ImagesResponse) -> None:
        batch.fill(response)
        show_summary(self.controls, response)
        self._result_handlers(response)

    def _model_changed(self) -> None:
        self.prompt_box.limit = self.params.spec.prompt_max
