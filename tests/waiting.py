"""Waiting in tests for something another thread or process does: poll a condition until it holds,
and fail with what was awaited when it never does (never a bare sleep that hopes it was long enough)."""

from __future__ import annotations

import inspect
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import requests

T = TypeVar("T")

WAIT_S = 10.0
"""How long a test waits for its own threads (a server that starts a process waits longer)."""


def wait_until(
    condition: Callable[[], T],
    *,
    timeout: float = WAIT_S,
    interval: float = 0.01,
    message: str | Callable[[], str] | None = None,
) -> T:
    """Call ``condition`` every ``interval`` seconds until it returns something truthy, and return that.

    After ``timeout`` seconds it fails (``AssertionError``) saying what was awaited: ``message`` (or a
    function that builds it, called only then), else the condition's source, and its last value. An
    exception the condition raises ends the wait at once (assert in it what must never happen).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            awaited = message() if callable(message) else message or _source_of(condition)
            raise AssertionError(f"waited {timeout:g} s for {awaited} (last: {value!r})")
        time.sleep(interval)


def wait_for_health(
    base_url: str,
    process: subprocess.Popen[Any],
    *,
    timeout: float = 60.0,
    interval: float = 0.1,
    log: Path | None = None,
) -> dict[str, Any]:
    """The ``GET /health`` answer of the server that ``process`` starts at ``base_url`` (no ``/v1``),
    once it listens. Fails at once if the process exits; a failure shows what it printed (``log``, the
    file it writes to, or its piped output once it exited)."""

    def printed() -> str:
        if log is not None:
            return "\n" + log.read_text()
        if process.poll() is not None and process.stdout is not None:
            output = process.communicate(timeout=5)[0]
            return "\n" + (output.decode(errors="replace") if isinstance(output, bytes) else output)
        return ""

    def health() -> dict[str, Any] | None:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with code {process.returncode}{printed()}")
        try:
            answer: dict[str, Any] = requests.get(f"{base_url}/health", timeout=2).json()
        except requests.ConnectionError:
            return None
        return answer

    return wait_until(
        health, timeout=timeout, interval=interval, message=lambda: f"a server at {base_url}{printed()}"
    )


def _source_of(condition: Callable[..., object]) -> str:
    """The code of ``condition`` (a lambda's line), to say what a wait was for."""
    try:
        return inspect.getsource(condition).strip()
    except (OSError, TypeError):
        return repr(condition)
