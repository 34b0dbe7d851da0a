"""The Generate tab: prompt, parameters, Generate/Cancel, progress and status.

Clicking Generate (or Ctrl+Enter) checks the request at once, shows placeholder tiles and
starts the call in the worker thread: the kernel thread returns immediately. Results are
saved to the gallery (when there is one) before they are shown.
"""

from __future__ import annotations

import ipywidgets as widgets

from ..api.backend import Backend
from ..gallery import GalleryWriter
from ..session import Job, JobRunner
from .images_tab import ImagesTab
from .job_controls import JobControls
from .params_panel import ParamsPanel
from .prompt_box import PromptBox
from .result_grid import ResultGrid


class GenerateTab(ImagesTab):
    """Make images from a prompt. ``on_result(callback)`` gets each :class:`ImagesResponse` shown."""

    def __init__(
        self,
        backend: Backend,
        runner: JobRunner,
        grid: ResultGrid,
        *,
        gallery: GalleryWriter | None = None,
        max_workers: int = 4,
    ) -> None:
        self._connect(backend, runner, grid, gallery, max_workers)
        self.params = ParamsPanel(backend)
        self.prompt_box = PromptBox(limit=self.params.spec.prompt_max)
        self.controls = JobControls(runner, run_label="Generate", run_class="ipyimagegen-generate")
        self.params.observe(lambda _change: self._model_changed(), "model")
        self.prompt_box.on_submit(lambda _box: self.generate())
        self.controls.on_run(self.generate)
        super().__init__([self.prompt_box, self.params, self.controls], layout=widgets.Layout(width="100%"))
        self.add_class("ipyimagegen-generate-tab")

    def generate(self) -> Job | None:
        """Start making images for the prompt; returns the job, or None if the request was refused."""
        return self.start(lambda: self.params.request(self.prompt_box.value))

    def _model_changed(self) -> None:
        self.prompt_box.limit = self.params.spec.prompt_max
