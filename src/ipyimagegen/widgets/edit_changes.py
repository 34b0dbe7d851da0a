"""Changes made together: the Edit tab sets several controls at once (a new picture, an Extend
click, a draft brought back) and prepares the picture, and keeps the draft, once afterwards."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager


class ChangeBatch:
    """Work asked for through :meth:`run` inside :meth:`batch` waits until the outermost batch
    ends, then runs once, in the order first asked; a batch that fails drops it. Outside a batch,
    work runs at once."""

    def __init__(self) -> None:
        self._depth = 0
        self._pending: dict[Callable[[], None], None] = {}  # a dict keeps the order and each once

    @contextmanager
    def batch(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        except BaseException:
            if self._depth == 1:
                self._pending.clear()
            raise
        finally:
            self._depth -= 1
        if self._depth == 0:
            while self._pending:
                work = next(iter(self._pending))
                del self._pending[work]
                work()

    def run(self, work: Callable[[], None]) -> None:
        """Run ``work`` now, or once at the end of the batch under way."""
        if self._depth:
            self._pending[work] = None
        else:
            work()

    def drop(self, work: Callable[[], None]) -> None:
        """Forget ``work`` asked for in the batch under way (it is done already)."""
        self._pending.pop(work, None)
