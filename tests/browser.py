"""Helpers for browser tests: notebooks served by Voila or JupyterLab, driven in headless Chromium
by Playwright.

Chromium comes from Debian (``apt-get install -y chromium``); Playwright's own browser
download is not used. Every request that is not to 127.0.0.1 is aborted, so a test never
reaches the network. Tests that need a browser call :func:`require_chromium` first.
The servers get fresh Jupyter folders and no OpenAI, Azure or ipyimagegen settings, so the
studio runs on the offline preview engine.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from absent import tool_missing
from waiting import wait_until

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
    """The Chromium binary, or skip the test with the command that installs it.

    In CI (``$CI`` set) a missing browser fails the test instead: CI installs it.
    """
    if not CHROMIUM.exists():
        tool_missing(f"{CHROMIUM} is missing: apt-get update && apt-get install -y chromium")
    return CHROMIUM


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = STARTUP_TIMEOUT_S) -> None:
    """Wait until something listens on ``port`` (polling the port, never GET /: that runs the notebook)."""

    def listening() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited early with code {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
        return False

    wait_until(listening, timeout=timeout, interval=0.2, message=f"something to listen on port {port}")


def write_notebook(path: Path, *sources: str) -> Path:
    """A notebook with one code cell per source."""
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)
    return path


#: Settings that would choose another backend or another folder: never passed to a test server.
BACKEND_SETTINGS = ("OPENAI_", "AZURE_OPENAI_", "IPYIMAGEGEN_")


def jupyter_env(home: Path) -> dict[str, str]:
    """The environment for a Jupyter server: fresh config, data and runtime folders under ``home``,
    no backend settings (the preview engine) and a gallery folder under ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(BACKEND_SETTINGS)}
    env["IPYIMAGEGEN_GALLERY"] = str(home / "gallery")
    for name in ("config", "data", "runtime"):
        folder = home / f"jupyter-{name}"
        folder.mkdir(parents=True, exist_ok=True)
        env[f"JUPYTER_{name.upper()}_DIR"] = str(folder)
    tmp = home / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    env["TMPDIR"] = str(tmp)
    return env


@contextlib.contextmanager
def _server(
    command: list[str], cwd: Path, env: dict[str, str], log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server in a process group of its own, logging to ``log_path``; stop it after.

    SIGTERM first, so that a Jupyter server shuts its kernels down (they run in sessions of
    their own), then SIGKILL for whatever is left of the group.
    """
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield process
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)


@contextlib.contextmanager
def voila(notebook: Path, home: Path) -> Iterator[str]:
    """Serve ``notebook`` with Voila on a free port; yields its URL and stops the server after.

    Tracebacks are shown in the page, so a failing cell is visible in a failure screenshot.
    """
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("voila")),
        str(notebook),
        "--no-browser",
        f"--port={port}",
        "--Voila.ip=127.0.0.1",
        "--show_tracebacks=True",
    ]
    with _server(command, notebook.parent, jupyter_env(home), home / "voila.log") as process:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}/"


# -- JupyterLab ----------------------------------------------------------------------------------

#: Lab settings for tests: no news or update checks (they would reach the network) and every
#: cell kept in the page (no windowing), so each cell's prompt and outputs can be read.
LAB_SETTING_OVERRIDES: dict[str, dict[str, Any]] = {
    "@jupyterlab/apputils-extension:notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
        "doNotDisturbMode": True,
    },
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
}


@dataclass(frozen=True)
class LabServer:
    """A running JupyterLab: its base URL, token and root folder."""

    url: str
    token: str
    root: Path

    def notebook_url(self, path: str, workspace: str) -> str:
        """The URL that opens ``path`` (relative to the root) in a fresh workspace of its own, so
        no test sees the tabs that another one left open."""
        return f"{self.url}lab/workspaces/{workspace}/tree/{path}?token={self.token}"


def _wait_for_lab_api(url: str, token: str, process: subprocess.Popen[bytes]) -> None:
    """Wait until the server answers ``/api/status`` (cheap: it starts no kernel)."""

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited early with code {process.returncode}")
        with contextlib.suppress(OSError):
            request = urllib.request.Request(f"{url}api/status", headers={"Authorization": f"token {token}"})
            with urllib.request.urlopen(request, timeout=2) as response:
                return response.status == 200
        return False

    wait_until(answers, timeout=STARTUP_TIMEOUT_S, interval=0.2, message=f"jupyter lab to answer at {url}")


@dataclass(frozen=True)
class NotebookServer(LabServer):
    """A running Notebook 7 server: each notebook opens in a page of its own."""

    def notebook_url(self, path: str, workspace: str = "") -> str:
        """The URL of ``path``'s notebook page (Notebook 7 has no workspaces: ``workspace`` is unused)."""
        return f"{self.url}notebooks/{path}?token={self.token}"


@contextlib.contextmanager
def _jupyter_app(executable: str, app_class: str, root: Path, home: Path) -> Iterator[tuple[str, str]]:
    """Serve ``root`` with a JupyterLab-based app (``jupyter-lab`` or ``jupyter-notebook``) on a
    free port, with fresh Jupyter folders and the test settings under ``home``; yields its URL
    and token and stops it (and its kernels) after. ``window.jupyterapp`` is exposed."""
    env = jupyter_env(home)
    labconfig = Path(env["JUPYTER_CONFIG_DIR"]) / "labconfig"
    labconfig.mkdir(parents=True, exist_ok=True)
    (labconfig / "default_setting_overrides.json").write_text(json.dumps(LAB_SETTING_OVERRIDES), "utf-8")
    workspaces = home / "lab-workspaces"
    workspaces.mkdir(parents=True, exist_ok=True)
    port = free_port()
    token = os.urandom(16).hex()
    command = [
        str(Path(sys.executable).with_name(executable)),
        "--no-browser",
        "--allow-root",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--{app_class}.workspaces_dir={workspaces}",
        f"--{app_class}.expose_app_in_browser=True",
    ]
    with _server(command, root, env, home / f"{executable}.log") as process:
        url = f"http://127.0.0.1:{port}/"
        wait_for_port(port, process)
        _wait_for_lab_api(url, token, process)
        yield url, token


@contextlib.contextmanager
def jupyter_lab(root: Path, home: Path) -> Iterator[LabServer]:
    """Serve ``root`` with JupyterLab on a free port, with fresh Jupyter folders under ``home``;
    yields the :class:`LabServer` and stops it (and its kernels) after.

    ``window.jupyterapp`` is exposed, so tests drive the app through its commands.
    """
    with _jupyter_app("jupyter-lab", "LabApp", root, home) as (url, token):
        yield LabServer(url, token, root)


@contextlib.contextmanager
def jupyter_notebook(root: Path, home: Path) -> Iterator[NotebookServer]:
    """Serve ``root`` with Notebook 7 (``jupyter notebook``) like :func:`jupyter_lab`; the
    ``lab_*`` helpers drive its pages too (it is built on JupyterLab)."""
    with _jupyter_app("jupyter-notebook", "JupyterNotebookApp", root, home) as (url, token):
        yield NotebookServer(url, token, root)


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
def chromium() -> Iterator[Any]:
    """Headless Debian Chromium under Playwright; yields the Browser and closes it after."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(require_chromium()), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Any, viewport: tuple[int, int] = (1280, 1000)) -> tuple[Any, Console]:
    """A page of ``browser`` that can reach 127.0.0.1 only, and the console that records its errors."""
    console = Console()
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    page.route("**/*", _local_only)
    page.on("console", lambda msg: console.errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: console.errors.append(f"pageerror: {exc}"))
    return page, console


@contextlib.contextmanager
def browser_page(viewport: tuple[int, int] = (1280, 1000)) -> Iterator[tuple[Any, Console]]:
    """A Playwright page in headless Chromium that can reach 127.0.0.1 only; yields (page, console)."""
    with chromium() as browser:
        yield new_page(browser, viewport)


# -- pages ---------------------------------------------------------------------------------------

#: What a widget shows when its model or view could not be made; "Loading widget..." is what it
#: shows until then.
WIDGET_FAILURE = re.compile(r"Error displaying widget|Could not create|model not found|Loading widget", re.I)
#: What a Python error looks like in a page.
PYTHON_ERROR = re.compile(r"Traceback \(most recent call last\)|There was an error when executing cell")


def page_problems(page: Any) -> list[str]:
    """Widget placeholders left or errors shown in the page's text: none is expected."""
    text = page.locator("body").inner_text()
    return [match.group(0) for pattern in (WIDGET_FAILURE, PYTHON_ERROR) for match in pattern.finditer(text)]


def loaded_images(page: Any, selector: str) -> tuple[int, int]:
    """How many ``<img>`` match ``selector``, and how many of them have loaded (non-zero natural width)."""
    return tuple(  # type: ignore[return-value]
        page.evaluate(
            "(s) => { const all = Array.from(document.querySelectorAll(s));"
            " return [all.length, all.filter(i => i.complete && i.naturalWidth > 0).length]; }",
            selector,
        )
    )


def wait_for_loaded_images(page: Any, selector: str, count: int, timeout_ms: float = 30_000) -> None:
    """Wait until exactly ``count`` images match ``selector`` and every one of them has loaded."""
    page.wait_for_function(
        "([s, n]) => { const all = Array.from(document.querySelectorAll(s));"
        " return all.length === n && all.every(i => i.complete && i.naturalWidth > 0); }",
        arg=[selector, count],
        timeout=timeout_ms,
    )
    assert loaded_images(page, selector) == (count, count)


# -- driving JupyterLab through window.jupyterapp ------------------------------------------------

_KERNEL_READY = """(path) => {
    const app = window.jupyterapp;
    const panel = app && app.shell.currentWidget;
    if (!panel || !panel.sessionContext || !panel.context || panel.context.path !== path) return false;
    const session = panel.sessionContext;
    const kernel = session.session && session.session.kernel;
    return panel.context.isReady && session.isReady && !!kernel
        && kernel.connectionStatus === 'connected' && kernel.status === 'idle';
}"""

_CELLS = """() => window.jupyterapp.shell.currentWidget.content.widgets.map((cell) => {
    const outputs = cell.model.type === 'code' ? cell.model.outputs.toJSON() : [];
    const prompt = cell.node.querySelector('.jp-InputPrompt');
    return {
        type: cell.model.type,
        source: cell.model.sharedModel.getSource(),
        execution_count: cell.model.type === 'code' ? cell.model.executionCount : null,
        prompt: prompt ? prompt.innerText.trim() : '',
        outputs: outputs,
    };
})"""

_RUN_NEW_CELL = """async (code) => {
    const app = window.jupyterapp;
    const notebook = app.shell.currentWidget.content;
    notebook.activeCellIndex = notebook.widgets.length - 1;
    await app.commands.execute('notebook:insert-cell-below');
    const cell = notebook.activeCell;
    cell.model.sharedModel.setSource(code);
    await app.commands.execute('notebook:run-cell');
    return notebook.widgets.indexOf(cell);
}"""


@dataclass
class LabCell:
    """One notebook cell as the Lab page holds it."""

    type: str
    source: str
    execution_count: int | None
    prompt: str
    outputs: list[dict[str, Any]]

    def errors(self) -> list[str]:
        """Error outputs and stderr text, as text."""
        found = []
        for output in self.outputs:
            if output.get("output_type") == "error":
                found.append("\n".join(output.get("traceback", [])) or f"{output.get('ename')}")
            elif output.get("output_type") == "stream" and output.get("name") == "stderr":
                found.append(_text(output.get("text", "")))
        return found

    def stdout(self) -> str:
        return "".join(
            _text(output.get("text", ""))
            for output in self.outputs
            if output.get("output_type") == "stream" and output.get("name") == "stdout"
        )


def _text(value: str | list[str]) -> str:
    return value if isinstance(value, str) else "".join(value)


def lab_open_notebook(page: Any, lab: LabServer, path: str, workspace: str, timeout_s: float = 60) -> None:
    """Open ``path`` in Lab and wait until its kernel is really ready.

    The toolbar may say idle while the notebook has no kernel yet (and Run All then does
    nothing), so this waits on the notebook's sessionContext: ready, connected and idle.
    """
    page.goto(lab.notebook_url(path, workspace), wait_until="domcontentloaded", timeout=timeout_s * 1000)
    page.wait_for_function(_KERNEL_READY, arg=path, timeout=timeout_s * 1000, polling=100)


def lab_run_all(page: Any, timeout_s: float = 60) -> list[LabCell]:
    """Run all the cells of the current notebook; returns its cells once the run is over.

    The run is over when the command's promise settles: Lab stops at the first failing cell.
    """
    page.evaluate(
        "() => { window.__ipyimagegenRunAll = undefined;"
        " window.jupyterapp.commands.execute('notebook:run-all-cells')"
        ".then((ok) => { window.__ipyimagegenRunAll = {ok: ok}; },"
        " (error) => { window.__ipyimagegenRunAll = {error: String(error)}; }); }"
    )
    page.wait_for_function(
        "() => window.__ipyimagegenRunAll !== undefined", timeout=timeout_s * 1000, polling=100
    )
    outcome = page.evaluate("() => window.__ipyimagegenRunAll")
    assert "error" not in outcome, f"notebook:run-all-cells failed: {outcome['error']}"
    return lab_cells(page)


def lab_cells(page: Any) -> list[LabCell]:
    """The current notebook's cells: source, execution count, prompt text and outputs."""
    return [LabCell(**cell) for cell in page.evaluate(_CELLS)]


def lab_run_code(page: Any, code: str, timeout_s: float = 30) -> LabCell:
    """Add a code cell at the end of the current notebook, run it in the notebook's kernel and
    return it once it has run (as a user would: through Lab's own commands)."""
    index = page.evaluate(_RUN_NEW_CELL, code)
    page.wait_for_function(
        "(i) => window.jupyterapp.shell.currentWidget.content.widgets[i].model.executionCount !== null",
        arg=index,
        timeout=timeout_s * 1000,
        polling=100,
    )
    return lab_cells(page)[index]
