"""The estimated cost of a session's results."""

from __future__ import annotations

from ..api.types import ImagesResponse
from ..pricing import format_usd


class Spending:
    """What a session's results cost, estimated from the catalogue's prices (sessions may share one)."""

    def __init__(self) -> None:
        self.usd = 0.0
        self.would_cost_usd = 0.0  # what the offline engine's results would cost on OpenAI
        self.prices_read = ""

    def add(self, response: ImagesResponse) -> None:
        """Count a response's estimated cost (a response without one adds nothing)."""
        cost = response.cost
        if cost is None:
            return
        self.prices_read = cost.prices_read
        if cost.billed:
            self.usd += cost.usd
        else:
            self.would_cost_usd += cost.usd

    def words(self, response: ImagesResponse) -> str:
        """A counted response's cost for a status line, with the total so far when there were others
        (empty when nothing is priced)."""
        cost = response.cost
        if cost is None:
            return ""
        total = f"; this session {format_usd(self.usd)}" if cost.billed and self.usd > cost.usd else ""
        return f" · {cost.label()}{total} (estimate, prices of {cost.prices_read})"
