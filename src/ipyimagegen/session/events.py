"""What a session tells its subscribers about a job, one dataclass per kind of news.

Events come from the job's worker thread (thumbnails from the thumbnail threads; a cancel from the
thread that cancels). For one job they come in this order: :class:`JobStarted`; any
:class:`PartialArrived`, :class:`ThumbnailReady` and :class:`ImageSaved` (each image an engine makes
one by one, or each part of a parallel call, saved as it arrives); then one ending —
:class:`ResultsReady` (every result saved to the gallery first), :class:`JobFailed`, or
:class:`JobCancelled` followed by :class:`JobKept` when some images were done; after a cancel,
:class:`LateArrived` for each part that was already sent and arrives anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..api.types import GeneratedImage, ImageRequest, ImagesResponse, PartialImage

if TYPE_CHECKING:
    from .runner import Job


@dataclass(frozen=True)
class JobEvent:
    """Something happened to ``job``."""

    job: Job


@dataclass(frozen=True)
class JobStarted(JobEvent):
    """The worker thread sends ``request``."""

    request: ImageRequest


@dataclass(frozen=True)
class PartialArrived(JobEvent):
    """A streamed preview of one image."""

    partial: PartialImage


@dataclass(frozen=True)
class ThumbnailReady(JobEvent):
    """Image ``index`` of the job is made and its thumbnail too (it may not be on disk yet)."""

    index: int
    image: GeneratedImage


@dataclass(frozen=True)
class ImageSaved(JobEvent):
    """Image ``index`` of the job arrived before the job is done and is saved to the gallery (where there
    is one; a failure to save is in the ending's errors): it can be shown, with its actions, at once.
    The ending (:class:`ResultsReady`, :class:`JobKept`) holds it again; it is saved once."""

    index: int
    image: GeneratedImage


@dataclass(frozen=True)
class ResultsReady(JobEvent):
    """The job is done: its images are saved (failures to save are in ``response.errors``) and their
    estimated cost (``response.cost``) is counted in the session's spending."""

    response: ImagesResponse


@dataclass(frozen=True)
class JobFailed(JobEvent):
    """The job ended with ``error`` and made nothing (a job that fails after some of its images were
    saved ends with :class:`ResultsReady`: those images, and the error in ``response.errors``)."""

    error: BaseException


@dataclass(frozen=True)
class JobCancelled(JobEvent):
    """The job was cancelled: the session is idle again at once."""


@dataclass(frozen=True)
class JobKept(JobEvent):
    """After a cancel, the images already done are saved (they are paid for): those told before the cancel
    (:class:`ImageSaved`) and the parts of a parallel call that were done. Nothing of the job is told
    after it but :class:`LateArrived`."""

    kept: ImagesResponse

    @property
    def asked(self) -> int:
        """How many images the job asked for."""
        return self.kept.request.n if self.kept.request is not None else len(self.kept.data)


@dataclass(frozen=True)
class LateArrived(JobEvent):
    """A part sent before a cancel arrived anyway and went to the gallery (``saved``) if there is one."""

    response: ImagesResponse
    saved: bool
