"""The databases the server's state lives in: a SQLite file (one server and the CLI) or PostgreSQL
(several servers at once). Both hand out :class:`Connection` s for one transaction, and bring their
schema up to date when opened (:func:`.schema.migrate`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from pathlib import Path
from typing import Any

from ..database_address import hide_in_logs, shown, split_secrets, without_password
from .connection import Connection
from .dialect import POSTGRES, SQLITE
from .schema import migrate


class Database:
    """Where the state is kept: transactions on it, and what sets it apart."""

    duplicate: tuple[type[BaseException], ...] = ()
    """The error of a row that would break a unique rule (a second active token of one name)."""
    shared = False
    """Whether servers on other machines share it (and so take their rate windows from it)."""

    def transaction(self) -> AbstractContextManager[Connection]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        raise NotImplementedError

    def close(self) -> None:
        """Let go of the database's connections."""


class SqliteDatabase(Database):
    """A SQLite file, made (readable by its owner only) and brought up to date when opened; it holds
    nothing open between transactions, so the CLI and a running server can share it."""

    duplicate = (sqlite3.IntegrityError,)

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        is_new = not self.path.exists()
        with self.transaction() as db:
            migrate(db)
        if is_new:
            self.path.chmod(0o600)  # token hashes and usage: for the host's eyes only

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with closing(sqlite3.connect(self.path, timeout=10.0)) as connection:
            connection.row_factory = sqlite3.Row
            with connection:
                yield Connection(connection, SQLITE)

    def __repr__(self) -> str:
        return f"SqliteDatabase({str(self.path)!r})"


class PostgresDatabase(Database):
    """A PostgreSQL database, through a pool of connections (the ``postgres`` extra: psycopg and its
    pool). ``url`` is an address as libpq takes it; its password is passed apart and never shown."""

    shared = True

    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        try:
            import psycopg
            from psycopg.rows import dict_row
            from psycopg_pool import ConnectionPool
        except ImportError:
            raise RuntimeError(
                "A PostgreSQL database needs the postgres extra: pip install 'ipyimagegen[postgres]'."
            ) from None
        address, secrets = split_secrets(url)  # the password goes to libpq as a setting of its own
        hide_in_logs(secrets.values())
        self.url = shown(url)
        self.duplicate = (psycopg.errors.UniqueViolation,)
        settings: dict[str, Any] = {} if "connect_timeout" in address else {"connect_timeout": 10}
        settings.update(secrets)
        settings["row_factory"] = dict_row
        with psycopg.connect(address, **settings) as first:  # a wrong address fails now, saying why
            migrate(Connection(first, POSTGRES))
        self._pool = ConnectionPool(
            address, min_size=1, max_size=pool_size, kwargs=settings, open=True, timeout=30.0
        )

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self._pool.connection() as connection:  # committed, or rolled back on error
            yield Connection(connection, POSTGRES)

    def close(self) -> None:
        self._pool.close()

    def __repr__(self) -> str:
        return f"PostgresDatabase({without_password(self.url)!r})"
