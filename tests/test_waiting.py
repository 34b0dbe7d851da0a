"""The tests' own waiting: a condition polled until it holds, or a failure that says what was awaited."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from waiting import wait_for_health, wait_until


def test_wait_until_returns_the_conditions_value_once_it_holds() -> None:
    arrived: list[str] = []
    threading.Timer(0.05, arrived.append, ["a fox"]).start()
    assert wait_until(lambda: arrived) == ["a fox"]


def test_a_wait_that_never_ends_fails_saying_what_it_waited_for_and_what_it_last_saw() -> None:
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"waited 0.2 s for the queue to empty \(last: 0\)"):
        wait_until(lambda: 0, timeout=0.2, message="the queue to empty")
    assert 0.2 <= time.monotonic() - started < 2.0


def test_without_a_message_the_failure_quotes_the_condition() -> None:
    tiles: list[int] = []
    with pytest.raises(AssertionError, match=r"lambda: len\(tiles\) == 3.* \(last: False\)"):
        wait_until(lambda: len(tiles) == 3, timeout=0.05)


def test_a_message_function_is_called_only_when_the_wait_fails() -> None:
    asked: list[int] = []

    def message() -> str:
        asked.append(1)
        return "a slow thing"

    assert wait_until(lambda: True, message=message)
    assert asked == []
    with pytest.raises(AssertionError, match="a slow thing"):
        wait_until(lambda: None, timeout=0.05, message=message)
    assert asked == [1]


def test_an_error_in_the_condition_ends_the_wait_at_once() -> None:
    def condition() -> bool:
        raise RuntimeError("the server exited")

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="the server exited"):
        wait_until(condition, timeout=30)
    assert time.monotonic() - started < 1.0


def test_waiting_for_a_server_that_exits_fails_at_once_with_what_it_printed() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", "print('port 8000 is taken'); raise SystemExit(3)"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    started = time.monotonic()
    with pytest.raises(AssertionError, match="(?s)exited with code 3.*port 8000 is taken"):
        wait_for_health("http://127.0.0.1:9", process, timeout=30)
    assert time.monotonic() - started < 10.0
