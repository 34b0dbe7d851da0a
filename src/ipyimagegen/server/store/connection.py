"""One transaction's connection, taking the statement templates of :mod:`.dialect`."""

from __future__ import annotations

import time
from typing import Any

from .dialect import Dialect

PARTICIPANT_LOCKS = 7240214
"""The first key of the locks that take one participant's writes one at a time (see :meth:`Connection.hold`)."""


class Connection:
    """A DB-API connection in one transaction, with the statements written once for every dialect."""

    def __init__(self, connection: Any, dialect: Dialect) -> None:
        self._connection = connection
        self.dialect = dialect

    def execute(self, template: str, **params: Any) -> Any:
        """Run one statement (``{name}`` marks the parameter ``name``); returns the DB-API cursor."""
        return self._connection.execute(self.dialect.sql(template), params)

    def columns(self, table: str) -> set[str]:
        """The column names of ``table`` (none when it is absent)."""
        return {row["name"] for row in self.execute(self.dialect.columns, table=table)}

    def now(self) -> float:
        """Unix seconds by the database's clock where it has one that every server shares, else this machine's."""
        if self.dialect.clock is None:
            return time.time()
        return float(self.execute(self.dialect.clock).fetchone()["now"])

    def hold(self, key: str) -> None:
        """Hold ``key``'s lock until the transaction ends, so that writes under one key (two servers'
        too) run one after the other. Where the database writes one transaction at a time, nothing to do."""
        if self.dialect.participant_lock is not None:
            self.execute(self.dialect.participant_lock, space=PARTICIPANT_LOCKS, key=key)
