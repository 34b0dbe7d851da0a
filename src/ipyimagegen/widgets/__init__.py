"""The Jupyter widgets: the studio and the parts it is made of.

Widgets hold no business logic: they read state from traitlets and call a Backend in a
worker thread (:class:`JobRunner`), so the kernel stays responsive.
"""

from ..session import Job, JobRunner
from .edit_tab import EditTab
from .generate_tab import GenerateTab
from .history import HistoryBrowser
from .job_controls import JobControls
from .mask_painter import MaskPainter
from .params_panel import ParamsPanel
from .prompt_box import PromptBox
from .result_grid import ResultBatch, ResultGrid, ResultTile
from .studio import Studio, studio
from .variations_tab import VariationsTab

__all__ = [
    "EditTab",
    "GenerateTab",
    "HistoryBrowser",
    "Job",
    "JobControls",
    "JobRunner",
    "MaskPainter",
    "ParamsPanel",
    "PromptBox",
    "ResultBatch",
    "ResultGrid",
    "ResultTile",
    "Studio",
    "VariationsTab",
    "studio",
]
