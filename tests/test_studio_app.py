"""``ipyimagegen studio``: the studio as an app, served by Voila from the packaged notebook, making
nothing until a click."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from ipyimagegen import cli, studio_app

REPO = Path(__file__).resolve().parents[1]


def _code(path: Path) -> list[str]:
    notebook = json.loads(path.read_text(encoding="utf-8"))
    return ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]


def test_the_packaged_studio_notebook_is_the_one_in_notebooks_and_holds_only_the_studio() -> None:
    packaged = studio_app.studio_notebook()
    assert packaged.is_file()
    assert (
        _code(packaged)
        == _code(REPO / "notebooks" / "studio.ipynb")
        == ["import ipyimagegen as ig\n\nig.studio()"]
    )


def test_running_the_studio_notebook_makes_no_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gallery = tmp_path / "gallery"
    monkeypatch.setenv("IPYIMAGEGEN_GALLERY", str(gallery))
    notebook = nbformat.read(studio_app.studio_notebook(), as_version=4)
    NotebookClient(notebook, timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()
    (cell,) = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [output.output_type for output in cell.outputs] == ["execute_result"]  # the studio, no error
    assert "application/vnd.jupyter.widget-view+json" in cell.outputs[0].data
    made = [path for path in gallery.rglob("*") if path.suffix in (".png", ".jpeg", ".webp", ".gif", ".svg")]
    assert made == []


def test_the_command_serves_the_packaged_notebook_with_voila_and_keeps_the_gallery_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    command = studio_app.voila_command(port=9123, open_browser=False)
    assert command[:3] == [sys.executable, "-m", "voila"]
    assert command[3] == str(studio_app.studio_notebook())
    assert "--port=9123" in command and "--no-browser" in command and "--Voila.ip=127.0.0.1" in command
    monkeypatch.delenv("IPYIMAGEGEN_GALLERY", raising=False)
    assert studio_app.studio_environment(tmp_path)["IPYIMAGEGEN_GALLERY"] == str(
        tmp_path / "ipyimagegen-gallery"
    )
    monkeypatch.setenv("IPYIMAGEGEN_GALLERY", "/somewhere/else")
    assert studio_app.studio_environment(tmp_path)["IPYIMAGEGEN_GALLERY"] == "/somewhere/else"


def test_without_voila_the_command_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(studio_app.importlib.util, "find_spec", lambda name: None)
    assert cli.main(["studio", "--no-browser"]) == 2
    error = capsys.readouterr().err
    assert "Voila is not installed" in error and "pip install voila" in error
