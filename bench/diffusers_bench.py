"""DiffusersEngine speed: load time and seconds per image, on a tiny model and a real checkpoint.

The tiny model (randomly initialised, built in a temporary folder) measures the engine's own
overhead and how it scales with size; ``--checkpoint DIR`` also measures a real diffusers folder
(or single file) at its native size. Run: ``python -m bench --only diffusers [--quick]
[--checkpoint DIR]``. The figures have no goal: they depend on the hardware, which they name.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ipyimagegen.engines.diffusers_engine import DiffusersEngine

from .report import Figure, Options, cpu_model, say

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")

TINY_STEPS = 4
CHECKPOINT_QUICK_STEPS = 4


def _tiny_pipeline_module() -> ModuleType:
    """tests/tiny_pipeline.py, loaded by path (the tests folder is not a package)."""
    path = Path(__file__).resolve().parent.parent / "tests" / "tiny_pipeline.py"
    spec = importlib.util.spec_from_file_location("tiny_pipeline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _device_line(engine: DiffusersEngine) -> str:
    import torch

    device = engine.device
    if device.startswith("cuda"):
        hardware = torch.cuda.get_device_name(torch.device(device))
    elif device.startswith("mps"):
        hardware = f"Apple GPU ({platform.machine()})"
    else:
        hardware = f"{cpu_model()}, {torch.get_num_threads()} torch threads"
    return f"device {device} ({hardware}), dtype {engine.dtype}"


def _seconds(action: Callable[[], object], repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return samples


def _line(label: str, samples: list[float], per: int = 1) -> str:
    median = statistics.median(samples) / per
    return f"{label:<40} {median:8.3f} s/image   (median of {len(samples)}, best {min(samples) / per:.3f})"


def _short_device(engine: DiffusersEngine) -> str:
    return f"{engine.device}, {str(engine.dtype).removeprefix('torch.')}"


def _load(model: str | Path, **options: Any) -> tuple[DiffusersEngine, float]:
    from ipyimagegen.engines.diffusers_engine import DiffusersEngine

    started = time.perf_counter()
    engine = DiffusersEngine(model, **options)
    return engine, time.perf_counter() - started


def bench_tiny(quick: bool) -> list[Figure]:
    """The tiny model at 64 and 256 px: generate (1 and 4 images), edit and variation (generate only when quick)."""
    repeats = 2 if quick else 5
    with tempfile.TemporaryDirectory(prefix="ipyimagegen-bench-") as folder:
        _silence_libraries()
        model_dir = _tiny_pipeline_module().build_tiny_pipeline(Path(folder) / "tiny-sd")
        engine, load_s = _load(model_dir, steps=TINY_STEPS)
    say(f"tiny random model, {TINY_STEPS} steps: {_device_line(engine)}")
    say(f"{'load (from disk, to device)':<40} {load_s:8.3f} s")
    engine.generate(prompt="warm up", size="64x64", seed=0)
    figures = []
    for side in (64, 256):
        size = f"{side}x{side}"
        image = engine.generate(prompt="a lighthouse at dusk", size=size, seed=1)[0]
        mask = _centre_mask(side)
        counts = (1,) if quick else (1, 4)
        cases = [
            (
                f"generate {size}, n={n}",
                partial(engine.generate, prompt="a lighthouse", size=size, n=n, seed=2),
                n,
            )
            for n in counts
        ]
        cases += (
            []
            if quick
            else [
                (
                    f"edit {size}, n=1",
                    partial(engine.edit, image=image.data, mask=mask, prompt="a boat", size=size, seed=3),
                    1,
                ),
                (
                    f"variation {size}, n=1",
                    partial(engine.create_variation, image=image.data, size=size, seed=4),
                    1,
                ),
            ]
        )
        for label, action, per in cases:
            measured = _seconds(action, repeats)
            say(_line(label, measured, per))
            if label == f"generate {size}, n=1":
                figures.append(
                    Figure(
                        f"diffusers tiny model {size}, {_short_device(engine)}",
                        statistics.median(measured),
                        "s/image",
                    )
                )
    return figures


def _silence_libraries() -> None:
    """No progress bars or advice from the model libraries in the benchmark's output."""
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def _centre_mask(side: int) -> object:
    import numpy as np

    mask = np.zeros((side, side), dtype=bool)
    mask[side // 4 : 3 * side // 4, side // 4 : 3 * side // 4] = True
    return mask


def bench_checkpoint(checkpoint: str, quick: bool) -> list[Figure]:
    """A real checkpoint at its native size with its default steps (a few steps in quick mode)."""
    engine, load_s = _load(checkpoint)
    steps = min(engine.steps, CHECKPOINT_QUICK_STEPS) if quick else engine.steps
    extra = {"steps": steps}
    side = engine.native_size
    say(f"{engine.name}, {steps} steps at {side}x{side}: {_device_line(engine)}")
    say(f"{'load (from disk, to device)':<40} {load_s:8.3f} s")
    warm = _seconds(lambda: engine.generate(prompt="warm up", seed=0, extra=extra), 1)
    say(f"{'first image (warm-up)':<40} {warm[0]:8.3f} s")
    samples = _seconds(
        lambda: engine.generate(prompt="a lighthouse at dusk", seed=1, extra=extra), 1 if quick else 3
    )
    say(_line("generate, n=1", samples))
    say(f"{'per denoising step':<40} {statistics.median(samples) / steps:8.3f} s/step (incl. text + VAE)")
    return [
        Figure(
            f"diffusers {Path(checkpoint).name} {side}x{side}, {steps} steps, {_short_device(engine)}",
            statistics.median(samples),
            "s/image",
        )
    ]


def main(quick: bool = False, checkpoint: str | None = None) -> list[Figure]:
    """Print load time and seconds per image for the tiny model, and for ``checkpoint`` if given."""
    import diffusers
    import torch

    say(f"torch {torch.__version__}, diffusers {diffusers.__version__}")
    figures = bench_tiny(quick)
    if checkpoint:
        figures += bench_checkpoint(checkpoint, quick)
    return figures


def run(options: Options) -> list[Figure]:
    missing = [
        name for name in ("torch", "diffusers", "transformers") if importlib.util.find_spec(name) is None
    ]
    if missing:
        say(f'skipped: needs {", ".join(missing)} (pip install "ipyimagegen[local]")')
        return []
    return main(quick=options.quick, checkpoint=options.checkpoint)
