"""The benchmark suite runs end to end: ``python -m bench --quick`` prints every figure with its goal.

Benchmarks are not timed tests: this checks that each one runs and reports, never its numbers.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 480  # about 150 s on an idle 2-core machine; the margin is for a busy one

#: One table line per figure: (name, goal), as the table prints them.
FIGURES = [
    (r"client generate: OpenAIClient vs openai, ms/call", r"goal ratio <= 1\.00"),
    (r"client edit: OpenAIClient vs openai, ms/call", r"goal ratio <= 1\.00"),
    (r"client variation: OpenAIClient vs openai, ms/call", r"goal ratio <= 1\.00"),
    (r"client edit 256x256 dall-e-2, bytes: vs openai, ms/call", r"goal ratio <= 1\.00"),
    (r"client edit 256x256 dall-e-2, path: vs openai, ms/call", r"goal ratio <= 1\.00"),
    (r"client edit 256x256 dall-e-2, PIL image: vs openai, ms/call", r"goal ratio <= 1\.00"),
    (r"client edit 1024x1024 gpt-image-2, bytes: vs openai, ms/call", r"goal ratio <= 1\.00"),
    (r"client edit 1024x1024 gpt-image-2, path: vs openai, ms/call", r"goal ratio <= 1\.00"),
    (r"client edit 1024x1024 gpt-image-2, PIL image: vs openai, ms/call", r"goal ratio <= 1\.00"),
    (r"client edit 1024x1024 gpt-image-2, mask from Pillow: vs openai, ms/call", r"goal ratio <= 1\.00"),
    (r"client edit 3840x2160 gpt-image-2, bytes: vs openai, ms/call", r"goal ratio <= 1\.00"),
    (r"client edit 3840x2160 gpt-image-2, mask from Pillow: vs openai, ms/call", r"goal ratio <= 1\.00"),
    (r"studio: click to first tile, n=4 1024x1024, minus backend", r"goal < 100 ms"),
    (r"studio: click to all tiles, n=4 1024x1024, minus backend", r"goal < 100 ms"),
    (r"studio: click to all saved and actionable, n=4, minus backend", r"\(no goal\)"),
    (r"studio: click to first tile, n=4, Pillow decoding only", r"\(no goal\)"),
    (r"studio: click to all tiles, n=4, Pillow decoding only", r"\(no goal\)"),
    (r"grid in a browser: click to 4 new tiles at 1000 results vs at 4", r"goal ratio <= 1\.50"),
    (r"grid in a browser: JS heap at 1000 results vs at 4", r"goal ratio <= 1\.50"),
    (r"grid KB per 1024x1024 result vs full PNG Image", r"goal ratio <= 0\.1"),
    (r"Enlarge click sends the full image", r"goal >= \d+ KB"),
    (r"parallel fill dall-e-3 n=4 vs one request \(0\.3 s\)", r"goal ratio <= 1\.30"),
    (r"mask painter: kernel, mouse batch at 1024x1024, p95", r"goal < 5\.00 ms"),
    (r"mask painter: kernel, mouse batch at 2048x2048, p95", r"goal < 5\.00 ms"),
    (r"mask painter: kernel, mouse batch at 3840x2160, p95", r"goal < 5\.00 ms"),
    (r"mask painter: kernel, mouse batch at 3840x2160, brush 200, p95", r"\(no goal\)"),
    (r"mask painter: mask_png export at 1024x1024, median", r"goal < 50\.0 ms"),
    (r"mask painter: mask_png export at 3840x2160, median", r"\(no goal\)"),
    (r"painter in a browser: stroke shows at 1024x1024, p95", r"goal < 17\.0 ms"),
    (r"painter in a browser: stroke shows at 3840x2160, p95", r"goal < 17\.0 ms"),
    (r"painter in a browser: committed to ipycanvas at 1024x1024, p95", r"goal < 100 ms"),
    (r"painter in a browser: committed to ipycanvas at 3840x2160, p95", r"goal < 100 ms"),
    (r"painter, 100 ms round trip: stroke shows at 3840x2160, p95", r"goal < 17\.0 ms"),
    (r"painter, 100 ms round trip: committed to ipycanvas, p95", r"\(no goal\)"),
    (r"painter, 100 ms round trip: points lost", r"goal <= 0 points"),
    (r"painter, kernel busy 2 s: stroke shows, p95", r"goal < 17\.0 ms"),
    (r"painter, kernel busy 2 s: from its end to all points committed", r"\(no goal\)"),
    (r"painter, kernel busy 2 s: points lost", r"goal <= 0 points"),
    (r"painter: zoom step shows at 3840x2160, p95", r"goal < 17\.0 ms"),
    (r"painter: zoom step crisp at 3840x2160, p95", r"goal < 100 ms"),
    (r"gallery: save and index a 1024x1024 result, median", r"goal < 20\.0 ms"),
    (r"gallery: open 200 items, first history page \(cold\)", r"goal < 1\.00 s"),
    (r"gallery: open at 10000 items vs at 1000", r"goal ratio <= 2\.00"),
    (r"memory: kernel RSS above baseline after 20 results at 1024²", r"goal < 100 MB"),
    (r"memory: peak RSS above baseline, 20 generations", r"goal < 300 MB"),
    (r"server: peak RSS over idle, worst edit x1", r"goal < 500 MB"),
    (r"server: peak RSS over idle, worst edit x4", r"goal < 500 MB"),
    (r"server: peak RSS over idle, 4 wall posts at once", r"goal < 200 MB"),
    (r"proxy: added latency, 1 client, vs LiteLLM", r"\(no goal\)|goal ratio <= 1\.00"),
    (r"proxy: calls/s, 8 clients, instant upstream", r"\(no goal\)|goal ratio >= 1\.00"),
    (r"proxy: calls/s, 32 clients, instant upstream", r"\(no goal\)|goal ratio >= 1\.00"),
    (r"proxy: calls/s, 32 clients, slow upstream", r"\(no goal\)|goal ratio >= 1\.00"),
    (r"workshop queue: images per participant, most vs fewest \(100 in the room\)", r"goal ratio <= 1\.50"),
    (r"workshop queue: p95 wait vs two queue rounds", r"goal ratio <= 1\.00"),
    (r"paced upstream: greedy \(5 in flight\) vs polite median", r"goal ratio <= 1\.50"),
    (r"paced upstream: 429s that reached participants", r"goal <= 0 calls"),
    (r"paced upstream, rate set 2x too high: 429s that reached participants", r"goal <= 0 calls"),
    (r"room: images per participant, greedy vs polite", r"goal ratio <= 1\.15"),
    (r"room: upstream 429s that reached participants", r"goal <= 0 calls"),
    (r"room: images charged vs received, beyond leases", r"goal <= 0 images"),
    (r"room: calls lost in the kill", r"goal <= 0 calls"),
    (r"room: replica a peak RSS", r"goal <= 92\.0 MB"),
    (r"preview engine: generate 256x256", r"goal < 10\.0 ms"),
    (r"preview engine: generate 1024x1024", r"goal < 100 ms"),
    (r"ray tiny model 64x64 \(CPU\), 1 replica", r"\(no goal\)"),
    (r"ray tiny model 64x64 \(CPU\), 2 replicas", r"goal ratio >= 1\.50"),
]
NUMBER = r"\d+(?:\.\d+)?"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    """One quick run of the whole suite."""
    scratch = tmp_path_factory.mktemp("bench")
    environment = {**os.environ, "TMPDIR": str(scratch)}
    return subprocess.run(
        [sys.executable, "-m", "bench", "--quick"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.timeout(TIMEOUT_S + 60)  # the quick run is the fixture: its own limit applies, not the default
def test_the_quick_run_exits_0_and_prints_each_figure_with_its_goal(
    quick_run: subprocess.CompletedProcess[str],
) -> None:
    assert quick_run.returncode == 0, quick_run.stdout[-3000:] + quick_run.stderr[-3000:]
    output = quick_run.stdout
    assert "CRASHED" not in output
    assert re.search(r"^Machine: .+, \d+ cores .+ GiB RAM", output, re.MULTILINE)
    assert re.search(r"^Python 3\.\d+", output, re.MULTILINE) and re.search(r"^OS: ", output, re.MULTILINE)
    for name, goal in FIGURES:
        line = rf"^{name} +{NUMBER} \S+ .*(?:{goal}) +(PASS|MISS|info)$"
        assert re.search(line, output, re.MULTILINE), f"no figure line for {name!r} with {goal!r}"
    ratios = re.findall(rf"vs {NUMBER} \S+ +({NUMBER})x ", output)
    assert len(ratios) >= 12 and all(
        float(r) > 0 for r in ratios
    )  # client x9, bytes, parallel, gallery (+ proxy)
    summary = re.search(r"^(\d+) figures: (\d+) PASS, (\d+) MISS, (\d+) informational$", output, re.MULTILINE)
    assert summary is not None
    total, passed, missed, informational = map(int, summary.groups())
    assert total == passed + missed + informational >= len(FIGURES)
