"""The studio's budget line on a workshop server: "7 images and $0.42 left on 127.0.0.1:8000".

What the participant's token has left is read from the backend (a
:class:`~ipyimagegen.api.backend.WorkshopBudget`) in a worker thread when the line is made and after
each run; the line is hidden where the backend keeps no budget for the caller. Before a run,
:meth:`BudgetLine.fit` lowers the request's ``n`` to what is left, with a note that says so.
"""

from __future__ import annotations

import html
import itertools
import logging
import threading
from typing import Any

import ipywidgets as widgets

from ..api.backend import Backend, WorkshopBudget
from ..api.budget import Request, TokenBudget, fit_to_budget
from ..errors import ImagesError, describe_error
from ..session import JobRunner

log = logging.getLogger(__name__)

TITLE = "Estimated from the catalogue's prices, as the workshop server counts them."


class BudgetLine(widgets.HTML):
    """One line: what the token has left on the workshop server, read again after each job on ``runner``.

    ``budget`` is the last answer (None until one came, or where no budget is kept).
    """

    def __init__(self, backend: Backend, runner: JobRunner) -> None:
        super().__init__(layout=widgets.Layout(display="none"))
        self.add_class("ipyimagegen-budget")
        self.backend = backend
        self.runner = runner
        self.budget: TokenBudget | None = None
        self._asked = itertools.count(1)
        self._shown = 0  # the number of the read whose answer is shown: a late older one is dropped
        self._lock = threading.Lock()
        runner.observe(self._runner_changed, "busy")
        self.refresh()

    def refresh(self) -> threading.Thread:
        """Ask what is left again, in a worker thread (returned); the line shows the answer when it comes.
        A read that fails leaves the line as it was."""
        number = next(self._asked)
        worker = threading.Thread(target=self._read, args=(number,), name="ipyimagegen-budget", daemon=True)
        worker.start()
        return worker

    def fit(self, request: Request, notice: str = "") -> tuple[Request, str]:
        """``request`` with ``n`` lowered to what is left, and ``notice`` after a note that says so
        ("Asked 4, 1 left: making 1. "); a :class:`~ipyimagegen.errors.WorkshopBudgetError` that names
        the budget and the host when nothing is left (nothing is sent)."""
        fitted, note = fit_to_budget(request, self.budget)
        return fitted, note + notice

    def close(self) -> None:
        """Stop following the runner (once: a widget may be closed again when it is collected)."""
        if not getattr(self, "_closed", False):
            self._closed = True
            self.runner.unobserve(self._runner_changed, "busy")
        super().close()

    def _runner_changed(self, change: dict[str, Any]) -> None:
        if not change["new"]:  # a job ended: its images are counted now
            self.refresh()

    def _read(self, number: int) -> None:
        backend = self.backend
        try:
            budget = backend.budget_left() if isinstance(backend, WorkshopBudget) else None
        except ImagesError as exc:
            log.info("could not read what the workshop token has left: %s", describe_error(exc))
            return
        except Exception:
            log.exception("unexpected error while reading what the workshop token has left")
            return
        with self._lock:
            if number < self._shown:
                return
            self._shown = number
            self._show(budget)

    def _show(self, budget: TokenBudget | None) -> None:
        self.budget = budget
        if budget is None or not budget.limited:
            self.layout.display = "none"
            self.value = ""
            return
        kind = "warning" if budget.refusal() is not None else "info"
        text = html.escape(budget.line())
        self.layout.display = None
        self.value = f'<span class="ipyimagegen-{kind}" title="{html.escape(TITLE)}">{text}</span>'
