"""The session layer: jobs over a backend and a gallery, told as typed events; no widgets here.

A script can run and watch jobs on its own::

    session = Session(PreviewEngine(), Gallery("my-gallery"))
    session.subscribe(print)
    session.submit(GenerateRequest(prompt="a lighthouse at dusk", n=2))
    session.wait()

The studio's tabs subscribe to the same events to show tiles and status lines.
"""

from .core import Session, Subscriber
from .events import (
    ImageSaved,
    JobCancelled,
    JobEvent,
    JobFailed,
    JobKept,
    JobStarted,
    LateArrived,
    PartialArrived,
    ResultsReady,
    ThumbnailReady,
)
from .runner import Job, JobRunner, JobState, release_free_memory
from .saving import save_to_gallery
from .spending import Spending

__all__ = [
    "ImageSaved",
    "Job",
    "JobCancelled",
    "JobEvent",
    "JobFailed",
    "JobKept",
    "JobRunner",
    "JobStarted",
    "JobState",
    "LateArrived",
    "PartialArrived",
    "ResultsReady",
    "Session",
    "Spending",
    "Subscriber",
    "ThumbnailReady",
    "release_free_memory",
    "save_to_gallery",
]
