"""The engines on Ray Serve: images per second with 1 and 2 replicas, beside the engine in process.

A local Ray instance (started here, stopped after) serves the tiny diffusers model (built in a
temporary folder, 4 steps at 64x64) with one replica, then two; callers keep twice as many calls
out as there are replicas, for a fixed number of images. The in-process engine, held to the
same threads as one replica, is the peer of one replica (what Ray's path costs), and one replica
the peer of two (what a second replica adds). With ``--checkpoint DIR`` and a GPU, the same for
that checkpoint at 512x512 with 1 step (an SD-Turbo-class model), one replica per GPU, or two
sharing one. Run: ``python -m bench --only ray [--quick] [--checkpoint DIR]``.
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from .report import RATIO, Figure, Goal, Options, say

TINY_STEPS = 4
SCALING_GOAL = Goal(1.5, on=RATIO, compare=">=")
"""Two replicas make at least half again as many images a second as one (where cores allow)."""


def _throughput(backend: Any, request: Any, calls: int, callers: int) -> float:
    """Images per second with ``callers`` calls out at once, ``calls`` in all (after one warm call)."""
    backend.run(request)
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(callers) as pool:
        made = sum(len(response.data) for response in pool.map(lambda _: backend.run(request), range(calls)))
    return made / (time.perf_counter() - started)


def _in_process(choice: Any, request: Any, calls: int, threads: int) -> float:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _throughput(choice.build(), request, calls, 1)
    finally:
        torch.set_num_threads(before)


def _measure(label: str, choice: Any, request: Any, calls: int, plans: dict[int, float]) -> list[Figure]:
    """Images per second for each plan (replicas: GPUs per replica); a plan's peer is the one before."""
    from ipyimagegen.engines.ray_serve import Scaling, deploy

    rates: dict[int, float] = {}
    for replicas, gpus in plans.items():
        started = time.perf_counter()
        scaling = Scaling(replicas=replicas, cpus=1.0, gpus=gpus)
        with deploy(choice, scaling, app_name=f"bench-{replicas}") as deployment:
            ready = time.perf_counter() - started
            rates[replicas] = _throughput(deployment.backend, request, calls, 2 * replicas)
        say(
            f"{label}, {replicas} replica(s) of {gpus:g} GPU: ready (loaded, warmed) in {ready:.1f} s, "
            f"{rates[replicas]:.2f} images/s ({calls} calls)"
        )
    figures, before = [], None
    for replicas, rate in rates.items():
        plural = "s" if replicas > 1 else ""
        goal = SCALING_GOAL if before is not None and (os.cpu_count() or 1) >= replicas else None
        figures.append(Figure(f"ray {label}, {replicas} replica{plural}", rate, "images/s", goal, before))
        before = rate
    return figures


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def bench_tiny(options: Options) -> list[Figure]:
    from ipyimagegen.api.types import GenerateRequest
    from ipyimagegen.engines.ray_serve import EngineChoice

    from .diffusers_bench import _silence_libraries, _tiny_pipeline_module

    calls = options.pick(24, 48)
    with tempfile.TemporaryDirectory(prefix="ipyimagegen-bench-") as folder:
        _silence_libraries()
        model = _tiny_pipeline_module().build_tiny_pipeline(Path(folder) / "tiny-sd")
        choice = EngineChoice("diffusers", str(model), options={"steps": TINY_STEPS, "device": "cpu"})
        request = GenerateRequest(prompt="a lighthouse", model="tiny-sd", size="64x64", n=1, seed=1)
        local = _in_process(choice, request, calls, threads=1)
        say(f"tiny model in process, 1 torch thread: {local:.2f} images/s ({calls} calls)")
        figures = _measure("tiny model 64x64 (CPU)", choice, request, calls, {1: 0.0, 2: 0.0})
    figures[0] = Figure(figures[0].name, figures[0].value, "images/s", peer=local)
    return figures


def bench_checkpoint(checkpoint: str, options: Options) -> list[Figure]:
    from ipyimagegen.api.types import GenerateRequest
    from ipyimagegen.engines.ray_serve import EngineChoice

    gpus = _gpu_count()
    if gpus == 0:
        say("checkpoint on Ray Serve: skipped, no GPU here (one replica per GPU is what it measures)")
        return []
    choice = EngineChoice("diffusers", checkpoint, options={"steps": 1, "guidance_scale": 0.0})
    request = GenerateRequest(prompt="a lighthouse at dusk", model=Path(checkpoint).name, size="512x512", n=1)
    plans = {1: 1.0, gpus: 1.0} if gpus > 1 else {1: 1.0, 2: 0.5}  # two replicas share a lone GPU
    return _measure(f"{Path(checkpoint).name} 512x512, 1 step", choice, request, options.pick(16, 64), plans)


def run(options: Options) -> list[Figure]:
    missing = [name for name in ("ray", "torch", "diffusers") if importlib.util.find_spec(name) is None]
    if missing:
        say(f'skipped: needs {", ".join(missing)} (pip install "ipyimagegen[ray,local]")')
        return []
    import ray

    logging.getLogger("ray.serve").setLevel(logging.WARNING)  # Serve's own progress lines
    ray.init(num_cpus=max(2, os.cpu_count() or 2), include_dashboard=False, log_to_driver=False)
    try:
        say(f"ray {ray.__version__}, {int(ray.cluster_resources().get('CPU', 0))} CPUs for replicas")
        figures = bench_tiny(options)
        if options.checkpoint:
            figures += bench_checkpoint(options.checkpoint, options)
        return figures
    finally:
        from ray import serve

        serve.shutdown()
        ray.shutdown()
