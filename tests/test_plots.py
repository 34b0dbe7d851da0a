"""Comparison sheets: contact sheets and prompt matrices, drawn with matplotlib and saved as PNG/PDF."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from ipyimagegen.api.backend import BaseBackend
from ipyimagegen.api.types import CallHooks, GeneratedImage, GenerateRequest, ImagesResponse
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.errors import RateLimitError
from ipyimagegen.gallery import Gallery
from ipyimagegen.plots import MatrixCell, contact_sheet, prompt_matrix, save_figure


@pytest.fixture(scope="module")
def engine() -> PreviewEngine:
    return PreviewEngine()


def labels(figure: Figure) -> tuple[list[str], list[str]]:
    """Column titles of the top row and row labels of the first column, in grid order."""
    axes = sorted(figure.axes, key=lambda ax: (-ax.get_position().y0, ax.get_position().x0))
    return [ax.get_title() for ax in axes if ax.get_title()], [
        ax.get_ylabel() for ax in axes if ax.get_ylabel()
    ]


def texts(figure: Figure) -> str:
    return " ".join(text.get_text() for ax in figure.axes for text in ax.texts)


def test_contact_sheet_takes_any_kind_of_image(engine: PreviewEngine, tmp_path: Path) -> None:
    response = engine.generate(
        prompt="a small boat on a long and winding river at dusk", model="dall-e-2", n=2
    )
    with Gallery(tmp_path / "gallery") as gallery:
        item = gallery.save(response[0])
        pil = Image.new("RGB", (40, 20), "orange")
        figure = contact_sheet([response[0], item, response[1].data, pil], title="Boats")
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 4
    titles = [ax.get_title() for ax in figure.axes]
    assert titles[0] == titles[1] and "winding" in titles[0] and "\n" in titles[0]  # wrapped
    assert titles[3] == ""
    assert figure.get_suptitle() == "Boats"
    assert [ax.images[0].get_array().shape[:2] for ax in figure.axes][3] == (20, 40)


def test_contact_sheet_columns_titles_and_leftover_cells(engine: PreviewEngine) -> None:
    images = list(engine.generate(prompt="tiles", model="dall-e-2", size="256x256", n=5))
    figure = contact_sheet(images, titles=list("abcde"), columns=2)
    assert len(figure.axes) == 5  # the sixth cell of the 3x2 grid is removed
    assert [ax.get_title() for ax in figure.axes] == list("abcde")
    assert figure.axes[0].get_subplotspec().get_gridspec().get_geometry() == (3, 2)
    with pytest.raises(ValueError, match="one title per image"):
        contact_sheet(images, titles=["only one"])
    with pytest.raises(ValueError, match="at least one image"):
        contact_sheet([])


def test_figures_are_saved_as_png_or_pdf(engine: PreviewEngine, tmp_path: Path) -> None:
    figure = contact_sheet(engine.generate(prompt="a kite", model="dall-e-2", size="256x256", n=2))
    png = save_figure(figure, tmp_path / "sheets" / "kites.png")
    pdf = save_figure(figure, tmp_path / "kites.PDF")
    with Image.open(png) as opened:
        opened.load()
        assert opened.format == "PNG" and opened.width > 300
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 5_000
    with pytest.raises(ValueError, match=r"\.png or \.pdf"):
        save_figure(figure, tmp_path / "kites.svg")


def test_matrix_of_prompts_by_one_parameter(engine: PreviewEngine, tmp_path: Path) -> None:
    seen: list[MatrixCell] = []
    with Gallery(tmp_path / "gallery") as gallery:
        result = prompt_matrix(
            ["a red fox", "a blue whale", "a green frog"],
            {"style": ["vivid", "natural"]},
            engine,
            base={"model": "dall-e-3", "size": "1024x1024"},
            gallery=gallery,
            on_result=seen.append,
        )
        assert len(gallery) == 6
        assert {item.options["style"] for item in gallery.items()} == {"vivid", "natural"}
    assert result.row_labels == ["a red fox", "a blue whale", "a green frog"]
    assert result.column_labels == ["style=vivid", "style=natural"]
    assert len(result.figure.axes) == 6
    columns, rows = labels(result.figure)
    assert columns == ["style=vivid", "style=natural"]
    assert rows == ["a red fox", "a blue whale", "a green frog"]
    assert sorted((cell.row, cell.column) for cell in seen) == sorted(result.grid)
    assert result.errors == {}
    cell = result.cells[(1, 0)]
    assert isinstance(cell, GeneratedImage)
    assert (cell.request.prompt, cell.request.style, cell.request.model) == (
        "a blue whale",
        "vivid",
        "dall-e-3",
    )
    assert all(saved.id for c in result.grid.values() for saved in c.saved)
    saved = result.save(tmp_path / "matrix.png")
    with Image.open(saved) as opened:
        assert opened.format == "PNG"


def test_matrix_of_two_parameters_with_a_failing_cell(engine: PreviewEngine) -> None:
    result = prompt_matrix(
        "a lighthouse in a storm",
        {"model": ["dall-e-2", "dall-e-3"], "size": ["256x256", "1024x1024"]},
        engine,
        n=2,
    )
    assert result.row_labels == ["model=dall-e-2", "model=dall-e-3"]
    assert result.column_labels == ["size=256x256", "size=1024x1024"]
    assert len(result.figure.axes) == 4
    assert result.figure.get_suptitle() == "a lighthouse in a storm"
    assert set(result.errors) == {(1, 0), (1, 1)}  # dall-e-3 makes one image at a time, and no 256x256
    assert isinstance(result.cells[(0, 0)], GeneratedImage)
    assert len(result.grid[(0, 1)].images) == 2
    assert result.grid[(0, 1)].images[1].size == (1024, 1024)
    assert "dall-e-3" in texts(result.figure)  # the error text is drawn in the failed cells


class FlakyBackend(BaseBackend):
    """A backend that refuses one prompt with a rate-limit error and counts how many calls overlap."""

    name = "flaky"

    def __init__(self) -> None:
        self.running = 0
        self.most_at_once = 0
        self.lock = threading.Lock()
        self.release = threading.Event()

    def _generate(self, request: GenerateRequest, hooks: CallHooks) -> ImagesResponse:
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            self.release.wait(0.05)  # overlap with the other calls, if they are allowed to run
            if "refused" in request.prompt:
                raise RateLimitError("Rate limit reached for images per minute.", status_code=429)
            buffer = io.BytesIO()
            Image.fromarray(np.full((32, 32, 3), 200, dtype=np.uint8)).save(buffer, format="PNG")
            return ImagesResponse(data=[GeneratedImage(data=buffer.getvalue())])
        finally:
            with self.lock:
                self.running -= 1


def test_a_failed_cell_shows_its_error_and_the_rest_goes_on() -> None:
    backend = FlakyBackend()
    result = prompt_matrix(
        ["fine", "refused", "also fine"],
        {"quality": ["standard", "hd"]},
        backend,
        max_workers=2,
        base={"model": "dall-e-3"},
    )
    assert set(result.errors) == {(1, 0), (1, 1)}
    assert isinstance(result.errors[(1, 0)], RateLimitError)
    assert sum(isinstance(value, GeneratedImage) for value in result.cells.values()) == 4
    assert "Rate limit reached" in texts(result.figure)
    assert backend.most_at_once <= 2


def test_matrix_arguments_are_checked(engine: PreviewEngine) -> None:
    with pytest.raises(ValueError, match="one or two parameters"):
        prompt_matrix("x", {}, engine)
    with pytest.raises(ValueError, match="one or two parameters"):
        prompt_matrix("x", {"a": [1], "b": [2], "c": [3]}, engine)
    with pytest.raises(ValueError, match="list of values for 'size'"):
        prompt_matrix("x", {"size": []}, engine)
    with pytest.raises(ValueError, match="pass prompts and n as arguments"):
        prompt_matrix("x", {"size": ["256x256"]}, engine, base={"n": 2})
    with pytest.raises(ValueError, match="at least one prompt"):
        prompt_matrix([], {"size": ["256x256"]}, engine)


def test_one_value_may_be_given_without_a_list_and_the_result_shows_itself(engine: PreviewEngine) -> None:
    result = prompt_matrix("a fig", {"size": "256x256"}, engine, base={"model": "dall-e-2"})
    assert result.column_labels == ["size=256x256"] and len(result.figure.axes) == 1
    assert result._repr_png_().startswith(b"\x89PNG")


def test_matrix_runs_on_the_default_backend_when_none_is_given() -> None:
    result = prompt_matrix(["a fox"], over={"size": ["256x256", "512x512"]}, base={"model": "dall-e-2"})
    assert result.errors == {}  # no key in the environment: the offline preview engine made them
    assert [result.cells[(0, 0)].size, result.cells[(0, 1)].size] == [(256, 256), (512, 512)]


def test_a_matrix_over_sizes_without_a_model_uses_one_model_for_every_cell() -> None:
    from ipyimagegen.engines.preview import PreviewEngine

    matrix = prompt_matrix("a lighthouse", {"size": ["1024x1024", "1536x1024"]}, PreviewEngine())
    assert not matrix.errors
    models = {cell.images[0].request.model for cell in matrix.grid.values()}  # type: ignore[union-attr]
    assert len(models) == 1 and "dall-e-2" not in models  # 1536x1024 is a GPT image size: its model for both
