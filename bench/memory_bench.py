"""Memory of a studio session: peak RSS after many 1024x1024 generations, above the baseline.

Runs in a fresh Python process, so the baseline is clean: the baseline is the process's RSS
once everything is imported and the studio (with a Gallery in a temporary folder) is open;
then Generate is clicked again and again (n=1, a fresh 2 MB PNG each time, saved to the
gallery, its thumbnail shown in the grid). The figure is the process's peak RSS minus that
baseline. The child also reports the toolkit time of its last generation, with the grid full.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from .report import Figure, Goal, Options, say

GOAL_MB = 300.0
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


def child(generations: int) -> dict[str, float]:
    """The session itself (in the child process): returns its figures."""
    from .comms import recording_comms
    from .fixtures import InstantBackend, photo_like_png
    from .studio_bench import generate_once, new_studio

    photo_like_png(1024)
    with tempfile.TemporaryDirectory(prefix="ipyimagegen-bench-memory-") as folder, recording_comms():
        backend = InstantBackend()
        studio = new_studio(backend, folder, n=1)
        gallery = studio.gallery
        baseline = _current_rss()
        for _ in range(generations):
            wall, inside, _click = generate_once(studio, backend)
        peak, end = _peak_rss(), _current_rss()
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


def run(options: Options) -> list[Figure]:
    generations = options.pick(20, 100)
    command = [sys.executable, "-m", "bench.memory_bench", "--child", str(generations)]
    root = Path(__file__).resolve().parent.parent
    finished = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
    if finished.returncode != 0:
        raise RuntimeError(f"The memory benchmark's process failed:\n{finished.stderr[-3000:]}")
    figures = json.loads(finished.stdout.strip().splitlines()[-1])
    if figures["shown"] != generations or figures["saved"] != generations:
        raise RuntimeError(
            f"The session shows {figures['shown']} and saved {figures['saved']} of {generations}."
        )
    say(
        f"method: a fresh process; baseline = RSS with the studio open ({figures['baseline_mb']:.0f} MB); "
        f"{generations} generations n=1 at 1024x1024, each saved to a Gallery in a temporary folder"
    )
    say(
        f"peak RSS {figures['peak_mb']:.0f} MB, at the end {figures['end_mb']:.0f} MB; {figures['shown']} tiles shown; "
        f"toolkit time of the last generation (grid full, gallery save included) {figures['last_overhead_ms']:.0f} ms"
    )
    return [
        Figure(
            f"memory: peak RSS above baseline, {generations} generations",
            figures["peak_mb"] - figures["baseline_mb"],
            "MB",
            Goal(GOAL_MB),
        )
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", type=int, metavar="GENERATIONS", required=True)
    print(json.dumps(child(parser.parse_args().child)))
