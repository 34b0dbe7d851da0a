"""Memory of a studio session: the kernel's RSS after many 1024x1024 results, above the baseline.

Each session runs in a fresh Python process, so the baseline is clean: the process's RSS once
everything is imported and the grid is open. The studio's session (with a Gallery in a temporary
folder) clicks Generate again and again (n=1, a fresh 2 MB photo-like PNG each time, saved to the
gallery, its thumbnail shown in the grid). Its peer, measured in the same run, is the naive grid:
one ``ipywidgets.Image`` per result in a VBox, each holding its PNG. The figures are the RSS after
the last result (garbage collected, freed memory handed back to the system) and the studio's peak
RSS, both minus the baseline. The child also reports the toolkit time of its last generation, with
the grid full.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from .report import Figure, Goal, Options, say

GOAL_MB = 100.0
PEAK_GOAL_MB = 300.0
MB = 1024 * 1024


def _status_kb(field: str) -> int | None:
    """A ``/proc/self/status`` figure in KB (Linux), or None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _current_rss() -> int:
    """This process's resident memory now, in bytes."""
    found = _status_kb("VmRSS")
    if found is not None:
        return found * 1024
    import psutil  # not Linux: psutil knows

    return int(psutil.Process().memory_info().rss)


def _peak_rss() -> int:
    """This process's peak resident memory so far, in bytes: its own (VmHWM), since on Linux the
    rusage figure keeps the parent's peak across fork and exec."""
    found = _status_kb("VmHWM")
    if found is not None:
        return found * 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _settled_rss() -> int:
    """The RSS once garbage is collected and freed memory is handed back (as a kernel's settles)."""
    from ipyimagegen.session import release_free_memory

    gc.collect()
    release_free_memory()
    return _current_rss()


def studio_child(generations: int) -> dict[str, float]:
    """The studio's session (in the child process): returns its figures."""
    from .comms import recording_comms
    from .fixtures import InstantBackend, photo_like_png
    from .studio_bench import generate_once, new_studio

    photo_like_png(1024)
    with tempfile.TemporaryDirectory(prefix="ipyimagegen-bench-memory-") as folder, recording_comms():
        backend = InstantBackend()
        studio = new_studio(backend, folder, n=1)
        gallery = studio.gallery
        baseline = _settled_rss()
        for _ in range(generations):
            wall, inside, _click = generate_once(studio, backend)
        peak, end = _peak_rss(), _settled_rss()
        shown, saved = studio.grid.filled_count(), len(gallery)
        studio.close()
    return {
        "baseline_mb": baseline / MB,
        "peak_mb": peak / MB,
        "end_mb": end / MB,
        "shown": shown,
        "saved": saved,
        "last_overhead_ms": (wall - inside) * 1000,
    }


def naive_child(results: int) -> dict[str, float]:
    """The naive grid (in the child process): an ``ipywidgets.Image`` of each full PNG, in a VBox."""
    import ipywidgets as widgets

    from .comms import recording_comms
    from .fixtures import fresh_copy, photo_like_png

    png = photo_like_png(1024)
    with recording_comms():
        grid = widgets.VBox()
        baseline = _settled_rss()
        for _ in range(results):
            grid.children = (widgets.Image(value=fresh_copy(png), format="png"), *grid.children)
        end = _settled_rss()
        shown = len(grid.children)
        for image in grid.children:
            image.close()
        grid.close()
    return {"baseline_mb": baseline / MB, "end_mb": end / MB, "shown": shown}


def _in_child(kind: str, count: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.memory_bench", f"--{kind}", str(count)]
    root = Path(__file__).resolve().parent.parent
    finished = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
    if finished.returncode != 0:
        raise RuntimeError(f"The memory benchmark's {kind} process failed:\n{finished.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(finished.stdout.strip().splitlines()[-1])
    return figures


def run(options: Options) -> list[Figure]:
    generations = options.pick(20, 500)
    figures = _in_child("studio", generations)
    naive = _in_child("naive", generations)
    if figures["shown"] != generations or figures["saved"] != generations:
        raise RuntimeError(
            f"The session shows {figures['shown']} and saved {figures['saved']} of {generations}."
        )
    if naive["shown"] != generations:
        raise RuntimeError(f"The naive grid shows {naive['shown']} of {generations}.")
    say(
        f"method: a fresh process each; baseline = RSS with the grid open ({figures['baseline_mb']:.0f} MB "
        f"studio, {naive['baseline_mb']:.0f} MB naive); {generations} generations n=1 at 1024x1024 "
        "(photo-like PNGs), each saved to a Gallery in a temporary folder; naive = an ipywidgets.Image "
        "of each PNG in a VBox; 'after' = RSS once garbage is collected and freed memory handed back"
    )
    say(
        f"studio: peak RSS {figures['peak_mb']:.0f} MB, after {figures['end_mb']:.0f} MB; {figures['shown']} tiles "
        f"shown; toolkit time of the last generation (grid full, gallery save included) "
        f"{figures['last_overhead_ms']:.0f} ms; naive: after {naive['end_mb']:.0f} MB"
    )
    return [
        Figure(
            f"memory: kernel RSS above baseline after {generations} results at 1024²",
            figures["end_mb"] - figures["baseline_mb"],
            "MB",
            Goal(GOAL_MB),
            peer=naive["end_mb"] - naive["baseline_mb"],
        ),
        Figure(
            f"memory: peak RSS above baseline, {generations} generations",
            figures["peak_mb"] - figures["baseline_mb"],
            "MB",
            Goal(PEAK_GOAL_MB),
        ),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--studio", type=int, metavar="GENERATIONS", help="the studio's session")
    which.add_argument("--naive", type=int, metavar="RESULTS", help="the naive grid")
    arguments = parser.parse_args()
    if arguments.studio is not None:
        print(json.dumps(studio_child(arguments.studio)))
    else:
        print(json.dumps(naive_child(arguments.naive)))
