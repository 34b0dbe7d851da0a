"""Ask for more images than a model makes per request: split the request and run the parts at once.

``dall-e-3`` makes one image per request; ``run_parallel`` turns ``n=4`` into four requests
sent concurrently and merges their images into one :class:`ImagesResponse`. Images that
were made are never lost because another part failed: the failures ride along in
``response.errors``.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace

from ..errors import CancelledError
from ..models import model_spec
from ..pricing import sum_costs, sum_usage
from .backend import Backend
from .types import CallHooks, GeneratedImage, ImageRequest, ImagesResponse, PartialImage, Progress
from .validation import validate_request

log = logging.getLogger(__name__)

_POLL_S = 0.05  # how often waiting checks the cancel flag


def requests_needed(request: ImageRequest) -> int:
    """How many API requests ``request.n`` images take for its model."""
    return math.ceil(max(request.n, 1) / model_spec(request.model).n_max)


def split_request(request: ImageRequest) -> list[ImageRequest]:
    """The sub-requests that together make ``request.n`` images, each within the model's limit.

    When the request has a seed, each part starts at ``seed + offset`` (offset = the index of
    its first image), so the images match what one big request would have made.
    """
    n_max = model_spec(request.model).n_max
    if request.n <= n_max:
        return [request]
    parts: list[ImageRequest] = []
    for offset in range(0, request.n, n_max):
        seed = None if request.seed is None else request.seed + offset
        parts.append(replace(request, n=min(n_max, request.n - offset), seed=seed))
    return parts


def validate_parallel(request: ImageRequest) -> None:
    """Raise :class:`ValidationError` if ``run_parallel`` could not send ``request``."""
    for part in split_request(request)[:1]:
        validate_request(part)


def run_parallel(
    backend: Backend,
    request: ImageRequest,
    hooks: CallHooks | None = None,
    max_workers: int = 4,
) -> ImagesResponse:
    """Make ``request.n`` images, with concurrent requests where the model's limit is lower.

    Each part gets ``seed + offset`` (from a random base seed when the request has none), so
    deterministic engines make different images. Progress is reported as images done of
    ``n``; partial images keep their place in the merged result, and images go to ``hooks.on_images``
    (at their index in the whole request, each once) as an engine makes them one by one, or else as their
    part arrives. Cancelling (``hooks.cancel``) stops waiting at once and raises
    :class:`CancelledError` with the parts done in ``kept``; parts not sent yet are not sent, and
    parts already sent that still arrive go to ``hooks.on_late``. If some parts fail, the images of the
    others are returned with the failures in ``response.errors``; if all fail, the first
    error is raised.
    """
    hooks = hooks or CallHooks()
    parts = split_request(request)
    progress = _ProgressCounter(hooks, request.n)
    if len(parts) == 1:
        progress.report()
        response = backend.run(request, _part_hooks(hooks, 0, progress, whole=True))
        progress.add(response.data)
        return response
    hooks.check_cancelled()
    if request.seed is None:
        # Engines that honour seeds are deterministic: seedless parts would all make the same
        # image. A random base seed keeps them apart (OpenAI's own API never receives it).
        parts = split_request(replace(request, seed=random.randrange(2**31)))
    started = time.perf_counter()
    offsets = [sum(part.n for part in parts[:i]) for i in range(len(parts))]
    progress.report()

    executor = ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(parts))))
    futures: dict[Future[ImagesResponse], int] = {}
    try:
        for i, part in enumerate(parts):
            part_hooks = _part_hooks(hooks, offsets[i], progress, whole=False)
            futures[executor.submit(backend.run, part, part_hooks)] = i
        results: dict[int, ImagesResponse] = {}
        errors: dict[int, Exception] = {}
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, timeout=_POLL_S, return_when=FIRST_COMPLETED)
            for future in finished:
                index = futures[future]
                try:
                    results[index] = future.result()
                except Exception as exc:
                    log.info("part %d of %d failed: %s", index + 1, len(parts), type(exc).__name__)
                    errors[index] = exc
                else:  # shown as they come (the images its engine handed over one by one are not again)
                    done = results[index]
                    if done.request_id:  # each image keeps its part's (the merged response names the first's)
                        for image in done.data:
                            image.metadata.setdefault("request_id", done.request_id)
                    _hand_over(hooks, offsets[index], done.data, progress)
            if hooks.cancelled:
                raise _cancelled(request, parts, results, errors, started, pending, futures, hooks)
    finally:
        executor.shutdown(wait=False, cancel_futures=True)

    if not results:
        raise errors[min(errors)]
    return _merge(request, parts, results, errors, time.perf_counter() - started)


def _cancelled(
    request: ImageRequest,
    parts: list[ImageRequest],
    results: dict[int, ImagesResponse],
    errors: dict[int, Exception],
    started: float,
    in_flight: set[Future[ImagesResponse]],
    futures: dict[Future[ImagesResponse], int],
    hooks: CallHooks,
) -> CancelledError:
    """The error for a cancel: it keeps the parts that are done; parts not sent yet never will be,
    and those already sent go to ``hooks.on_late`` if they still arrive."""
    on_late = hooks.on_late

    def arrived(future: Future[ImagesResponse]) -> None:
        if future.cancelled() or future.exception() is not None or on_late is None:
            return
        index = futures[future]
        try:
            arrived_part = {index: future.result()}
            on_late(_merge(request, parts, arrived_part, {}, time.perf_counter() - started, renumber=False))
        except Exception:
            log.exception("could not keep a result that arrived after a cancel")

    for future in in_flight:
        future.add_done_callback(arrived)
    elapsed = time.perf_counter() - started
    kept = _merge(request, parts, results, errors, elapsed, renumber=False) if results else None
    return CancelledError(kept=kept)


class _ProgressCounter:
    """Images done of the total, each counted once (alone as its engine made it, or with its part), safe
    to bump from several threads."""

    def __init__(self, hooks: CallHooks, total: int) -> None:
        self._hooks = hooks
        self._total = total
        self._made: dict[int, GeneratedImage] = {}  # by identity; held, so that no id is used twice
        self._lock = threading.Lock()

    def claim(self, image: GeneratedImage) -> bool:
        """Count ``image``: True the first time, False when it was counted already."""
        with self._lock:
            if id(image) in self._made:
                return False
            self._made[id(image)] = image
            return True

    def add(self, images: Sequence[GeneratedImage]) -> None:
        for image in images:
            self.claim(image)
        self.report()

    def report(self) -> None:
        with self._lock:
            done = len(self._made)
        self._hooks.progress(done, self._total, f"{done} of {self._total} images")


def _hand_over(
    hooks: CallHooks, first: int, images: Sequence[GeneratedImage], progress: _ProgressCounter
) -> None:
    """Images ``first``, ``first + 1``... of the whole request to ``hooks.on_images``, each once, then the
    progress: a part's images together, or those of them not handed over before one by one."""
    fresh = [progress.claim(image) for image in images]
    if all(fresh):
        hooks.images(first, list(images))
    else:
        for position, image in enumerate(images):
            if fresh[position]:
                hooks.images(first + position, [image])
    progress.report()


def _part_hooks(hooks: CallHooks, offset: int, progress: _ProgressCounter, whole: bool) -> CallHooks:
    """Hooks for one part: partial images and images made one by one moved to their merged index; the
    cancel flag only when the part is the whole call (a part already sent finishes, as it is paid for:
    see ``on_late``).

    Progress is counted in finished images of the whole request, so a part's own steps are
    not passed on; its messages alone (a total of 0: what it waits for) are.
    """

    def on_partial(partial: PartialImage) -> None:
        hooks.partial(replace(partial, index=partial.index + offset))

    def on_progress(progress: Progress) -> None:
        if progress.total == 0:
            hooks.progress(0, 0, progress.message)

    def on_images(first: int, images: list[GeneratedImage]) -> None:
        _hand_over(hooks, offset + first, images, progress)

    listening = hooks.on_images is not None or hooks.on_progress is not None
    return CallHooks(
        on_partial=on_partial if hooks.on_partial is not None else None,
        on_progress=on_progress if hooks.on_progress is not None else None,
        on_images=on_images if listening else None,
        cancel=hooks.cancel if whole else None,
        timeout=hooks.timeout,
    )


def _merge(
    request: ImageRequest,
    parts: list[ImageRequest],
    results: dict[int, ImagesResponse],
    errors: dict[int, Exception],
    elapsed_s: float,
    renumber: bool = True,
) -> ImagesResponse:
    """One response of the parts' images: numbered in order (``renumber``), or each at its place in the
    whole request (for the images a cancel keeps, whose neighbours never came)."""
    images: list[GeneratedImage] = []
    for index in sorted(results):
        offset = sum(part.n for part in parts[:index])
        for position, image in enumerate(results[index].data):
            image.index = offset + position
        images.extend(results[index].data)
    if renumber:
        for new_index, image in enumerate(images):
            image.index = new_index
    first = results[min(results)]
    return ImagesResponse(
        data=images,
        created=first.created,
        request=request,
        backend=first.backend,
        model=first.model or request.model,
        elapsed_s=elapsed_s,
        request_id=first.request_id,
        usage=sum_usage([r.usage for r in results.values()]),
        cost=sum_costs([r.cost for r in results.values()]),
        errors=[errors[i] for i in sorted(errors)],
    )


__all__ = ["requests_needed", "run_parallel", "split_request", "validate_parallel"]
