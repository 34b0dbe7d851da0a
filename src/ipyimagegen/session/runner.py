"""Run slow calls off the kernel thread: one job at a time, with progress, elapsed time and cancel.

The kernel thread only starts a job and returns, so the notebook stays responsive while a
backend works. Results, errors and progress are delivered to the job's callbacks from the
worker thread (ipykernel sends widget messages from any thread). Cancelling returns to idle at
once; whatever the cancelled call produces later is dropped, never delivered.
"""

from __future__ import annotations

import ctypes
import itertools
import logging
import sys
import threading
import time
from collections.abc import Callable
from functools import cache
from typing import Any, Literal

from traitlets import Bool, Float, HasTraits, Instance, Int, Unicode

from ..api.types import CallHooks, PartialImage, Progress

log = logging.getLogger(__name__)

TICK_S = 0.25  # elapsed time is refreshed four times a second

Callback = Callable[..., Any]

JobState = Literal["running", "done", "failed", "cancelled"]


class Job:
    """One call to run in a worker thread (:meth:`JobRunner.run`), in one :data:`JobState`.

    ``work(hooks)`` does it; the callbacks hear how it ended (see :meth:`JobRunner.run`).
    """

    _ids = itertools.count(1)

    def __init__(
        self,
        work: Callable[[CallHooks], Any],
        *,
        total: int = 1,
        label: str = "",
        on_result: Callback | None = None,
        on_error: Callback | None = None,
        on_partial: Callback | None = None,
        on_cancel: Callback | None = None,
    ) -> None:
        self.id = next(self._ids)
        self.work = work
        self.total = total
        self.label = label
        self.on_result = on_result
        self.on_error = on_error
        self.on_partial = on_partial
        self.on_cancel = on_cancel
        self.cancel_event = threading.Event()
        self.state: JobState = "running"
        self.result: Any = None  # what the work returned, kept only when no on_result takes it
        self.error: BaseException | None = None
        self.started_at = time.perf_counter()
        self.finished_at: float | None = None
        self.thread: threading.Thread | None = None
        self.lock = threading.RLock()  # held while anything is delivered, and to cancel

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    @property
    def elapsed_s(self) -> float:
        end = self.finished_at if self.finished_at is not None else time.perf_counter()
        return end - self.started_at

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker thread to end; True if it did (also after a cancel)."""
        if self.thread is not None:
            self.thread.join(timeout)
            return not self.thread.is_alive()
        return True

    def __repr__(self) -> str:
        return f"Job(#{self.id}, {self.label!r}, {self.state}, {self.elapsed_s:.1f} s)"


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None on other C libraries."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def release_free_memory() -> None:
    """Give freed memory back to the system (glibc only; a fraction of a millisecond).

    A job decodes and encodes megabytes of pixels in several threads; glibc keeps what they
    free in per-thread arenas, so without this a long session's memory grows with every image
    although the toolkit holds only thumbnails.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


class JobRunner(HasTraits):
    """Runs one :class:`Job` at a time and publishes its progress as traits.

    Widgets observe ``busy``, ``done``, ``total`` and ``elapsed_s`` (changed from the worker
    and timer threads) to show progress, and disable their run buttons while ``busy``.
    """

    busy = Bool(False, help="A job is running.")
    done = Int(0, help="Units (images) done in the current job.")
    note = Unicode("", help="What the current job is waiting for, when it says (a workshop queue).")
    total = Int(0, help="Units (images) the current job makes.")
    elapsed_s = Float(0.0, help="Seconds since the current job started.")
    job = Instance(Job, allow_none=True, help="The current (or last) job.")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Traits change from the kernel, worker and timer threads; one lock orders those changes
        # (traitlets' hold_trait_notifications is not thread-safe).
        self._traits_lock = threading.RLock()

    def run(self, job: Job) -> Job:
        """Run ``job.work(hooks)`` in a daemon thread and return at once.

        ``job.on_result(result)`` or ``job.on_error(exc)`` is called (in the worker thread) unless
        the job was cancelled first; ``job.on_partial(PartialImage)`` for streamed previews;
        ``job.on_cancel()`` (in the cancelling thread) when it is cancelled.
        """
        if self.busy:
            raise RuntimeError("A job is already running: wait for it or cancel it first.")
        job.started_at = time.perf_counter()
        with self._traits_lock:
            self.job = job
            self.done = 0
            self.note = ""
            self.total = job.total
            self.elapsed_s = 0.0
            self.busy = True
        job.thread = threading.Thread(
            target=self._run, args=(job,), name=f"ipyimagegen-job-{job.id}", daemon=True
        )
        job.thread.start()
        threading.Thread(
            target=self._tick, args=(job,), name=f"ipyimagegen-timer-{job.id}", daemon=True
        ).start()
        return job

    def cancel(self) -> bool:
        """Cancel the current job: return to idle now and drop its late results. True if one ran."""
        job = self.job
        if job is None:
            return False
        with job.lock:
            if job.state != "running":
                return False
            job.cancel_event.set()
            job.state = "cancelled"
            job.finished_at = time.perf_counter()
        self._deliver(job, job.on_cancel)
        self._idle(job)
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the current job's thread to end (for scripts and tests); True if it did."""
        job = self.job
        return job.join(timeout) if job is not None else True

    # -- worker side -------------------------------------------------------------------------

    def _run(self, job: Job) -> None:
        hooks = CallHooks(
            on_partial=lambda partial: self._partial(job, partial),
            on_progress=lambda progress: self._progress(job, progress),
            cancel=job.cancel_event,
        )
        try:
            result = job.work(hooks)
        except BaseException as exc:  # whatever happens, the job ends and the runner goes idle
            self._finish(job, error=exc)
        else:
            self._finish(job, result=result)
        finally:
            release_free_memory()

    def _finish(self, job: Job, *, result: Any = None, error: BaseException | None = None) -> None:
        with job.lock:
            if job.cancelled:
                log.debug("job %d ended after it was cancelled; its outcome is dropped", job.id)
                return
            job.finished_at = time.perf_counter()
            # A result handed to on_result is not kept here too (a response's images would stay in memory).
            job.result = result if job.on_result is None else None
            job.error = error
            job.state = "failed" if error is not None else "done"
            try:
                if error is None:
                    self._deliver(job, job.on_result, result)
                else:
                    self._deliver(job, job.on_error, error)
            finally:
                self._idle(job)

    def _deliver(self, job: Job, callback: Callback | None, *args: Any) -> None:
        """Call a job callback; a failing callback becomes the job's error, never a lost traceback."""
        if callback is None:
            return
        try:
            callback(*args)
        except Exception as exc:
            log.exception("job %d: a callback failed", job.id)
            if callback is not job.on_error and job.on_error is not None:
                try:
                    job.on_error(exc)
                except Exception:
                    log.exception("job %d: the error callback failed too", job.id)

    def _idle(self, job: Job) -> None:
        with self._traits_lock:
            if self.job is job:
                self.elapsed_s = job.elapsed_s
                self.busy = False

    def _partial(self, job: Job, partial: PartialImage) -> None:
        with job.lock:
            if not job.cancelled:
                self._deliver(job, job.on_partial, partial)

    def _progress(self, job: Job, progress: Progress) -> None:
        with job.lock, self._traits_lock:
            if not job.cancelled and self.job is job:
                if progress.total:  # a total of 0: a message alone (what the call waits for)
                    self.done = progress.done
                    self.total = progress.total
                self.note = progress.message

    def _tick(self, job: Job) -> None:
        while job.state == "running" and not job.cancel_event.wait(TICK_S):
            with self._traits_lock:
                if job.state == "running" and self.job is job:
                    self.elapsed_s = job.elapsed_s
