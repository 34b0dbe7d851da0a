"""The Binder configuration (binder/) builds an environment in which the quickstart notebook runs.

The slow test does what repo2docker does with the files: a fresh Python environment with a
Jupyter kernel (Binder's base environment), then ``pip install -r binder/requirements.txt``
from the root of a copy of the repository, then ``binder/postBuild`` if there is one. The
quickstart notebook then runs in a kernel of that environment with no key and no network
settings, on the preview engine. pip's cache is reused, so a second run is quicker.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
BINDER = REPO / "binder"
QUICKSTART = "notebooks/01-quickstart.ipynb"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
KERNEL_NAME = "binder-test"
PIP_TIMEOUT_S = 600
NOTEBOOK_TIMEOUT_S = 300

# Runs inside the Binder environment: execute a notebook there and save it with its outputs.
RUN_NOTEBOOK = """
import sys
import nbformat
from nbclient import NotebookClient

source, target, kernel = sys.argv[1:4]
nb = nbformat.read(source, as_version=4)
NotebookClient(nb, kernel_name=kernel, timeout=120, resources={"metadata": {"path": "."}}).execute()
nbformat.write(nb, target)
"""


def requires_python() -> tuple[int, int]:
    """The lowest Python version pyproject.toml allows, as (3, minor)."""
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'^requires-python\s*=\s*">=\s*3\.(\d+)"', pyproject, re.MULTILINE)
    assert match, 'pyproject.toml should say requires-python = ">=3.X"'
    return (3, int(match.group(1)))


def test_runtime_is_a_python_the_package_supports() -> None:
    runtime = (BINDER / "runtime.txt").read_text(encoding="utf-8").strip()
    match = re.fullmatch(r"python-3\.(\d+)", runtime)
    assert match, f"binder/runtime.txt should read python-3.X, not {runtime!r}"
    assert (3, int(match.group(1))) >= requires_python()


def test_requirements_install_this_repository_with_the_server_and_fast_extras() -> None:
    lines = [
        line.split("#", 1)[0].strip()
        for line in (BINDER / "requirements.txt").read_text(encoding="utf-8").splitlines()
    ]
    # repo2docker runs pip from the repository's root, so "." is the package (not "..").
    assert ".[server,fast]" in lines


def test_the_readme_badge_opens_the_studio_app_and_binder_has_voila() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    badges = re.findall(r"https://mybinder\.org/v2/gh/[^)\s]+", readme)
    assert badges, "README.md has no Binder badge"
    opened = []
    for url in badges:
        target = re.search(r"[?&]urlpath=(?:lab/tree|voila/render)/([^&]+)", url)
        assert target, f"the badge should open a notebook in JupyterLab or Voila: {url}"
        assert (REPO / target.group(1)).is_file(), f"the badge opens {target.group(1)}, which does not exist"
        opened.append(url)
    # The first badge opens the studio as an app: nothing but the studio, nothing made until a click.
    assert "urlpath=voila/render/notebooks/studio.ipynb" in opened[0]
    requirements = (BINDER / "requirements.txt").read_text(encoding="utf-8").split()
    assert "voila" in requirements


def copy_of_repository(target: Path) -> Path:
    """The files a clone would have: tracked and new files that git does not ignore."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listing.split("\0")):
        source = REPO / name
        if source.is_file():
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
    return target


def binder_environment(venv: Path) -> dict[str, str]:
    """No keys, no endpoints, nothing from the test's own environment, the venv first on PATH."""
    dropped = ("OPENAI_", "AZURE_OPENAI_", "IPYIMAGEGEN_", "PYTHON", "VIRTUAL_ENV", "PIP_USER", "MPLBACKEND")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.mark.slow
@pytest.mark.timeout(PIP_TIMEOUT_S + 4 * NOTEBOOK_TIMEOUT_S + 120)
def test_binder_environment_runs_every_notebook(tmp_path: Path) -> None:
    repo = copy_of_repository(tmp_path / "repo")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    env = binder_environment(venv)

    def run(*argv: str, timeout: float = PIP_TIMEOUT_S, cwd: Path = repo) -> str:
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"{' '.join(argv)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done.stdout

    pip = (python, "-m", "pip", "--disable-pip-version-check", "install", "--quiet")
    # Binder's base environment has a Jupyter kernel; nbclient runs the notebook in this test.
    run(*pip, "ipykernel", "nbclient", "nbformat")
    # What repo2docker does with binder/:
    run(*pip, "-r", "binder/requirements.txt")
    if (repo / "binder" / "postBuild").exists():
        run("bash", "binder/postBuild")
    run(python, "-m", "ipykernel", "install", "--prefix", str(venv), "--name", KERNEL_NAME)

    installed = run(python, "-c", "import ipyimagegen, uvicorn; print(ipyimagegen.__file__)").strip()
    assert Path(installed).is_relative_to(venv), f"ipyimagegen was imported from {installed}"

    notebook = repo / QUICKSTART
    executed = tmp_path / "executed.ipynb"
    run(
        python,
        "-c",
        RUN_NOTEBOOK,
        str(notebook),
        str(executed),
        KERNEL_NAME,
        cwd=notebook.parent,
        timeout=NOTEBOOK_TIMEOUT_S,
    )
    nb = nbformat.read(executed, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(out.output_type != "error" for cell in code for out in cell.outputs)
    studio = next(cell for cell in code if "ig.studio()" in cell.source)
    assert any(WIDGET_VIEW in out.get("data", {}) for out in studio.outputs), "the studio showed no widget"
    assert (notebook.parent / "ipyimagegen-output" / "fox.png").is_file()

    for other in sorted((repo / "notebooks").glob("*.ipynb")):
        if other == notebook:
            continue
        executed = tmp_path / f"executed-{other.name}"
        run(
            python,
            "-c",
            RUN_NOTEBOOK,
            str(other),
            str(executed),
            KERNEL_NAME,
            cwd=other.parent,
            timeout=NOTEBOOK_TIMEOUT_S,
        )
        cells = [cell for cell in nbformat.read(executed, as_version=4).cells if cell.cell_type == "code"]
        errors = [out for cell in cells for out in cell.outputs if out.output_type == "error"]
        assert not errors, f"{other.name}: {errors[0].get('ename')}: {errors[0].get('evalue')}"
        assert all(cell.execution_count for cell in cells), f"{other.name}: not every cell ran"
