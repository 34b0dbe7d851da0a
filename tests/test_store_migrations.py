"""The state store's one schema: databases made by earlier releases (SQLite files at each stage, a
PostgreSQL database) open, migrate once and keep their records; statements are written once for both."""

from __future__ import annotations

import concurrent.futures
import io
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from ipyimagegen.server.store import LATEST, MIGRATIONS, POSTGRES, SQLITE, PostgresDatabase, SqliteDatabase
from ipyimagegen.server.tokens import PostgresTokenStore, Refusal, TokenStore
from ipyimagegen.server.wall import WallStore
from postgres_helpers import Cluster, postgres_cluster

# The SQL earlier releases ran, before versions were recorded.
_FIRST_TOKENS = (
    "CREATE TABLE IF NOT EXISTS tokens (id TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, "
    "budget INTEGER, rate TEXT, admin INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL, revoked REAL, "
    "requests INTEGER NOT NULL DEFAULT 0, images INTEGER NOT NULL DEFAULT 0, errors INTEGER NOT NULL DEFAULT 0, "
    "rejected INTEGER NOT NULL DEFAULT 0, last_used REAL{more});"
    "CREATE UNIQUE INDEX IF NOT EXISTS active_token_names ON tokens(name) WHERE revoked IS NULL;"
)
_WORKSHOP = (
    "CREATE TABLE IF NOT EXISTS workshop (id INTEGER PRIMARY KEY CHECK (id = 1), budget_images INTEGER, "
    "budget_usd REAL, images INTEGER NOT NULL DEFAULT 0, spent_usd REAL NOT NULL DEFAULT 0{more});"
    "INSERT OR IGNORE INTO workshop (id) VALUES (1);"
)
_USD = ", expires REAL, budget_usd REAL, spent_usd REAL NOT NULL DEFAULT 0"
_SQLITE_WALL = (
    "CREATE TABLE IF NOT EXISTS wall (id TEXT PRIMARY KEY, token_id TEXT NOT NULL, name TEXT NOT NULL, "
    "prompt TEXT NOT NULL, created REAL NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL, "
    "mime TEXT NOT NULL, picture BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS wall_by_time ON wall (created);"
)
OLD_SQLITE_FILES = {
    1: _FIRST_TOKENS.format(more=""),
    2: _FIRST_TOKENS.format(more=", expires REAL"),
    3: _FIRST_TOKENS.format(more=_USD) + _WORKSHOP.format(more=""),
    4: _FIRST_TOKENS.format(more=_USD)
    + _WORKSHOP.format(more=", paused INTEGER NOT NULL DEFAULT 0")
    + _SQLITE_WALL,
}
OLD_POSTGRES = """
CREATE TABLE IF NOT EXISTS tokens (id TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE,
    budget BIGINT, rate TEXT, admin INTEGER NOT NULL DEFAULT 0, created DOUBLE PRECISION NOT NULL,
    revoked DOUBLE PRECISION, requests BIGINT NOT NULL DEFAULT 0, images BIGINT NOT NULL DEFAULT 0,
    errors BIGINT NOT NULL DEFAULT 0, rejected BIGINT NOT NULL DEFAULT 0, last_used DOUBLE PRECISION,
    expires DOUBLE PRECISION, budget_usd DOUBLE PRECISION, spent_usd DOUBLE PRECISION NOT NULL DEFAULT 0);
CREATE UNIQUE INDEX IF NOT EXISTS active_token_names ON tokens(name) WHERE revoked IS NULL;
CREATE TABLE IF NOT EXISTS workshop (id INTEGER PRIMARY KEY CHECK (id = 1), budget_images BIGINT,
    budget_usd DOUBLE PRECISION, images BIGINT NOT NULL DEFAULT 0, spent_usd DOUBLE PRECISION NOT NULL DEFAULT 0);
INSERT INTO workshop (id) VALUES (1) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS rate_windows (token_id TEXT PRIMARY KEY, level DOUBLE PRECISION NOT NULL,
    at DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS wall (id TEXT PRIMARY KEY, token_id TEXT NOT NULL, name TEXT NOT NULL,
    prompt TEXT NOT NULL, created DOUBLE PRECISION NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,
    mime TEXT NOT NULL, picture BYTEA NOT NULL);
CREATE INDEX IF NOT EXISTS wall_by_time ON wall (created);
INSERT INTO tokens (id, name, hash, budget, created) VALUES ('tok_old', 'old', 'abc', 4, 1.0);
UPDATE workshop SET budget_images = 9, images = 2;
"""


def _picture() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (48, 32), (20, 120, 200)).save(out, "PNG")
    return out.getvalue()


def _versions(path: Path) -> list[int]:
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute("SELECT version FROM schema_version ORDER BY version")]


def _columns(path: Path, table: str) -> list[tuple[str, str, int, object]]:
    with sqlite3.connect(path) as db:
        return [(r[1], r[2], r[3], r[4]) for r in db.execute(f"PRAGMA table_info({table})")]


@pytest.mark.parametrize("version", sorted(OLD_SQLITE_FILES))
def test_a_sqlite_file_of_an_earlier_release_opens_migrated_with_its_records(tmp_path, version: int) -> None:
    path = tmp_path / "tokens.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SQLITE_FILES[version])
        db.execute(
            "INSERT INTO tokens (id, name, hash, budget, created) VALUES ('tok_old', 'old', 'abc', 4, 1.0)"
        )
    store = TokenStore(path)
    assert _versions(path) == list(range(1, LATEST + 1))
    (old,) = store.tokens()
    assert (old.id, old.name, old.budget, old.images, old.expires, old.spent_usd) == (
        "tok_old",
        "old",
        4,
        0,
        None,
        0.0,
    )
    store.reserve("tok_old", 3, 0.5)  # every column the store writes is there
    with pytest.raises(Refusal) as refused:
        store.reserve("tok_old", 2)
    assert refused.value.what == "images" and store.get("old").rejected == 1
    assert store.set_paused(True).paused and store.workshop().images == 3
    WallStore(store).add(old, "a lake", _picture(), "image/png")
    assert [post.name for post in WallStore(store).posts()] == ["old"]
    fresh = tmp_path / "fresh.sqlite3"
    TokenStore(fresh)
    for table in ("tokens", "workshop", "wall", "rate_windows", "schema_version"):
        assert sorted(_columns(path, table)) == sorted(_columns(fresh, table)), table


def test_a_migration_runs_once_and_a_newer_store_opens_without_change(tmp_path) -> None:
    path = tmp_path / "tokens.sqlite3"
    first = TokenStore(path)
    _token, info = first.create("ann", budget=2)
    TokenStore(path)
    TokenStore(path)
    assert _versions(path) == list(range(1, LATEST + 1)) and len(MIGRATIONS) == LATEST
    assert TokenStore(path).get("ann") == info


def test_a_file_that_is_no_database_says_so_and_is_left_alone(tmp_path) -> None:
    path = tmp_path / "tokens.sqlite3"
    path.write_bytes(b"not a database, a note kept here" * 10)
    with pytest.raises(sqlite3.DatabaseError, match="not a database"):
        SqliteDatabase(path)
    assert path.read_bytes() == b"not a database, a note kept here" * 10


def test_a_statement_is_written_once_and_rendered_for_each_dialect() -> None:
    template = "UPDATE tokens SET spent_usd = {GREATEST}(0, spent_usd + {change}) WHERE id = {id}"
    assert SQLITE.sql(template) == "UPDATE tokens SET spent_usd = MAX(0, spent_usd + :change) WHERE id = :id"
    assert POSTGRES.sql(template) == (
        "UPDATE tokens SET spent_usd = GREATEST(0, spent_usd + %(change)s) WHERE id = %(id)s"
    )
    assert POSTGRES.sql("picture {BINARY}, created {REAL}") == "picture BYTEA, created DOUBLE PRECISION"
    with pytest.raises(KeyError, match="'LEAST' is not a word of this SQL dialect"):
        SQLITE.sql("SELECT {LEAST}(1, 2)")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with postgres_cluster() as running:
        yield running


def test_a_postgres_database_of_an_earlier_release_opens_migrated_with_its_records(cluster: Cluster) -> None:
    import psycopg

    database = cluster.database()
    with psycopg.connect(database) as db:
        db.execute(OLD_POSTGRES)  # made before the pause switch
    store = PostgresTokenStore(database)
    with psycopg.connect(database) as db:
        versions = [row[0] for row in db.execute("SELECT version FROM schema_version ORDER BY version")]
    assert versions == list(range(1, LATEST + 1))
    old = store.get("old")
    assert (old.budget, old.images) == (4, 0) and store.workshop().budget_images == 9
    assert store.set_paused(True).paused and store.workshop().images == 2
    with pytest.raises(Refusal) as refused:
        store.reserve(old.id, 8)
    assert refused.value.what == "images"
    store.close()


def test_servers_opening_a_new_postgres_database_at_once_migrate_it_once(cluster: Cluster) -> None:
    import psycopg

    database = cluster.database()
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        opened = list(pool.map(lambda _: PostgresDatabase(database, pool_size=1), range(6)))
    with psycopg.connect(database) as db:
        versions = [row[0] for row in db.execute("SELECT version FROM schema_version ORDER BY version")]
    assert versions == list(range(1, LATEST + 1))
    for each in opened:
        each.close()
