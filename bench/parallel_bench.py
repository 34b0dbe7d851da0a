"""Parallel fill of n on a model limited to one image per request (dall-e-3).

The project's client talks to the local server (its own process) whose backend takes a fixed
time per request, as a model would, without using the CPU. Peer: one request for one image.
Figure: four images through ``run_parallel`` (what the studio's Generate does), in the same run.
"""

from __future__ import annotations

import statistics

from ipyimagegen.api.client import OpenAIClient
from ipyimagegen.api.parallel import requests_needed, run_parallel
from ipyimagegen.api.types import GenerateRequest

from .fixtures import PROMPT, served
from .report import RATIO, Figure, Goal, Options, say, timed

MODEL, SIZE, N = "dall-e-3", "1024x1024", 4


def run(options: Options) -> list[Figure]:
    delay, repeats = options.pick(0.3, 1.0), options.pick(2, 4)
    single = GenerateRequest(prompt=PROMPT, model=MODEL, size=SIZE, n=1)
    several = GenerateRequest(prompt=PROMPT, model=MODEL, size=SIZE, n=N)
    say(
        f"method: OpenAIClient -> local server with a backend that takes {delay:g} s per request; "
        f"{MODEL} n={N} = {requests_needed(several)} requests via run_parallel, against one n=1 request; "
        f"alternating, median of {repeats} each after a warm-up"
    )
    with served(delay_s=delay) as base_url, OpenAIClient(base_url=base_url, api_key="unused") as client:
        run_parallel(client, several)  # warm-up: connections, first-call costs
        ones, fours = [], []
        for _ in range(repeats):
            ones.append(timed(lambda: client.run(single)))
            fours.append(timed(lambda: _made(run_parallel(client, several))))
    one, four = statistics.median(ones), statistics.median(fours)
    say(f"one request {one:.3f} s (backend {delay:g} s); n={N}: {four:.3f} s")
    return [
        Figure(
            f"parallel fill {MODEL} n={N} vs one request ({delay:g} s)",
            four,
            "s",
            Goal(1.3, on=RATIO, compare="<="),
            peer=one,
        )
    ]


def _made(response: object) -> None:
    images = len(response.data)  # type: ignore[attr-defined]
    if images != N:
        raise RuntimeError(f"run_parallel made {images} images, not {N}.")
