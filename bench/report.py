"""What a benchmark reports: figures with their goals, the table they make, and the machine they ran on."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
VALUE, RATIO = "value", "ratio"
PASS, MISS, INFO = "PASS", "MISS", "info"

NAME_WIDTH = 50
PACKAGES = ("ipyimagegen", "ipywidgets", "openai", "httpx", "requests", "uvicorn", "Pillow", "numpy")


@dataclass(frozen=True)
class Goal:
    """A limit on a figure's value (or, with ``on=RATIO``, on its ratio to its peer).

    ``compare``: ``"<"`` (under the limit), ``"<="`` (at most) or ``">="`` (at least).
    """

    limit: float
    on: str = VALUE
    compare: str = "<"

    def met(self, measured: float) -> bool:
        if self.compare == "<":
            return measured < self.limit
        if self.compare == "<=":
            return measured <= self.limit
        return measured >= self.limit

    def text(self, unit: str) -> str:
        if self.on == RATIO:
            return f"goal ratio {self.compare} {_number(self.limit)}"
        return f"goal {self.compare} {_number(self.limit)} {unit}"


@dataclass(frozen=True)
class Figure:
    """One measured figure: its value, its peer's value measured in the same run, and its goal."""

    name: str
    value: float
    unit: str
    goal: Goal | None = None
    peer: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.peer is None or self.peer == 0:
            return None
        return self.value / self.peer

    @property
    def verdict(self) -> str:
        if self.goal is None:
            return INFO
        measured = self.ratio if self.goal.on == RATIO else self.value
        if measured is None:
            return MISS
        return PASS if self.goal.met(measured) else MISS

    def line(self, name_width: int = NAME_WIDTH) -> str:
        """``name  measured  peer  ratio  goal  verdict``, in fixed columns."""
        peer = f"vs {_amount(self.peer, self.unit)}" if self.peer is not None else ""
        ratio = f"{self.ratio:.3f}x" if self.ratio is not None else ""
        goal = self.goal.text(self.unit) if self.goal is not None else "(no goal)"
        return (
            f"{self.name:<{name_width}} {_amount(self.value, self.unit):>13} {peer:>15} {ratio:>8}  "
            f"{goal:<22} {self.verdict}"
        )


def _number(value: float) -> str:
    """Three significant digits, never in exponent form."""
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _amount(value: float | None, unit: str) -> str:
    return "" if value is None else f"{_number(value)} {unit}"


def table(figures: list[Figure]) -> list[str]:
    """The table's lines: a header, one line per figure, and a count of verdicts."""
    width = max([NAME_WIDTH, *(len(f.name) for f in figures)])
    header = f"{'figure':<{width}} {'measured':>13} {'peer':>15} {'ratio':>8}  {'goal':<22} verdict"
    counts = {v: sum(f.verdict == v for f in figures) for v in (PASS, MISS, INFO)}
    summary = (
        f"{len(figures)} figures: {counts[PASS]} PASS, {counts[MISS]} MISS, {counts[INFO]} informational"
    )
    return [header, "-" * len(header), *(f.line(width) for f in figures), summary]


# --- measuring -----------------------------------------------------------------------------------


def timed(action: Callable[[], object]) -> float:
    """Seconds one call of ``action`` takes."""
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def samples(action: Callable[[], object], repeats: int, warmup: int = 1) -> list[float]:
    """Seconds per call for ``repeats`` calls, after ``warmup`` calls that are not counted."""
    for _ in range(warmup):
        action()
    return [timed(action) for _ in range(repeats)]


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


# --- the machine ---------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def total_ram_gib() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return None


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def load_text() -> str:
    """The 1-minute load average: other work on the machine slows every figure (torch's most)."""
    if not hasattr(os, "getloadavg"):
        return "load average unknown"
    return f"load average {os.getloadavg()[0]:.2f}"


def machine_lines() -> list[str]:
    """CPU model, cores, RAM, Python, OS and the versions of the packages measured."""
    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    ram = total_ram_gib()
    ram_text = f"{ram:.1f} GiB RAM" if ram is not None else "RAM unknown"
    python = f"Python {platform.python_version()} ({platform.python_implementation()}, {sys.executable})"
    packages = ", ".join(f"{name} {_package_version(name)}" for name in PACKAGES)
    return [
        f"Machine: {cpu_model()}, {cores} cores ({usable} usable), {ram_text}, {load_text()}",
        f"OS: {platform.platform()}",
        python,
        f"Packages: {packages}",
    ]


# --- running ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """What every benchmark is given: quick (fewer repetitions, smaller counts) and a local checkpoint."""

    quick: bool = False
    checkpoint: str | None = None

    def pick(self, quick: T, full: T) -> T:
        """``quick`` in quick mode, else ``full``."""
        return quick if self.quick else full


def say(text: str) -> None:
    """A detail line of a benchmark (its method, its other numbers), indented under its heading."""
    print(f"  {text}", flush=True)
