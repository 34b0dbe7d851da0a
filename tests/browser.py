"""Helpers for browser tests: a notebook served by Voila, driven in headless Chromium by Playwright.

Chromium comes from Debian (``apt-get install -y chromium``); Playwright's own browser
download is not used. Every request that is not to 127.0.0.1 is aborted, so a test never
reaches the network. Tests that need a browser call :func:`require_chromium` first.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
STARTUP_TIMEOUT_S = 60.0
LOCAL_URL = re.compile(r"^(https?|wss?)://127\.0\.0\.1[:/]|^(data|blob):")

# Console noise that says nothing about the page under test (Voila bundles older libraries,
# and requests to anything but 127.0.0.1 are aborted on purpose).
# "The getter for the shared module..." is Voila failing to load Notebook 7's own lab extension.
IGNORED_CONSOLE = re.compile(
    r"version|ERR_FAILED|ERR_BLOCKED|favicon|Failed to load resource|net::|DevTools"
    r"|The getter for the shared module is not a function",
    re.IGNORECASE,
)


def require_chromium() -> Path:
    """The Chromium binary, or skip the test with the command that installs it."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get update && apt-get install -y chromium")
    return CHROMIUM


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = STARTUP_TIMEOUT_S) -> None:
    """Wait until something listens on ``port`` (polling the port, never GET /: that runs the notebook)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited early with code {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listened on port {port} after {timeout:.0f} s")


def write_notebook(path: Path, *sources: str) -> Path:
    """A notebook with one code cell per source."""
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)
    return path


def jupyter_env(home: Path) -> dict[str, str]:
    """The environment for a Jupyter server: fresh config, data and runtime folders under ``home``."""
    env = dict(os.environ)
    for name in ("config", "data", "runtime"):
        folder = home / f"jupyter-{name}"
        folder.mkdir(parents=True, exist_ok=True)
        env[f"JUPYTER_{name.upper()}_DIR"] = str(folder)
    tmp = home / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    env["TMPDIR"] = str(tmp)
    return env


@contextlib.contextmanager
def voila(notebook: Path, home: Path) -> Iterator[str]:
    """Serve ``notebook`` with Voila on a free port; yields its URL and stops the server after."""
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("voila")),
        str(notebook),
        "--no-browser",
        f"--port={port}",
        "--Voila.ip=127.0.0.1",
    ]
    log = (home / "voila.log").open("wb")
    process = subprocess.Popen(
        command,
        cwd=notebook.parent,
        env=jupyter_env(home),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}/"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        log.close()


@dataclass
class Console:
    """Console errors and uncaught page errors, with the known noise left out."""

    errors: list[str] = field(default_factory=list)

    def relevant(self) -> list[str]:
        return [text for text in self.errors if not IGNORED_CONSOLE.search(text)]


def _local_only(route: Any) -> None:
    """Let requests to 127.0.0.1 through; abort the rest (fonts, CDNs, telemetry)."""
    if LOCAL_URL.match(route.request.url):
        route.continue_()
    else:
        route.abort()


@contextlib.contextmanager
def browser_page(viewport: tuple[int, int] = (1280, 1000)) -> Iterator[tuple[Any, Console]]:
    """A Playwright page in headless Chromium that can reach 127.0.0.1 only; yields (page, console)."""
    from playwright.sync_api import sync_playwright

    console = Console()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(require_chromium()), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            page.route("**/*", _local_only)
            page.on("console", lambda msg: console.errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: console.errors.append(f"pageerror: {exc}"))
            yield page, console
        finally:
            browser.close()
