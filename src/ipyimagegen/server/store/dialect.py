"""What differs between SQLite and PostgreSQL, said once: how a parameter is marked, a few words and
types, how a database lists a table's columns, and its locks and clock.

Statements are written once, as templates: ``{name}`` marks the parameter ``name`` (passed by keyword),
and an upper-case ``{WORD}`` is one of the dialect's words (``GREATEST``, ``FOR_UPDATE``, and the column
types ``COUNT``, ``REAL``, ``BINARY``). :meth:`Dialect.sql` renders a template for its database (and remembers it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


class _Markers(dict[str, str]):
    """The dialect's words by name; any other (lower-case) name is a parameter, given its marker."""

    def __init__(self, words: Mapping[str, str], marker: str) -> None:
        super().__init__(words)
        self._marker = marker

    def __missing__(self, name: str) -> str:
        if name.isupper():
            raise KeyError(f"{name!r} is not a word of this SQL dialect (it knows {', '.join(self)}).")
        return self._marker.format(name)


@dataclass(frozen=True)
class Dialect:
    """One database's SQL: the few things that differ between SQLite and PostgreSQL."""

    name: str
    marker: str
    """How a named parameter is written, ``{}`` standing for its name."""
    words: Mapping[str, str]
    """The words a template may use as ``{WORD}``: GREATEST, FOR_UPDATE (locking the rows a query reads,
    where the database locks rows), and the column types COUNT (a whole number that may grow past 2³¹),
    REAL (a float: seconds since 1970, dollars) and BINARY (bytes)."""
    columns: str
    """A template of a query of a table's column names (``{table}``), as rows with a ``name``: none when
    the table is absent."""
    migration_lock: str
    """The first statement of a migration: it holds every other opener back until it commits."""
    participant_lock: str | None
    """A lock of ``{key}`` held to the end of the transaction (``{space}`` sets keys apart), or None
    where transactions that write run one at a time anyway."""
    clock: str | None
    """A query of the database's time (as ``now``, Unix seconds), or None to use this machine's."""
    _rendered: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def sql(self, template: str) -> str:
        """``template`` in this dialect (see the module's docstring)."""
        rendered = self._rendered.get(template)
        if rendered is None:
            rendered = self._rendered[template] = template.format_map(_Markers(self.words, self.marker))
        return rendered


SQLITE = Dialect(
    name="sqlite",
    marker=":{}",
    words={"GREATEST": "MAX", "FOR_UPDATE": "", "COUNT": "INTEGER", "REAL": "REAL", "BINARY": "BLOB"},
    columns="SELECT name FROM pragma_table_info({table})",
    migration_lock="BEGIN IMMEDIATE",
    participant_lock=None,  # SQLite writes one transaction at a time
    clock=None,
)

POSTGRES = Dialect(
    name="postgresql",
    marker="%({})s",
    words={
        "GREATEST": "GREATEST",
        "FOR_UPDATE": "FOR UPDATE",
        "COUNT": "BIGINT",
        "REAL": "DOUBLE PRECISION",
        "BINARY": "BYTEA",
    },
    columns=(
        "SELECT column_name AS name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = {table}"
    ),
    migration_lock="SELECT pg_advisory_xact_lock(7240213)",
    participant_lock="SELECT pg_advisory_xact_lock({space}::integer, hashtext({key}))",
    clock="SELECT EXTRACT(EPOCH FROM clock_timestamp())::float8 AS now",
)
