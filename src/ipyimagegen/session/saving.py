"""What happens to a response between the backend and its watchers: thumbnails and the gallery.

Runs in the job's worker thread: each thumbnail is handed on as soon as it is made, while the
results are written to disk. Each image is decoded once for its thumbnail.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from functools import cache
from typing import Any

from ..api.types import GeneratedImage, ImagesResponse
from ..errors import ImagesError
from ..gallery import GalleryStore, GalleryWriter
from ..thumbnails import thumbnail_of

log = logging.getLogger(__name__)

OnThumbnail = Callable[[int, GeneratedImage], None]
"""``on_thumbnail(index in the job, image)``: the image's thumbnail is made."""


@cache
def _thumbnail_pool() -> ThreadPoolExecutor:
    """One pool for the whole kernel: the same few threads decode every result (fresh threads per
    result would each leave a malloc arena of decoded pixels behind)."""
    workers = max(1, min(4, os.cpu_count() or 1))
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ipyimagegen-thumbnail")


def make_thumbnails(
    images: Sequence[GeneratedImage], side: int, on_ready: OnThumbnail | None, first: int = 0
) -> list[Future[Any]]:
    """Start making the thumbnails of ``images`` side by side (Pillow decodes outside the GIL);
    ``on_ready(first + index, image)`` runs as each is made.

    The images keep them: the grid shows them and the gallery stores them for the History tab,
    so each image is decoded once.
    """
    pool = _thumbnail_pool()

    def make(index: int, image: GeneratedImage) -> None:
        thumbnail_of(image, side)
        if on_ready is not None:
            try:
                on_ready(first + index, image)
            except Exception:  # the watcher gets the image with the whole response anyway
                log.exception("could not hand on a thumbnail early")

    return [pool.submit(make, index, image) for index, image in enumerate(images)]


def save_to_gallery(
    gallery: GalleryWriter | None,
    response: ImagesResponse,
    parent_id: str | None,
    on_thumbnail: OnThumbnail | None = None,
    thumbnail_side: int = 256,
) -> None:
    """Make the thumbnails and save a response (input images and mask go with it) to the gallery.

    Both run at once: each thumbnail goes to ``on_thumbnail`` as soon as it is made, while the
    files are written and synced. A failure to save is added to ``response.errors``. Each saved
    image gets its gallery id in ``metadata["gallery_id"]``, so an edit or variation made from it
    later records where it came from.
    """
    thumbnails = make_thumbnails(response.data, thumbnail_side, on_thumbnail)
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
    for image, item in zip(response.data, items or (), strict=False):
        item_id = getattr(item, "id", None)
        if isinstance(item_id, str):
            image.metadata["gallery_id"] = item_id
            if isinstance(gallery, GalleryStore):
                gallery.keep_thumbnails(item_id, image)
