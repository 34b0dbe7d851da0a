"""What happens to a response between the backend and the grid: thumbnails, the gallery, the summary.

Runs in the worker thread for every tab (Generate, Edit, Variations): each thumbnail is shown as
soon as it is made, while the results are written to disk; a tile's actions come once its result
is on disk. Each image is decoded once for its thumbnail.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from functools import cache
from typing import Any

from ..api.errors import ImagesError, describe_error
from ..api.types import GeneratedImage, ImagesResponse
from ..gallery import GalleryLike
from ..pricing import format_usd
from ..thumbnails import thumbnail_of
from .job_controls import JobControls
from .style import THUMBNAIL_SIDE

log = logging.getLogger(__name__)


@cache
def _thumbnail_pool() -> ThreadPoolExecutor:
    """One pool for the whole kernel: the same few threads decode every result (fresh threads per
    result would each leave a malloc arena of decoded pixels behind)."""
    workers = max(1, min(4, os.cpu_count() or 1))
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ipyimagegen-thumbnail")


def _thumbnails_in_background(
    images: Sequence[GeneratedImage], on_ready: Callable[[int, GeneratedImage], None] | None
) -> list[Future[Any]]:
    """Start making the grid's thumbnails of ``images``, side by side (Pillow decodes outside the GIL);
    ``on_ready(index, image)`` runs as each is made, so its tile can show it at once.

    The images keep them: the grid shows them and the gallery stores them for the History tab,
    so each image is decoded once.
    """
    pool = _thumbnail_pool()

    def make(index: int, image: GeneratedImage) -> None:
        thumbnail_of(image, THUMBNAIL_SIDE)
        if on_ready is not None:
            try:
                on_ready(index, image)
            except Exception:  # the tile shows it when the batch is filled anyway
                log.exception("could not show a thumbnail early")

    return [pool.submit(make, index, image) for index, image in enumerate(images)]


def show_as_they_come(
    first: int, images: Sequence[GeneratedImage], on_ready: Callable[[int, GeneratedImage], None]
) -> None:
    """Make the thumbnails of images that arrived before the rest of their job (a part of a
    parallel call) and hand each to ``on_ready(index in the job, image)`` when it is made."""
    _thumbnails_in_background(images, lambda index, image: on_ready(first + index, image))


def save_to_gallery(
    gallery: GalleryLike | None,
    response: ImagesResponse,
    parent_id: str | None,
    on_thumbnail: Callable[[int, GeneratedImage], None] | None = None,
) -> None:
    """Make the thumbnails and save a response (input images and mask go with it) to the gallery.

    Both run at once: each thumbnail goes to ``on_thumbnail`` as soon as it is made, while the
    files are written and synced. A failure to save is added to ``response.errors``. Each saved
    image gets its gallery id in ``metadata["gallery_id"]``, so an edit or variation made from it
    later records where it came from.
    """
    thumbnails = _thumbnails_in_background(response.data, on_thumbnail)
    try:
        items = [] if gallery is None else gallery.save_response(response, parent_id=parent_id)
    except Exception as exc:
        log.exception("could not save the results to the gallery")
        response.errors.append(
            ImagesError(
                f"The images could not be saved to the gallery ({type(exc).__name__}: {exc}).",
                hint="They are shown below: use Save on a tile to keep one.",
            )
        )
        items = []
    finally:
        wait(thumbnails)
    keep_thumbnails = getattr(gallery, "keep_thumbnails", None)
    for image, item in zip(response.data, items or (), strict=False):
        item_id = getattr(item, "id", None)
        if isinstance(item_id, str):
            image.metadata["gallery_id"] = item_id
            if callable(keep_thumbnails):
                keep_thumbnails(item_id, image)


class Spending:
    """The estimated cost of a studio session's results (shared by its tabs)."""

    def __init__(self) -> None:
        self.usd = 0.0
        self.would_cost_usd = 0.0  # what the offline engine's results would cost on OpenAI
        self.prices_read = ""

    def add(self, response: ImagesResponse) -> str:
        """Count a response; returns the words for the status line (empty when nothing is priced)."""
        cost = response.cost
        if cost is None:
            return ""
        self.prices_read = cost.prices_read
        if cost.billed:
            self.usd += cost.usd
            total = f"; this session {format_usd(self.usd)}" if self.usd > cost.usd else ""
        else:
            self.would_cost_usd += cost.usd
            total = ""
        return f" · {cost.label()}{total} (estimate, prices of {cost.prices_read})"


def show_summary(
    controls: JobControls, response: ImagesResponse, prefix: str = "", spending: Spending | None = None
) -> None:
    """``2 images in 0.3 s · ≈ $0.08 (estimate…).`` in the status line, or what went wrong with some of them."""
    made = len(response.data)
    summary = f"{prefix}{made} image{'s' if made != 1 else ''} in {response.elapsed_s:.1f} s"
    if spending is not None:
        summary += spending.add(response)
    if response.errors:
        first = response.errors[0]
        others = f" (and {len(response.errors) - 1} more)" if len(response.errors) > 1 else ""
        controls.show_status(f"{summary}. Not everything worked{others}: {describe_error(first)}", "warning")
    else:
        controls.show_status(summary + ".", "warning" if prefix else "ok")
