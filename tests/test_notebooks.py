"""The notebooks in notebooks/: kept without outputs, and each runs top to bottom on the preview engine.

Each notebook is executed once with nbclient, in a kernel of this interpreter, in an empty
folder, with no OpenAI, Azure or ipyimagegen settings in the kernel's environment: the default
backend is the offline preview engine and nothing reaches the network.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.server.app import make_app
from ipyimagegen.server.runner import ServerThread

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(path.stem for path in NOTEBOOKS_DIR.glob("*.ipynb"))
EXPECTED = ["01-quickstart", "02-edits-with-masks", "03-variations-and-comparisons", "04-workshop", "studio"]
CELL_TIMEOUT_S = 120
KERNEL_NAME = "ipyimagegen-test"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
IMAGES = {"image/png", "image/jpeg", "image/webp"}
# A cell whose last line is one of these shows something: an image, a figure or a widget.
SHOWS_A_VALUE = re.compile(r"^[A-Za-z_][\w.]*(\[\d+\])?$|^ig\.studio\(.*\)$")


def by_name(stem: str) -> Path:
    return NOTEBOOKS_DIR / f"{stem}.ipynb"


def code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def output_types(cell: nbformat.NotebookNode) -> set[str]:
    return {mime for output in cell.get("outputs", []) for mime in output.get("data", {})}


def printed(cell: nbformat.NotebookNode, stream: str = "stdout") -> str:
    return "".join(
        output.get("text", "")
        for output in cell.get("outputs", [])
        if output.output_type == "stream" and output.name == stream
    )


def cell_with(nb: nbformat.NotebookNode, text: str) -> nbformat.NotebookNode:
    matches = [cell for cell in code_cells(nb) if text in cell.source]
    assert len(matches) == 1, f"expected one code cell containing {text!r}, found {len(matches)}"
    return matches[0]


def kernel_environment() -> dict[str, str]:
    """This process's environment without the settings that would change the backend or the folders."""
    prefixes = ("OPENAI_", "AZURE_OPENAI_", "IPYIMAGEGEN_")
    dropped = {"MPLBACKEND", "PYTHONSTARTUP"}
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes) and k not in dropped}


@dataclass
class Run:
    """An executed notebook and the folder it ran in."""

    nb: nbformat.NotebookNode
    cwd: Path


@pytest.fixture(scope="module")
def kernel_specs(tmp_path_factory: pytest.TempPathFactory) -> KernelSpecManager:
    """A kernel spec that runs ipykernel on this very interpreter (not whatever `python3` is first)."""
    folder = tmp_path_factory.mktemp("kernels") / KERNEL_NAME
    folder.mkdir()
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python (tests)",
        "language": "python",
    }
    (folder / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    return KernelSpecManager(kernel_dirs=[str(folder.parent)], ensure_native_kernel=False)


def execute(stem: str, cwd: Path, specs: KernelSpecManager, env: dict[str, str]) -> nbformat.NotebookNode:
    """Run the notebook in ``cwd``; nbclient raises CellExecutionError, with the cell and its
    traceback, at the first failing cell."""
    nb = nbformat.read(by_name(stem), as_version=4)
    kernel = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs)
    client = NotebookClient(
        nb, km=kernel, timeout=CELL_TIMEOUT_S, allow_errors=False, resources={"metadata": {"path": str(cwd)}}
    )
    client.execute(env=env)
    return nb


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, kernel_specs: KernelSpecManager) -> Callable[[str], Run]:
    """``run(stem)``: the notebook, executed once for this module on the preview engine, in an
    empty folder of its own."""
    done: dict[str, Run] = {}

    def run_once(stem: str) -> Run:
        if stem not in done:
            cwd = tmp_path_factory.mktemp(stem)
            done[stem] = Run(execute(stem, cwd, kernel_specs, kernel_environment()), cwd)
        return done[stem]

    return run_once


# -- the notebooks as they are kept --------------------------------------------------------------


def test_the_notebooks_are_all_there() -> None:
    assert NOTEBOOKS == EXPECTED


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_notebook_is_kept_without_outputs(stem: str) -> None:
    nb = nbformat.read(by_name(stem), as_version=4)
    nbformat.validate(nb)
    for cell in code_cells(nb):
        assert cell.outputs == [], f"{stem}: clear the outputs of the cell {cell.source[:40]!r}"
        assert cell.execution_count is None, f"{stem}: clear the execution counts"
    assert WIDGET_STATE not in nb.metadata.get("widgets", {}), f"{stem}: remove the saved widget state"
    assert nb.metadata.kernelspec.name == "python3"


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_notebook_keeps_no_secret(stem: str) -> None:
    text = by_name(stem).read_text(encoding="utf-8")
    assert not re.search(r"sk-[A-Za-z0-9_-]{16,}", text), f"{stem} holds what looks like an API key"
    assert not re.search(r"igt-[A-Za-z0-9_-]{8,}", text), f"{stem} holds a workshop token"


# -- the notebooks run ---------------------------------------------------------------------------


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_notebook_runs_top_to_bottom(stem: str, run: Callable[[str], Run]) -> None:
    nb = run(stem).nb
    for cell in code_cells(nb):
        assert not [out for out in cell.outputs if out.output_type == "error"], f"{stem}: {cell.source!r}"
        assert not printed(cell, "stderr"), f"{stem}: {cell.source[:40]!r} wrote {printed(cell, 'stderr')!r}"
        last_line = cell.source.strip().splitlines()[-1]
        if SHOWS_A_VALUE.match(last_line):
            shown = output_types(cell)
            assert shown & (IMAGES | {WIDGET_VIEW}), f"{stem}: {last_line!r} showed only {sorted(shown)}"
    studio_cells = [cell for cell in code_cells(nb) if "studio(" in cell.source]
    assert studio_cells, f"{stem} does not open the studio"
    for cell in studio_cells:
        assert WIDGET_VIEW in output_types(cell), f"{stem}: the studio cell showed no widget"


def test_quickstart_shows_and_saves_images(run: Callable[[str], Run]) -> None:
    done = run("01-quickstart")
    assert "image/png" in output_types(cell_with(done.nb, "n=2"))
    assert (done.cwd / "ipyimagegen-output" / "fox.png").read_bytes().startswith(b"\x89PNG")
    assert "(1024, 1024)" in printed(cell_with(done.nb, ".save(out"))
    assert "offline" in printed(cell_with(done.nb, "backend.offline"))


def test_edit_notebook_changes_only_the_masked_area(run: Callable[[str], Run]) -> None:
    nb = run("02-edits-with-masks").nb
    assert WIDGET_VIEW in output_types(cell_with(nb, "MaskPainter("))
    report = printed(cell_with(nb, "changed inside the mask"))
    inside = re.search(r"inside the mask: (\d+)%", report)
    assert inside and int(inside.group(1)) > 50, report
    assert "outside it: 0.0%" in report
    assert "image/png" in output_types(cell_with(nb, "mask=border"))
    assert "MultiCanvas of 512x512 pixels, overlay of 1024x1024" in printed(
        cell_with(nb, "draw_overlay(guides)")
    )


def test_comparison_notebook_saves_pdfs(run: Callable[[str], Run]) -> None:
    done = run("03-variations-and-comparisons")
    for name in ("variations.pdf", "lighthouse-matrix.pdf"):
        assert (done.cwd / "ipyimagegen-output" / name).read_bytes().startswith(b"%PDF"), name
    assert "3 variations from dall-e-2 by variations" in printed(cell_with(done.nb, "backend.vary("))
    assert "failed cells: none" in printed(cell_with(done.nb, "failed cells"))


def test_workshop_notebook_uses_a_token_on_its_own_server(run: Callable[[str], Run]) -> None:
    nb = run("04-workshop").nb
    assert "image/png" in output_types(cell_with(nb, "api_key=token"))
    refusal = printed(cell_with(nb, "not-a-token"))
    assert "token" in refusal.lower(), f"the wrong token was not refused: {refusal!r}"
    assert "alice has made 1 of 5 images; 4 left" in printed(cell_with(nb, "images_left"))


@pytest.mark.slow
@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_notebook_runs_on_an_images_api_server(
    stem: str, tmp_path: Path, kernel_specs: KernelSpecManager
) -> None:
    """With OPENAI_BASE_URL and a key set, the same cells go through the HTTP client, with the
    default models and the sizes and options they ask for checked by a server that speaks the API."""
    with ServerThread(make_app(PreviewEngine())) as server:
        env = {**kernel_environment(), "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "a-token"}
        nb = execute(stem, tmp_path, kernel_specs, env)
    if stem == "studio":  # the app prints nothing and, on a key, makes (and spends) nothing until a click
        gallery = tmp_path / "ipyimagegen-gallery"
        assert not gallery.exists() or not any(gallery.rglob("*.png")), sorted(gallery.rglob("*"))
    else:
        assert any(f"Images API at 127.0.0.1:{server.port}" in printed(cell) for cell in code_cells(nb))
    for cell in code_cells(nb):
        assert not printed(cell, "stderr"), f"{stem}: {cell.source[:40]!r} wrote {printed(cell, 'stderr')!r}"


# -- what a saved notebook keeps -------------------------------------------------------------------

SAVED_SESSION = """\
from ipyimagegen.widgets import Studio
s = Studio(gallery="gallery")
s.generate_tab.prompt_box.value = "a white siamese cat"
s.generate_tab.params.model = "dall-e-2"
s.generate_tab.params.size = "1024x1024"
s.generate_tab.controls.run_button.click()
assert s.runner.wait(60)
s.grid.save(s.grid.tiles[0], "saved")
s
"""


def test_a_saved_notebook_keeps_no_full_image(tmp_path: Path, kernel_specs: KernelSpecManager) -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(SAVED_SESSION)])
    nb.metadata.kernelspec = {"name": KERNEL_NAME, "display_name": "Python (tests)", "language": "python"}
    kernel = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=kernel_specs)
    client = NotebookClient(
        nb,
        km=kernel,
        timeout=CELL_TIMEOUT_S,
        store_widget_state=True,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute(env=kernel_environment())
    path = tmp_path / "saved.ipynb"
    nbformat.write(nb, path)

    (full,) = (tmp_path / "saved").iterdir()
    text = path.read_text()
    assert WIDGET_STATE in nb.metadata["widgets"]  # the widgets were saved...
    full_b64 = base64.b64encode(full.read_bytes()).decode()
    assert "data:image" not in text and full_b64[1000:3000] not in text  # ...but not the full image
    states = nb.metadata["widgets"][WIDGET_STATE]["state"].values()
    largest = max(  # the page script of the grid (code, not data) aside
        len(json.dumps({k: v for k, v in state["state"].items() if k not in ("_esm", "_css")}))
        for state in states
    )
    assert largest < 20_000, largest  # a thumbnail, not the full image (itself about 50 KB here)
    assert path.stat().st_size < 400_000, path.stat().st_size


SECRET_KEY = "sk-proj-do-not-show-this-4f9c2b7e"

VERBOSE_ERRORS = """\
%xmode Verbose
import os
from ipyimagegen.api.client import OpenAIClient
echoing = OpenAIClient(base_url=os.environ["ECHO_URL"], max_retries=0)
echoing.generate(prompt="a cat", model="dall-e-2")
"""

UNREACHABLE = """\
unreachable = OpenAIClient(base_url="http://127.0.0.1:9/v1", max_retries=0, timeout=2)
unreachable.generate(prompt="a cat", model="dall-e-2")
"""


def test_no_key_in_a_verbose_traceback_or_the_saved_notebook(
    tmp_path: Path, kernel_specs: KernelSpecManager
) -> None:
    from fake_api_server import FakeImagesAPI, Reply

    echo = {
        "error": {
            "message": f"Incorrect API key provided: {SECRET_KEY}.",
            "type": "invalid_request_error",
            "param": SECRET_KEY,
            "code": f"invalid_api_key:{SECRET_KEY}",
        }
    }
    api = FakeImagesAPI().start()
    try:
        api.reply(Reply(status=401, body=echo, headers={"x-request-id": f"req-{SECRET_KEY}"}))
        nb = nbformat.v4.new_notebook(
            cells=[nbformat.v4.new_code_cell(VERBOSE_ERRORS), nbformat.v4.new_code_cell(UNREACHABLE)]
        )
        kernel = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=kernel_specs)
        client = NotebookClient(
            nb,
            km=kernel,
            timeout=CELL_TIMEOUT_S,
            allow_errors=True,
            store_widget_state=True,
            resources={"metadata": {"path": str(tmp_path)}},
        )
        client.execute(env={**kernel_environment(), "OPENAI_API_KEY": SECRET_KEY, "ECHO_URL": api.base_url})
    finally:
        api.close()
    saved = tmp_path / "errors.ipynb"
    nbformat.write(nb, saved)

    errors = [output for cell in nb.cells for output in cell.outputs if output.output_type == "error"]
    assert [error.ename for error in errors] == ["AuthenticationError", "APIConnectionError"]
    traceback_text = "\n".join(line for error in errors for line in error.traceback)
    assert "self" in traceback_text and "kwargs" in traceback_text  # the verbose locals are printed...
    assert api.requests[0].headers["authorization"] == f"Bearer {SECRET_KEY}"  # ...the key was sent...
    assert SECRET_KEY not in saved.read_text()  # ...and is nowhere in the notebook
