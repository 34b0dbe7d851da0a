"""JobRunner: work off the kernel thread, progress as traits, cancel drops late results."""

from __future__ import annotations

import threading

import pytest

from ipyimagegen.api.types import CallHooks, PartialImage
from ipyimagegen.session import Job, JobRunner
from waiting import WAIT_S, wait_until


def test_start_returns_at_once_and_delivers_the_result_from_the_worker() -> None:
    runner = JobRunner()
    gate = threading.Event()
    results: list[object] = []
    threads: list[str] = []

    def work(hooks: CallHooks) -> str:
        threads.append(threading.current_thread().name)
        assert gate.wait(WAIT_S)
        return "images"

    job = runner.run(Job(work, total=2, on_result=results.append))
    assert runner.busy and job.state == "running"  # returned while the work is blocked
    gate.set()
    assert runner.wait(WAIT_S)
    assert results == ["images"]
    assert job.state == "done" and not runner.busy
    assert threads and threads[0] != threading.current_thread().name


def test_progress_and_elapsed_time_are_published_as_traits() -> None:
    runner = JobRunner()
    gate = threading.Event()

    def work(hooks: CallHooks) -> None:
        hooks.progress(1, 4)
        assert gate.wait(WAIT_S)
        hooks.progress(4, 4)

    runner.run(Job(work, total=4))
    wait_until(lambda: runner.done == 1)
    assert runner.total == 4
    wait_until(lambda: runner.elapsed_s > 0)  # the timer thread ticks while the job runs
    gate.set()
    assert runner.wait(WAIT_S)
    assert runner.done == 4


def test_cancel_returns_to_idle_now_and_drops_late_results() -> None:
    runner = JobRunner()
    gate = threading.Event()
    finished = threading.Event()
    delivered: list[object] = []
    cancelled: list[bool] = []

    def work(hooks: CallHooks) -> str:
        assert gate.wait(WAIT_S)
        hooks.partial(PartialImage(index=0, partial_index=0, data=b"late"))
        finished.set()
        return "late result"

    job = runner.run(
        Job(
            work,
            on_result=delivered.append,
            on_error=delivered.append,
            on_partial=delivered.append,
            on_cancel=lambda: cancelled.append(True),
        )
    )
    assert runner.cancel()
    assert not runner.busy and job.state == "cancelled" and cancelled == [True]
    gate.set()
    assert finished.wait(WAIT_S)
    assert job.join(WAIT_S)
    assert delivered == []
    assert not runner.cancel()  # nothing left to cancel


def test_an_error_is_delivered_and_the_next_job_runs() -> None:
    runner = JobRunner()
    errors: list[BaseException] = []

    def boom(hooks: CallHooks) -> None:
        raise RuntimeError("boom")

    runner.run(Job(boom, on_error=errors.append))
    assert runner.wait(WAIT_S)
    assert [str(e) for e in errors] == ["boom"] and not runner.busy
    results: list[object] = []
    runner.run(Job(lambda hooks: 42, on_result=results.append))
    assert runner.wait(WAIT_S)
    assert results == [42]


def test_a_failing_result_callback_becomes_the_jobs_error() -> None:
    runner = JobRunner()
    errors: list[BaseException] = []

    def bad_display(result: object) -> None:
        raise ValueError("cannot show this")

    runner.run(Job(lambda hooks: 1, on_result=bad_display, on_error=errors.append))
    assert runner.wait(WAIT_S)
    assert [type(e) for e in errors] == [ValueError] and not runner.busy


def test_one_job_at_a_time() -> None:
    runner = JobRunner()
    gate = threading.Event()
    runner.run(Job(lambda hooks: gate.wait(WAIT_S)))
    with pytest.raises(RuntimeError, match="already running"):
        runner.run(Job(lambda hooks: None))
    gate.set()
    assert runner.wait(WAIT_S)
