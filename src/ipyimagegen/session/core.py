"""A session: a backend, a gallery and the life of every job run over them, told as events.

A script or a widget submits a request; the session runs it in a worker thread, saves what it
makes to the gallery before it tells anyone, and tells its subscribers each step as a typed event
(:mod:`ipyimagegen.session.events`). Nothing here knows about widgets.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..api.backend import Backend
from ..api.parallel import run_parallel, validate_parallel
from ..api.types import CallHooks, GeneratedImage, ImageRequest, ImagesResponse, PartialImage
from ..errors import CancelledError
from ..gallery import GalleryWriter
from .events import (
    ImageSaved,
    JobCancelled,
    JobEvent,
    JobFailed,
    JobKept,
    JobStarted,
    LateArrived,
    PartialArrived,
    ResultsReady,
    ThumbnailReady,
)
from .runner import Job, JobRunner
from .saving import OnThumbnail, save_to_gallery
from .spending import Spending

log = logging.getLogger(__name__)

Subscriber = Callable[[JobEvent], Any]
Finish = Callable[[GeneratedImage], None]


class Session:
    """Runs image jobs on ``backend`` one at a time, keeps their results in ``gallery``, and tells
    subscribers what happens as events.

    >>> session = Session(PreviewEngine(), Gallery(folder))          # doctest: +SKIP
    >>> session.subscribe(print)                                      # doctest: +SKIP
    >>> job = session.submit(GenerateRequest(prompt="a lighthouse", n=2))  # doctest: +SKIP
    >>> session.wait()                                                # doctest: +SKIP

    ``runner`` runs the jobs (sessions that share one run one job at a time between them);
    ``max_workers``: concurrent requests where a model makes fewer images per call than asked;
    ``thumbnail_side``: the thumbnails made for every result, in pixels.
    """

    def __init__(
        self,
        backend: Backend,
        gallery: GalleryWriter | None = None,
        *,
        runner: JobRunner | None = None,
        max_workers: int = 4,
        thumbnail_side: int = 256,
    ) -> None:
        self.backend = backend
        self.gallery = gallery
        self.runner = runner if runner is not None else JobRunner()
        self.max_workers = max_workers
        self.thumbnail_side = thumbnail_side
        self.spending = Spending()
        """The estimated cost of the results so far (sessions may share one)."""
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    @property
    def busy(self) -> bool:
        """A job is running (on this session's runner)."""
        return self.runner.busy

    def subscribe(self, callback: Subscriber, remove: bool = False) -> None:
        """``callback(event)`` for every event of every job (called from worker threads)."""
        with self._lock:
            if remove:
                self._subscribers.remove(callback)
            else:
                self._subscribers.append(callback)

    def submit(
        self,
        request: ImageRequest,
        *,
        parent_id: str | None = None,
        labels: dict[str, Any] | None = None,
        finish: Finish | None = None,
        label: str = "",
        watch: Subscriber | None = None,
    ) -> Job:
        """Check ``request`` and start it in a worker thread; returns the job at once.

        ``parent_id``: the gallery item the results are made from. ``labels`` go into every
        result's metadata (and so into the gallery). ``finish(image)`` changes each image in place,
        once, before anyone is told of it or it is saved. ``watch(event)`` gets this job's events,
        from the first on, before the subscribers do.

        Raises :class:`ValidationError` when the request cannot be sent, and :class:`RuntimeError`
        while another job runs.
        """
        self.check(request)
        return self.runner.run(_JobRun(self, request, parent_id, labels or {}, finish, watch, label).job)

    @staticmethod
    def check(request: ImageRequest) -> None:
        """Raise :class:`ValidationError` when ``request`` cannot be sent (what :meth:`submit` checks first)."""
        validate_parallel(request)

    def cancel(self) -> bool:
        """Cancel the running job (what it made so far is kept); True if one ran."""
        return self.runner.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the current job's thread to end; True if it did."""
        return self.runner.wait(timeout)

    def emit(self, event: JobEvent, watch: Subscriber | None = None) -> None:
        """Tell ``watch`` and then every subscriber; the first failure is raised once all are told."""
        with self._lock:
            listeners = [watch] if watch is not None else []
            listeners += self._subscribers
        failure: Exception | None = None
        for listener in listeners:
            try:
                listener(event)
            except Exception as exc:
                failure = failure or exc
        if failure is not None:
            raise failure


class _Seen:
    """Images met before, by identity (a part's images are in the whole response too). They are held
    weakly: a finished job keeps no image alive, and an id counts only while its image lives."""

    def __init__(self) -> None:
        self._images: weakref.WeakValueDictionary[int, GeneratedImage] = weakref.WeakValueDictionary()
        self._lock = threading.Lock()

    def first_time(self, image: GeneratedImage) -> bool:
        with self._lock:
            if self._images.get(id(image)) is image:
                return False
            self._images[id(image)] = image
            return True


CANCEL_TOLD_S = 5.0
"""How long a cancelled job's worker waits for the cancelling thread to tell :class:`JobCancelled`, so that
:class:`JobKept` comes after it."""


class _JobRun:
    """One submitted request: the call in the worker thread and what it tells the session's listeners.

    An image that arrives before the call is done (an engine makes its batch image by image, or a part
    of a parallel call arrives) is saved and told at once (:class:`ImageSaved`); the call's response
    then saves only what is new. Saving and telling an image, and telling the cancel, happen one at a
    time: an image is either told before :class:`JobCancelled` (and kept) or dropped.
    """

    def __init__(
        self,
        session: Session,
        request: ImageRequest,
        parent_id: str | None,
        labels: dict[str, Any],
        finish: Finish | None,
        watch: Subscriber | None,
        label: str,
    ) -> None:
        self.session = session
        self.request = request
        self.parent_id = parent_id
        self.labels = labels
        self._finish = finish
        self._finished = _Seen()
        self._shown = _Seen()
        self._saved = _Seen()
        self._told: list[GeneratedImage] = []  # saved and told while the job ran (until it ends)
        self._save_errors: list[Exception] = []
        self._telling = threading.RLock()  # a subscriber may cancel while it is told of an image
        self._cancel_told = threading.Event()
        self.watch = watch
        self.job = Job(
            self.work,
            total=request.n,
            label=label,
            on_result=self.done,
            on_error=self.failed,
            on_partial=self.partial,
            on_cancel=self.cancelled,
        )

    def emit(self, event: JobEvent) -> None:
        self.session.emit(event, self.watch)

    def finish(self, images: list[GeneratedImage]) -> None:
        """``finish(image)`` for each image not finished yet."""
        for image in images:
            if self._finish is not None and self._finished.first_time(image):
                self._finish(image)

    # -- the worker thread --------------------------------------------------------------------

    def work(self, hooks: CallHooks) -> ImagesResponse:
        """The call, each image saved and told as it arrives, then the response with the rest saved."""
        self.emit(JobStarted(self.job, self.request))
        hooks = replace(hooks, on_images=self.arrived, on_late=self.late)
        session = self.session
        try:
            response = run_parallel(session.backend, self.request, hooks, max_workers=session.max_workers)
            hooks.check_cancelled()
            self.finish(response.data)
            self.save(response, on_thumbnail=self.thumbnail)
            response.errors.extend(self._save_errors[:1])
            return response
        except CancelledError as exc:
            self.keep(exc.kept)
            raise
        except Exception as exc:
            if not self._told:
                raise
            return self._made_before(exc)
        finally:
            self._told = []  # the job (the runner's last) holds no image once it ends

    def arrived(self, first: int, images: list[GeneratedImage]) -> None:
        """Images ``first``, ``first + 1``... of the job, made before the whole call is done: each is saved,
        its thumbnail told while its file is written, then told (:class:`ImageSaved`)."""
        with self._telling:
            if self._cancel_told.is_set():
                return  # made as the job was cancelled: dropped, as the rest are
            fresh = [(first + k, image) for k, image in enumerate(images) if self._saved.first_time(image)]
            if not fresh:
                return
            for index, image in fresh:
                image.index = index  # its place in the whole job (a part numbers its own from 0)
            made = [image for _index, image in fresh]
            self.finish(made)
            part = ImagesResponse(data=made, request=self.request)
            self._write(part, on_thumbnail=self.thumbnail_now)
            self._save_errors += part.errors
            for index, image in fresh:
                self._told.append(image)
                try:
                    self.emit(ImageSaved(self.job, index, image))
                except Exception:  # the call goes on: the watcher gets the image with the ending anyway
                    log.exception("could not hand on an image as it arrived")

    def keep(self, parts: ImagesResponse | None) -> None:
        """After a cancel: tell what is kept, once the cancel is told — the images told before it, and the
        parts of a parallel call that were done (saved now: they are paid for)."""
        if self.job.cancelled and not self._cancel_told.wait(CANCEL_TOLD_S):
            log.warning("job %d: the cancel was not told in time; what it kept is told anyway", self.job.id)
        with self._telling:
            kept = list(self._told)
            errors = list(self._save_errors[:1])
            if parts is not None:
                self.finish(parts.data)
                fresh = self.save(parts)
                kept += fresh.data if fresh is not None else []
                errors += fresh.errors if fresh is not None else []
            if not kept:
                return
            kept.sort(key=lambda image: image.index)
            backend = parts.backend if parts is not None else self.session.backend.name
            response = ImagesResponse(data=kept, request=self.request, backend=backend, errors=errors)
            self.emit(JobKept(self.job, response))

    def _made_before(self, error: Exception) -> ImagesResponse:
        """The job's response when the call failed after some of its images were told: those images, with
        the failure in its errors."""
        told = sorted(self._told, key=lambda image: image.index)
        return ImagesResponse(
            data=told,
            request=self.request,
            backend=self.session.backend.name,
            model=self.request.model,
            elapsed_s=self.job.elapsed_s,
            errors=[error, *self._save_errors[:1]],
        )

    def thumbnail(self, index: int, image: GeneratedImage) -> None:
        """Image ``index``'s thumbnail is made: told once for each image, while the job is not cancelled."""
        if not self.job.cancelled:
            self.thumbnail_now(index, image)

    def thumbnail_now(self, _position: int, image: GeneratedImage) -> None:
        """The thumbnail of an image that arrived early is made: told once, at its index in the job (an
        image being saved and told is told whole: the cancel waits for it)."""
        if self._shown.first_time(image):
            self.emit(ThumbnailReady(self.job, image.index, image))

    def late(self, response: ImagesResponse) -> None:
        """A part sent before a cancel that arrived anyway: saved to the gallery (it is paid for)."""
        self.finish(response.data)
        fresh = self.save(response)
        if fresh is None:
            return  # every image of it was saved and told before the cancel
        saved = self.session.gallery is not None and not fresh.errors
        self.emit(LateArrived(self.job, fresh, saved))

    def save(
        self, response: ImagesResponse, on_thumbnail: OnThumbnail | None = None
    ) -> ImagesResponse | None:
        """Save the images of ``response`` not saved yet (their thumbnails made on the way); the response of
        those (``response`` itself when it is all of them), or None when there are none."""
        fresh = [image for image in response.data if self._saved.first_time(image)]
        if not fresh:
            return None
        part = response if len(fresh) == len(response.data) else replace(response, data=fresh, errors=[])
        self._write(part, on_thumbnail)
        if part is not response:
            response.errors += part.errors
        return part

    def _write(self, response: ImagesResponse, on_thumbnail: OnThumbnail | None) -> None:
        """Label the images and save them to the gallery (their thumbnails made on the way)."""
        for image in response.data:
            image.metadata.update(self.labels)
        session = self.session
        save_to_gallery(
            session.gallery, response, self.parent_id, on_thumbnail, thumbnail_side=session.thumbnail_side
        )

    # -- the runner's callbacks -----------------------------------------------------------------

    def done(self, response: ImagesResponse) -> None:
        self.session.spending.add(response)
        self.emit(ResultsReady(self.job, response))

    def failed(self, error: BaseException) -> None:
        self.emit(JobFailed(self.job, error))

    def partial(self, partial: PartialImage) -> None:
        self.emit(PartialArrived(self.job, partial))

    def cancelled(self) -> None:
        """Told in the thread that cancels, once no image is being saved and told."""
        with self._telling:
            self._cancel_told.set()
            self.emit(JobCancelled(self.job))
