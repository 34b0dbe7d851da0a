"""Comparison sheets with matplotlib: contact sheets and prompt-by-parameter matrices.

Every function returns a :class:`~matplotlib.figure.Figure` made without pyplot (no global
state, safe in threads, never shown by itself); Jupyter displays it when it is the cell's value.
:func:`save_figure` writes PNG or PDF.
"""

from __future__ import annotations

import io
import itertools
import logging
import math
import os
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from .api.types import GeneratedImage
from .errors import describe_error
from .models import GENERATIONS, UNNAMED_MODEL

if TYPE_CHECKING:
    from .api.backend import Backend
    from .gallery import Gallery, GalleryItem

log = logging.getLogger(__name__)

IMAGE_SIDE_PX = 512
"""Images are scaled down to at most this many pixels a side before they go into a figure."""

CELL_INCHES = 2.6
CAPTION_FONT_SIZE = 8
CAPTION_LINES = 3
FIGURE_FORMATS = ("png", "pdf")


class SheetFigure(Figure):
    """A Figure that also shows itself as PNG in Jupyter when no matplotlib backend is set up."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        FigureCanvasAgg(self)

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()


# --- images and captions -------------------------------------------------------------------------


def _picture(item: Any) -> Image.Image:
    """A display copy of a GeneratedImage, GalleryItem, bytes, path, PIL image or array (an SVG
    drawing drawn, a GIF's first frame)."""
    from .imaging import open_picture

    if isinstance(item, GeneratedImage):
        source = item.data
    elif hasattr(item, "path") and hasattr(item, "prompt"):  # a GalleryItem
        source = item.path
    else:
        source = item
    image = open_picture(source, IMAGE_SIDE_PX)
    image.thumbnail((IMAGE_SIDE_PX, IMAGE_SIDE_PX), Image.Resampling.LANCZOS)
    return image


def _caption_of(item: Any) -> str:
    """The prompt an image was made from (as the user wrote it), or ``""``."""
    if isinstance(item, GeneratedImage):
        return getattr(item.request, "prompt", None) or item.revised_prompt or ""
    prompt = getattr(item, "prompt", None)
    return prompt if isinstance(prompt, str) else ""


def _wrap(
    text: str, width_inches: float, font_size: float = CAPTION_FONT_SIZE, lines: int = CAPTION_LINES
) -> str:
    """``text`` wrapped to fit ``width_inches`` at ``font_size``, cut to ``lines`` lines with an ellipsis."""
    characters = max(8, int(width_inches * 72 / (font_size * 0.55)))
    return textwrap.fill(" ".join(text.split()), width=characters, max_lines=lines, placeholder=" …")


def _blank(ax: Axes) -> None:
    """No ticks and no frame, but labels still show (unlike ``axis("off")``)."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _side_by_side(pictures: Sequence[Image.Image]) -> Image.Image:
    """Several images in one row, scaled to the same height."""
    if len(pictures) == 1:
        return pictures[0]
    height = min(picture.height for picture in pictures)
    scaled = [p.resize((max(1, round(p.width * height / p.height)), height)) for p in pictures]
    gap = max(2, height // 50)
    row = Image.new("RGBA", (sum(p.width for p in scaled) + gap * (len(scaled) - 1), height), (0, 0, 0, 0))
    x = 0
    for picture in scaled:
        row.paste(picture.convert("RGBA"), (x, 0))
        x += picture.width + gap
    return row


# --- contact sheets ------------------------------------------------------------------------------


def contact_sheet(
    images: Iterable[Any],
    titles: Sequence[str] | None = None,
    columns: int | None = None,
    figsize: tuple[float, float] | None = None,
    title: str | None = None,
    subtitles: Sequence[str] | None = None,
) -> Figure:
    """A grid of images with wrapped captions (their prompts unless ``titles`` are given).

    ``images`` may be GeneratedImage, GalleryItem, bytes, paths, PIL images or arrays.
    ``subtitles``: one more line under each caption (e.g. the model and size).
    """
    items = list(images)
    if not items:
        raise ValueError("contact_sheet() needs at least one image.")
    if titles is not None and len(titles) != len(items):
        raise ValueError(f"Got {len(titles)} titles for {len(items)} images; give one title per image.")
    if subtitles is not None and len(subtitles) != len(items):
        raise ValueError(
            f"Got {len(subtitles)} subtitles for {len(items)} images; give one subtitle per image."
        )
    columns = max(1, min(columns or math.ceil(math.sqrt(len(items))), len(items)))
    rows = math.ceil(len(items) / columns)
    if figsize is None:
        caption_inches = 0.45 + (0.15 if subtitles is not None else 0.0)
        figsize = (columns * CELL_INCHES, rows * (CELL_INCHES + caption_inches) + (0.4 if title else 0.0))
    figure = SheetFigure(figsize=figsize, layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    width = figsize[0] / columns
    for index, ax in enumerate(axes.flat):
        if index >= len(items):
            ax.remove()
            continue
        item = items[index]
        ax.imshow(np.asarray(_picture(item)))
        _blank(ax)
        caption = _wrap(titles[index] if titles is not None else _caption_of(item), width)
        subtitle = _wrap(subtitles[index], width, lines=1) if subtitles is not None else ""
        ax.set_title("\n".join(part for part in (caption, subtitle) if part), fontsize=CAPTION_FONT_SIZE)
    if title:
        figure.suptitle(title)
    return figure


def save_figure(figure: Figure, path: str | os.PathLike[str], dpi: int = 150) -> Path:
    """Write ``figure`` as PNG or PDF, chosen by the file extension; returns the path."""
    path = Path(path).expanduser()
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FIGURE_FORMATS:
        raise ValueError(f"Save the figure as .png or .pdf, not {path.suffix or 'without an extension'!r}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format=fmt, dpi=dpi)
    return path


# --- prompt matrices -----------------------------------------------------------------------------


@dataclass
class MatrixCell:
    """One cell of a prompt matrix: the request parameters and what came of them."""

    row: int
    column: int
    prompt: str
    params: dict[str, Any]
    images: list[GeneratedImage] = field(default_factory=list)
    error: Exception | None = None
    saved: list[GalleryItem] = field(default_factory=list)
    save_error: Exception | None = None

    @property
    def result(self) -> GeneratedImage | Exception:
        """The cell's first image, or the error that stopped it."""
        if self.error is not None or not self.images:
            return self.error or RuntimeError("The backend returned no image.")
        return self.images[0]


@dataclass
class MatrixResult:
    """The figure and every cell of a prompt matrix, keyed by (row, column) from (0, 0)."""

    figure: Figure
    row_labels: list[str]
    column_labels: list[str]
    grid: dict[tuple[int, int], MatrixCell]

    @property
    def cells(self) -> dict[tuple[int, int], GeneratedImage | Exception]:
        """Each cell's first image, or its error."""
        return {key: cell.result for key, cell in self.grid.items()}

    @property
    def errors(self) -> dict[tuple[int, int], Exception]:
        """The cells that failed, and why."""
        return {key: cell.error for key, cell in self.grid.items() if cell.error is not None}

    def save(self, path: str | os.PathLike[str], dpi: int = 150) -> Path:
        """Write the figure as PNG or PDF (by extension)."""
        return save_figure(self.figure, path, dpi=dpi)

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()


def _label(name: str, value: Any) -> str:
    return f"{name}={value}"


def _matrix_layout(
    prompts: list[str], over: Mapping[str, Sequence[Any]]
) -> tuple[list[tuple[str, dict[str, Any], str]], list[tuple[dict[str, Any], str]]]:
    """Rows as (prompt, params, label) and columns as (params, label)."""
    names = list(over)
    *first, last = names
    columns = [({last: value}, _label(last, value)) for value in over[last]]
    if not first:
        return [(prompt, {}, prompt) for prompt in prompts], columns
    rows = []
    for prompt, value in itertools.product(prompts, over[first[0]]):
        label = _label(first[0], value)
        rows.append((prompt, {first[0]: value}, label if len(prompts) == 1 else f"{prompt}\n{label}"))
    return rows, columns


def _check_matrix(prompts: list[str], over: Mapping[str, Sequence[Any]], base: Mapping[str, Any]) -> None:
    if not prompts or not all(isinstance(p, str) and p.strip() for p in prompts):
        raise ValueError("prompt_matrix() needs at least one prompt, and no empty prompts.")
    if len(over) not in (1, 2):
        raise ValueError(
            f"`over` names one or two parameters to vary (e.g. {{'model': [...]}}), got {len(over)}."
        )
    for name, values in over.items():
        if not values:
            raise ValueError(f"Give a list of values for {name!r}, e.g. {{{name!r}: [value1, value2]}}.")
    clashes = {"prompt", "n"} & (set(over) | set(base))
    if clashes:
        raise ValueError(
            f"{', '.join(sorted(clashes))} cannot be set in `over` or `base`: pass prompts and n as arguments."
        )


def prompt_matrix(
    prompts: str | Sequence[str],
    over: Mapping[str, Sequence[Any]],
    backend: Backend | None = None,
    *,
    n: int = 1,
    base: Mapping[str, Any] | None = None,
    gallery: Gallery | None = None,
    max_workers: int = 4,
    on_result: Callable[[MatrixCell], None] | None = None,
) -> MatrixResult:
    """Run every (prompt, parameter values) cell on ``backend`` and lay the results out as a grid.

    ``over`` names one parameter (rows = prompts, columns = its values) or two (rows = the first
    parameter's values, for each prompt; columns = the second's). ``base`` holds the other request
    parameters. Cells run in parallel, at most ``max_workers`` at a time; each result is saved to
    ``gallery`` as it comes, and ``on_result(cell)`` is called in this thread as each cell finishes.
    A failed cell shows its error in the figure; the other cells are not affected. Without a
    ``backend``, the default one (see :func:`ipyimagegen.default_backend`).
    """
    if backend is None:
        from .backend_choice import default_backend

        backend = default_backend()
    prompt_list = [prompts] if isinstance(prompts, str) else list(prompts)
    base = dict(base or {})
    over = {
        name: [values] if isinstance(values, (str, bytes)) else list(values) for name, values in over.items()
    }
    _check_matrix(prompt_list, over, base)
    rows, columns = _matrix_layout(prompt_list, over)
    grid = {
        (r, c): MatrixCell(r, c, prompt, {**base, **row_params, **column_params})
        for r, (prompt, row_params, _) in enumerate(rows)
        for c, (column_params, _) in enumerate(columns)
    }
    if "model" not in over and not base.get("model"):  # one model for every cell, so cells compare
        chosen = {backend.choose_model(GENERATIONS, cell.params).model for cell in grid.values()}
        model = chosen.pop() if len(chosen) == 1 else min(chosen - {UNNAMED_MODEL})  # the backend's default
        for cell in grid.values():
            cell.params["model"] = model

    def run(cell: MatrixCell) -> MatrixCell:
        try:
            response = backend.generate(prompt=cell.prompt, n=n, **cell.params)
        except Exception as exc:  # the cell shows it; the other cells go on
            cell.error = exc
            return cell
        cell.images = list(response.data)
        if gallery is not None:
            try:
                cell.saved = gallery.save_response(response)
            except Exception as exc:
                log.exception("could not save a prompt matrix cell to the gallery")
                cell.save_error = exc
        return cell

    executor = ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="prompt-matrix")
    futures: list[Future[MatrixCell]] = [executor.submit(run, cell) for cell in grid.values()]
    try:
        for future in as_completed(futures):
            cell = future.result()
            if on_result is not None:
                try:
                    on_result(cell)
                except Exception:
                    log.exception("the on_result callback of prompt_matrix failed")
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
    row_labels = [label for _, _, label in rows]
    column_labels = [label for _, label in columns]
    title = prompt_list[0] if len(prompt_list) == 1 and len(over) == 2 else None
    figure = _matrix_figure(grid, row_labels, column_labels, title)
    return MatrixResult(figure, row_labels, column_labels, grid)


def _matrix_figure(
    grid: Mapping[tuple[int, int], MatrixCell],
    row_labels: Sequence[str],
    column_labels: Sequence[str],
    title: str | None,
) -> Figure:
    rows, columns = len(row_labels), len(column_labels)
    across = max((len(cell.images) for cell in grid.values()), default=1) or 1  # n images side by side
    cell_width = CELL_INCHES * min(across, 4)
    width = cell_width * columns + 1.6
    height = CELL_INCHES * rows + 0.5 + (0.4 if title else 0.0)
    figure = SheetFigure(figsize=(width, height), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    for (r, c), cell in grid.items():
        ax = axes[r][c]
        _blank(ax)
        if cell.error is not None or not cell.images:
            message = describe_error(cell.error) if cell.error is not None else "No image came back."
            ax.set_facecolor("#fbe9e7")
            ax.text(
                0.5,
                0.5,
                _wrap(message, cell_width, lines=8),
                ha="center",
                va="center",
                fontsize=CAPTION_FONT_SIZE,
                color="#b71c1c",
                transform=ax.transAxes,
            )
        else:
            ax.imshow(np.asarray(_side_by_side([_picture(image) for image in cell.images])))
        if cell.save_error is not None:
            ax.set_xlabel(
                _wrap(f"not saved: {cell.save_error}", cell_width, lines=2), color="#b71c1c", fontsize=7
            )
        if r == 0:
            ax.set_title(_wrap(column_labels[c], cell_width, font_size=9, lines=2), fontsize=9)
        if c == 0:
            ax.set_ylabel(
                _wrap(row_labels[r], 1.4, font_size=9, lines=5),
                fontsize=9,
                rotation=0,
                ha="right",
                va="center",
            )
    if title:
        figure.suptitle(_wrap(title, width, font_size=11, lines=2), fontsize=11)
    return figure
