"""``python -m bench [--quick] [--only NAME[,NAME]] [--checkpoint DIR]``: run the benchmarks, print the figures.

Prints the machine, then each benchmark's method and details as it runs, then one table line
per figure (value, peer, ratio, goal, PASS/MISS). A figure that misses its goal is reported,
never fatal: the exit code is 1 only when a benchmark crashes.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
import traceback
from datetime import datetime
from pathlib import Path

from .report import Figure, Options, load_text, machine_lines, table

#: name -> module, in the order they run (cheap and interactive first, the model last).
BENCHMARKS = {
    "client": "client_bench",
    "studio": "studio_bench",
    "grid": "grid_browser_bench",
    "bytes": "bytes_bench",
    "parallel": "parallel_bench",
    "mask": "mask_bench",
    "painter": "painter_browser_bench",
    "gallery": "gallery_bench",
    "memory": "memory_bench",
    "server": "server_memory_bench",
    "proxy": "proxy_bench",
    "queue": "queue_bench",
    "room": "room_bench",
    "preview": "preview_bench",
    "diffusers": "diffusers_bench",
    "ray": "ray_bench",
}


def _selected(only: list[str] | None) -> list[str]:
    if not only:
        return list(BENCHMARKS)
    names = [name.strip() for item in only for name in item.split(",") if name.strip()]
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        raise SystemExit(f"Unknown benchmark {', '.join(unknown)}: choose from {', '.join(BENCHMARKS)}.")
    return [name for name in BENCHMARKS if name in names]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and smaller counts (< 1 min)")
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help=f"run only these (repeat or comma-separate): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument("--checkpoint", metavar="DIR", help="also measure this local diffusers model")
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ipyimagegen-bench-") as scratch:
        # A studio opened without a gallery folder must not write into the user's default gallery.
        os.environ["IPYIMAGEGEN_GALLERY"] = str(Path(scratch) / "gallery")
        return _run_all(arguments)


def _run_all(arguments: argparse.Namespace) -> int:
    options = Options(quick=arguments.quick, checkpoint=arguments.checkpoint)
    names = _selected(arguments.only)
    mode = "quick" if options.quick else "full"
    print(f"ipyimagegen benchmarks, {mode} mode, {datetime.now():%Y-%m-%d %H:%M}")
    for line in machine_lines():
        print(line)
    figures: list[Figure] = []
    crashed: list[str] = []
    started = time.perf_counter()
    for name in names:
        module = importlib.import_module(f"{__package__}.{BENCHMARKS[name]}")
        title = (module.__doc__ or name).strip().splitlines()[0]
        print(f"\n[{name}] {title}", flush=True)
        section_started = time.perf_counter()
        try:
            figures += module.run(options)
        except Exception as exc:
            traceback.print_exc()
            crashed.append(f"{name}: CRASHED ({type(exc).__name__}: {exc})")
        print(f"  ({time.perf_counter() - section_started:.1f} s; {load_text()})", flush=True)
    print(f"\nFigures ({mode} mode, {time.perf_counter() - started:.0f} s in all; a MISS is informational)")
    for line in table(figures) + crashed:
        print(line)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
