"""Proxy overhead: `ipyimagegen serve --upstream` against LiteLLM's proxy, in front of the same upstream.

The upstream is the project's server with an instant backend (a photo-like 1024x1024 PNG per
call, about 2.6 MB of JSON), in a process of its own; a second one waits 200 ms per call (a
model at work). Each proxy runs as its own command in its own process: `python -m ipyimagegen
serve --upstream URL` (no tokens: an open loopback server), and, where it is installed,
`litellm --config` (an optional peer outside the project's dependencies: install a release
checked as clean, `pip install "litellm[proxy]==1.106.12"`, in a venv of its own and point
``IPYIMAGEGEN_BENCH_LITELLM`` at its `litellm`; it needs a master key to start). Clients are
threads with a `requests` session each, posting gpt-image-2 generations and reading the whole
answer. Added latency = median call through the proxy minus median call straight to the
upstream, one client, calls alternating; throughput = calls per second with 8 and 32 clients.
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import requests

from .fixtures import served
from .report import RATIO, Figure, Goal, Options, say

LITELLM_ENV = "IPYIMAGEGEN_BENCH_LITELLM"
MASTER_KEY = "sk-bench-master-key"
UPSTREAM_KEY = "sk-bench-upstream-key"
BODY = {"model": "gpt-image-2", "prompt": "a lighthouse at dusk", "size": "1024x1024"}
START_S = 120.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_up(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} before it answered.")
        try:
            requests.get(url, timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer within {START_S:g} s.")


@contextmanager
def _process(command: list[str], health: str, what: str, env: dict[str, str]) -> Iterator[None]:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        _wait_until_up(health, process, what)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@contextmanager
def ipyimagegen_proxy(upstream: str, folder: Path) -> Iterator[str]:
    """``ipyimagegen serve --upstream`` in front of ``upstream``; yields its base URL."""
    port = _free_port()
    command = [sys.executable, "-m", "ipyimagegen", "serve", "--port", str(port), "--upstream", upstream]
    env = {**os.environ, "OPENAI_API_KEY": UPSTREAM_KEY, "IPYIMAGEGEN_SERVER_DIR": str(folder)}
    with _process(
        [*command, "--log-level", "warning"], f"http://127.0.0.1:{port}/health", "ipyimagegen serve", env
    ):
        yield f"http://127.0.0.1:{port}/v1"


def litellm_command() -> str | None:
    """The `litellm` executable to measure against, if one is installed."""
    return os.environ.get(LITELLM_ENV) or shutil.which("litellm")


@contextmanager
def litellm_proxy(executable: str, upstream: str, folder: Path) -> Iterator[str]:
    """LiteLLM's proxy in front of ``upstream``; yields its base URL."""
    port = _free_port()
    config = folder / f"litellm-{port}.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: gpt-image-2\n"
        "    litellm_params:\n"
        "      model: openai/gpt-image-2\n"
        f"      api_base: {upstream}\n"
        f"      api_key: {UPSTREAM_KEY}\n"
        "general_settings:\n"
        f"  master_key: {MASTER_KEY}\n"
    )
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
    command = [executable, "--config", str(config), "--port", str(port)]
    with _process(command, f"http://127.0.0.1:{port}/health/liveliness", "litellm", env):
        yield f"http://127.0.0.1:{port}/v1"


def _call(session: requests.Session, base_url: str) -> float:
    started = time.perf_counter()
    answer = session.post(
        f"{base_url}/images/generations",
        json=BODY,
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        timeout=120,
    )
    if answer.status_code != 200 or b"b64_json" not in answer.content:
        raise RuntimeError(f"{base_url} answered HTTP {answer.status_code}: {answer.text[:300]}")
    return time.perf_counter() - started


def latencies(targets: dict[str, str], calls: int) -> dict[str, float]:
    """Median seconds per call for each target, one client, calls alternating between them."""
    sessions = {name: requests.Session() for name in targets}
    times: dict[str, list[float]] = {name: [] for name in targets}
    for name, url in targets.items():
        for _ in range(3):
            _call(sessions[name], url)  # warm-up: connections, caches
    for _ in range(calls):
        for name, url in targets.items():
            times[name].append(_call(sessions[name], url))
    return {name: statistics.median(values) for name, values in times.items()}


def throughput(base_url: str, clients: int, calls_each: int) -> float:
    """Calls per second with ``clients`` threads each making ``calls_each`` calls."""
    errors: list[BaseException] = []
    start = threading.Barrier(clients + 1)

    def client() -> None:
        session = requests.Session()
        _call(session, base_url)
        start.wait()
        try:
            for _ in range(calls_each):
                _call(session, base_url)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} of {clients} clients failed: {errors[0]}")
    return clients * calls_each / wall


def run(options: Options) -> list[Figure]:
    executable = litellm_command()
    calls = options.pick(10, 40)
    say(
        "method: an instant upstream (a 1024x1024 photo-like PNG, ~2.6 MB of JSON a call) and one that waits "
        "200 ms, each in its own process; each proxy its own command in its own process; one client "
        f"alternating for latency ({calls} calls each), then 8 and 32 client threads for throughput"
    )
    if executable is None:
        say(f"LiteLLM is not installed (set {LITELLM_ENV} to a `litellm` executable): no peer figures")
    figures: list[Figure] = []
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ipyimagegen-bench-proxy-")))
        instant = stack.enter_context(served())
        slow = stack.enter_context(served(delay_s=0.2))
        ours = {"instant": stack.enter_context(ipyimagegen_proxy(instant, folder))}
        ours["slow"] = stack.enter_context(ipyimagegen_proxy(slow, folder))
        peers: dict[str, str] = {}
        if executable is not None:
            peers["instant"] = stack.enter_context(litellm_proxy(executable, instant, folder))
            peers["slow"] = stack.enter_context(litellm_proxy(executable, slow, folder))

        targets = {
            "direct": instant,
            "ipyimagegen": ours["instant"],
            **({"litellm": peers["instant"]} if peers else {}),
        }
        median = latencies(targets, calls)
        added = {name: (median[name] - median["direct"]) * 1000 for name in targets if name != "direct"}
        say(
            f"one client: straight to the upstream {median['direct'] * 1000:.1f} ms a call; added by "
            + ", ".join(f"{name} {value:.1f} ms" for name, value in added.items())
        )
        figures.append(
            Figure(
                "proxy: added latency, 1 client, vs LiteLLM",
                added["ipyimagegen"],
                "ms",
                Goal(1.0, on=RATIO, compare="<=") if peers else None,
                peer=added.get("litellm"),
            )
        )
        for upstream, clients, each in (
            ("instant", 8, options.pick(3, 10)),
            ("instant", 32, options.pick(1, 4)),
            ("slow", 32, options.pick(1, 4)),
        ):
            mine = throughput(ours[upstream], clients, each)
            theirs = throughput(peers[upstream], clients, each) if peers else None
            peer_text = f" vs LiteLLM {theirs:.1f}" if theirs is not None else ""
            say(f"{clients} clients, {upstream} upstream: {mine:.1f} calls/s{peer_text}")
            figures.append(
                Figure(
                    f"proxy: calls/s, {clients} clients, {upstream} upstream",
                    mine,
                    "calls/s",
                    Goal(1.0, on=RATIO, compare=">=") if peers else None,
                    peer=theirs,
                )
            )
    return figures
