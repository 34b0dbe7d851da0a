"""The state's one schema, as numbered migrations, and :func:`migrate`, which brings a database up to
the newest: each migration runs once, in order, and the ``schema_version`` table records which have.

The statements are templates of :mod:`.dialect` (``{COUNT}``, ``{REAL}`` and ``{BINARY}`` are column types).
"""

from __future__ import annotations

import time

from .connection import Connection

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: participant tokens, stored as hashes
        "CREATE TABLE tokens (id TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, "
        "budget {COUNT}, rate TEXT, admin INTEGER NOT NULL DEFAULT 0, created {REAL} NOT NULL, revoked {REAL}, "
        "requests {COUNT} NOT NULL DEFAULT 0, images {COUNT} NOT NULL DEFAULT 0, "
        "errors {COUNT} NOT NULL DEFAULT 0, rejected {COUNT} NOT NULL DEFAULT 0, last_used {REAL})",
        "CREATE UNIQUE INDEX active_token_names ON tokens(name) WHERE revoked IS NULL",
    ),
    ("ALTER TABLE tokens ADD COLUMN expires {REAL}",),  # 2: tokens that expire
    (  # 3: budgets in dollars, and the whole workshop's budget
        "ALTER TABLE tokens ADD COLUMN budget_usd {REAL}",
        "ALTER TABLE tokens ADD COLUMN spent_usd {REAL} NOT NULL DEFAULT 0",
        "CREATE TABLE workshop (id INTEGER PRIMARY KEY CHECK (id = 1), budget_images {COUNT}, "
        "budget_usd {REAL}, images {COUNT} NOT NULL DEFAULT 0, spent_usd {REAL} NOT NULL DEFAULT 0)",
        "INSERT INTO workshop (id) VALUES (1)",
    ),
    ("ALTER TABLE workshop ADD COLUMN paused INTEGER NOT NULL DEFAULT 0",),  # 4: the pause switch
    (  # 5: rate windows in the database (databases made before versions were recorded may have it)
        "CREATE TABLE IF NOT EXISTS rate_windows (token_id TEXT PRIMARY KEY, level {REAL} NOT NULL, "
        "at {REAL} NOT NULL)",
    ),
    (  # 6: the class wall (likewise)
        "CREATE TABLE IF NOT EXISTS wall (id TEXT PRIMARY KEY, token_id TEXT NOT NULL, name TEXT NOT NULL, "
        "prompt TEXT NOT NULL, created {REAL} NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL, "
        "mime TEXT NOT NULL, picture {BINARY} NOT NULL)",
        "CREATE INDEX IF NOT EXISTS wall_by_time ON wall (created)",
    ),
    (  # 7: a room of servers: who is alive, what each has reserved, and the one pace they share
        "CREATE TABLE replicas (name TEXT PRIMARY KEY, incarnation TEXT NOT NULL, started {REAL} NOT NULL, "
        "seen {REAL} NOT NULL, running INTEGER NOT NULL DEFAULT 0, waiting INTEGER NOT NULL DEFAULT 0, "
        "lines INTEGER NOT NULL DEFAULT 0, wants_at {REAL}, owed {REAL} NOT NULL DEFAULT 0)",
        "CREATE TABLE leases (id TEXT PRIMARY KEY, token_id TEXT NOT NULL, replica TEXT NOT NULL, "
        "incarnation TEXT NOT NULL, images {COUNT} NOT NULL, usd {REAL} NOT NULL, created {REAL} NOT NULL)",
        "CREATE INDEX leases_by_replica ON leases (replica)",
        "CREATE TABLE pace (id INTEGER PRIMARY KEY CHECK (id = 1), rate TEXT, level {REAL}, "
        "filled_at {REAL}, paused_until {REAL}, cut_to {REAL} NOT NULL DEFAULT 1, cut_at {REAL})",
        "INSERT INTO pace (id) VALUES (1)",
    ),
)
"""Migration N is ``MIGRATIONS[N - 1]``. New ones go at the end; one that has shipped never changes."""

LATEST = len(MIGRATIONS)


def migrate(db: Connection) -> int:
    """Run the migrations ``db`` lacks, in its transaction, after the dialect's migration lock (so
    that servers starting at once migrate one after the other); returns the version it was at."""
    db.execute(db.dialect.migration_lock)
    if db.columns("schema_version"):
        found = int(
            db.execute("SELECT MAX(version) AS version FROM schema_version").fetchone()["version"] or 0
        )
    else:
        db.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied {REAL} NOT NULL)")
        found = version_before_records(db)
        for number in range(1, found + 1):
            _record(db, number)
    for number in range(found + 1, LATEST + 1):
        for statement in MIGRATIONS[number - 1]:
            db.execute(statement)
        _record(db, number)
    return found


def version_before_records(db: Connection) -> int:
    """How far a database made before versions were recorded got, read from its columns (its
    rate_windows and wall tables may be there or not: the migrations that make them take either)."""
    tokens = db.columns("tokens")
    if not tokens:
        return 0
    if "expires" not in tokens:
        return 1
    if "budget_usd" not in tokens:
        return 2
    return 4 if "paused" in db.columns("workshop") else 3


def _record(db: Connection, number: int) -> None:
    db.execute(
        "INSERT INTO schema_version (version, applied) VALUES ({version}, {applied})",
        version=number,
        applied=time.time(),
    )
