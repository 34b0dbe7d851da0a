"""The server's state store: one schema with numbered migrations (:mod:`.schema`), written once for
SQLite and PostgreSQL (:mod:`.dialect`), in a :class:`Database` that hands out transactions."""

from .connection import Connection
from .database import Database, PostgresDatabase, SqliteDatabase
from .dialect import POSTGRES, SQLITE, Dialect
from .schema import LATEST, MIGRATIONS, migrate

__all__ = [
    "LATEST",
    "MIGRATIONS",
    "POSTGRES",
    "SQLITE",
    "Connection",
    "Database",
    "Dialect",
    "PostgresDatabase",
    "SqliteDatabase",
    "migrate",
]
