"""What the Generate, Edit and Variations tabs share: one backend call at a time in the studio's
runner, its results saved to the gallery, then shown in the grid, and a summary in the status line."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
from ipywidgets import CallbackDispatcher

from ..api.backend import Backend
from ..api.errors import CancelledError, ImageInputError, ValidationError
from ..api.parallel import run_parallel, validate_parallel
from ..api.types import CallHooks, GeneratedImage, ImageRequest, ImagesResponse
from ..gallery import GalleryLike
from .job_controls import JobControls
from .result_grid import ResultBatch, ResultGrid
from .results import Spending, save_to_gallery, show_as_they_come, show_summary
from .worker import Job, JobRunner


class ImagesTab(widgets.VBox):
    """A tab that asks the backend for images.

    A subclass calls :meth:`_connect` first in its constructor, makes ``self.controls`` (its
    Run/Cancel buttons and status line) and starts jobs with :meth:`start`. ``on_result(callback)``
    gets each :class:`ImagesResponse` once it is shown.
    """

    controls: JobControls

    def _connect(
        self,
        backend: Backend,
        runner: JobRunner,
        grid: ResultGrid,
        gallery: GalleryLike | None,
        max_workers: int,
    ) -> None:
        """The backend to call, the runner to call it in, the grid to show results and the gallery to keep them."""
        self.backend = backend
        self.runner = runner
        self.grid = grid
        self.gallery = gallery
        self.max_workers = max_workers
        self.spending = Spending()  # a studio shares one between its tabs
        self._result_handlers = CallbackDispatcher()

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
        """Check the request at once, show placeholder tiles and run the call in the worker thread.

        Returns the job, or None when the request is refused (the reason is in the status line).
        ``notice`` (a warning) stays in front of the status while the job runs and after it.
        ``labels`` go into every result's metadata (and so into the gallery). ``finish(image)``
        changes each image in place, once, before it is shown or saved (in the worker thread).
        """
        if self.runner.busy:
            self.controls.show_status("Still working: wait for the current images or cancel them.", "warning")
            return None
        try:
            request = make_request()
            validate_parallel(request)
        except (ValidationError, ImageInputError) as exc:
            self.controls.show_error(exc)
            return None
        # The call starts first and the placeholder tiles are made while it runs; whatever reaches
        # the tiles waits until they are there.
        placed = threading.Event()
        made: list[ResultBatch] = []

        def tiles() -> ResultBatch | None:
            placed.wait()
            return made[0] if made else None

        def to_tiles(act: Callable[..., Any]) -> Callable[..., None]:
            """``act(batch, *args)``, once the tiles are there."""

            def deliver(*args: Any) -> None:
                batch = tiles()
                if batch is not None:
                    act(batch, *args)

            return deliver

        number = self.grid.next_number()
        job = self.controls.start(
            lambda hooks: self._make(request, parent_id, hooks, labels or {}, tiles, _once(finish)),
            total=request.n,
            label=f"#{number}",
            on_result=to_tiles(lambda batch, response: self._show_results(batch, response, notice)),
            on_error=to_tiles(lambda batch, _exc: batch.discard()),
            on_partial=to_tiles(ResultBatch.show_partial),
            on_cancel=to_tiles(lambda batch: batch.discard(keep_shown=True)),
        )
        try:
            made.append(self.grid.start(request, number=number))
        finally:
            placed.set()
        if notice:
            self.controls.show_status(notice + "Working…", "warning")
        return job

    def _make(
        self,
        request: ImageRequest,
        parent_id: str | None,
        hooks: CallHooks,
        labels: dict[str, Any],
        tiles: Callable[[], ResultBatch | None],
        finish: Callable[[GeneratedImage], None],
    ) -> ImagesResponse:
        """Runs in the worker thread: the call, then each thumbnail in its tile as it is made while the
        gallery writes the files; the tiles' actions come when the job ends, the files on disk."""

        def show(index: int, image: GeneratedImage) -> None:
            batch = tiles()
            if batch is not None and not hooks.cancelled:
                batch.show_ready(index, image)

        def as_they_come(first: int, images: list[GeneratedImage]) -> None:  # parts of a parallel call
            for image in images:
                finish(image)
            show_as_they_come(first, images, show)

        def late(response: ImagesResponse) -> None:
            for image in response.data:
                finish(image)
            self._keep_late(response, parent_id, labels)

        hooks.on_images = as_they_come
        hooks.on_late = late
        try:
            response = run_parallel(self.backend, request, hooks, max_workers=self.max_workers)
        except CancelledError as exc:
            if exc.kept is not None:
                for image in exc.kept.data:
                    finish(image)
                self._keep_cancelled(exc.kept, parent_id, labels, tiles())
            raise
        hooks.check_cancelled()
        for image in response.data:
            finish(image)
        self._save(response, parent_id, labels, on_thumbnail=show)
        return response

    def _save(
        self,
        response: ImagesResponse,
        parent_id: str | None,
        labels: dict[str, Any],
        on_thumbnail: Callable[[int, GeneratedImage], None] | None = None,
    ) -> None:
        """Label the images and save them to the gallery (their thumbnails made on the way)."""
        for image in response.data:
            image.metadata.update(labels)
        save_to_gallery(self.gallery, response, parent_id, on_thumbnail=on_thumbnail)

    def _keep_cancelled(
        self, kept: ImagesResponse, parent_id: str | None, labels: dict[str, Any], batch: ResultBatch | None
    ) -> None:
        """After a cancel: the images done are saved and filled in (they are paid for)."""
        self._save(kept, parent_id, labels)
        if batch is not None:
            batch.keep(kept)
        asked = kept.request.n if kept.request is not None else len(kept.data)
        self.controls.show_status(f"Cancelled: kept {len(kept.data)} of {asked}.", "info")

    def _keep_late(self, late: ImagesResponse, parent_id: str | None, labels: dict[str, Any]) -> None:
        """A part sent before a cancel that arrived anyway: saved to the gallery (it is paid for)."""
        self._save(late, parent_id, labels)
        if self.gallery is not None and not late.errors:
            self.controls.show_status(
                f"{len(late.data)} more image(s) arrived after Cancel: they are in the gallery (History).",
                "info",
            )

    def _show_results(self, batch: ResultBatch, response: ImagesResponse, notice: str) -> None:
        batch.fill(response)
        show_summary(self.controls, response, prefix=notice, spending=self.spending)
        self._result_handlers(response)


def _once(finish: Callable[[GeneratedImage], None] | None) -> Callable[[GeneratedImage], None]:
    """``finish`` that runs at most once for each image (a part's images are in the whole response too)."""
    done: set[int] = set()
    lock = threading.Lock()

    def run(image: GeneratedImage) -> None:
        with lock:
            if finish is None or id(image) in done:
                return
            done.add(id(image))
        finish(image)

    return run
