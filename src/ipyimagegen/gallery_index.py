"""A gallery's search index: one SQLite row per image, for listing, search, lineage and totals.

The index is a cache of the gallery's files (see :mod:`ipyimagegen.gallery`): it can be dropped
and rebuilt from them. Times are stored as ISO 8601 text in UTC, all of one width, so the text
sorts as the time does.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from .models import GENERATIONS

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    file TEXT NOT NULL,
    created TEXT NOT NULL,
    prompt TEXT NOT NULL DEFAULT '',
    revised_prompt TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT '',
    endpoint TEXT NOT NULL DEFAULT 'generations',
    parent_id TEXT,
    document TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS images_by_created ON images(created, seq);
CREATE INDEX IF NOT EXISTS images_by_model ON images(model, created);
CREATE INDEX IF NOT EXISTS images_by_parent ON images(parent_id);
"""

_FTS_SCHEMA = """
CREATE VIRTUAL TABLE IF NOT EXISTS images_fts USING fts5(
    prompt, revised_prompt, content='images', content_rowid='seq'
);
CREATE TRIGGER IF NOT EXISTS images_fts_insert AFTER INSERT ON images BEGIN
    INSERT INTO images_fts(rowid, prompt, revised_prompt)
    VALUES (new.seq, new.prompt, new.revised_prompt);
END;
CREATE TRIGGER IF NOT EXISTS images_fts_delete AFTER DELETE ON images BEGIN
    INSERT INTO images_fts(images_fts, rowid, prompt, revised_prompt)
    VALUES ('delete', old.seq, old.prompt, old.revised_prompt);
END;
"""

Row = tuple[str, str]
"""An image's row as the gallery reads it: its metadata document (JSON text) and its file."""


# --- time ----------------------------------------------------------------------------------------


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    """UTC, ISO 8601, always the same width (so the text sorts as the time does)."""
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def parse_iso(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


Moment = datetime | date | str | float
"""A point in time a listing is filtered by: a datetime, a date, ISO text or a POSIX timestamp."""


def _moment(value: Moment) -> str:
    """A filter bound as stored text. Naive datetimes and dates are local time; numbers are epoch seconds."""
    if isinstance(value, (int, float)):
        return iso(datetime.fromtimestamp(value, timezone.utc))
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return iso(value if value.tzinfo else value.astimezone())


# --- filters -------------------------------------------------------------------------------------


def _fts_query(words: list[str]) -> str:
    """Every word, as a prefix: ``"red"* "fox"*``."""
    return " ".join(f'"{word}"*' for word in words)


def _like(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class Filters:
    """What a listing keeps: words (or word beginnings) of the prompt or revised prompt, a model,
    an endpoint, and a time span (``since`` inclusive, ``until`` exclusive)."""

    text: str | None = None
    model: str | None = None
    since: Moment | None = None
    until: Moment | None = None
    endpoint: str | None = None

    def where(self, full_text: bool) -> tuple[str, list[Any]]:
        """The SQL ``WHERE`` clause (empty when nothing is filtered) and its values."""
        conditions: list[str] = []
        values: list[Any] = []
        words = re.findall(r"\w+", self.text or "")
        if words and full_text:
            conditions.append("seq IN (SELECT rowid FROM images_fts WHERE images_fts MATCH ?)")
            values.append(_fts_query(words))
        elif self.text and self.text.strip():
            for word in self.text.split():
                conditions.append("(prompt LIKE ? ESCAPE '\\' OR revised_prompt LIKE ? ESCAPE '\\')")
                values += [_like(word), _like(word)]
        for column, value in (("model", self.model), ("endpoint", self.endpoint)):
            if value:
                conditions.append(f"{column} = ?")
                values.append(value)
        if self.since is not None:
            conditions.append("created >= ?")
            values.append(_moment(self.since))
        if self.until is not None:
            conditions.append("created < ?")
            values.append(_moment(self.until))
        return (" WHERE " + " AND ".join(conditions) if conditions else ""), values


# --- the index -----------------------------------------------------------------------------------


def connect(path: Path) -> sqlite3.Connection:
    """A connection to the index file at ``path`` (WAL mode, autocommit, usable from any thread)."""
    db = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")  # the files are synced; the index can be rebuilt
    return db


class GalleryIndex:
    """The SQLite index in ``path``, created when missing. Thread-safe; several processes may share it.

    ``full_text`` says whether search uses SQLite's FTS5 (else it falls back to ``LIKE``).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = connect(path)
        try:
            self.full_text = self._create_schema()
        except BaseException:
            self.close()
            raise

    @property
    def closed(self) -> bool:
        return self._db is None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("This gallery is closed: open it again with Gallery(path).")
        return self._db

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _create_schema(self) -> bool:
        """Create the tables; returns whether full-text search (SQLite FTS5) is there."""
        with self._lock:
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"The gallery in {self.path.parent} was written by a newer ipyimagegen "
                    f"(index version {version}); upgrade ipyimagegen to open it."
                )
            self._run_script(_SCHEMA + f"PRAGMA user_version={SCHEMA_VERSION};")
            try:
                self._run_script(_FTS_SCHEMA)
            except sqlite3.OperationalError:  # this SQLite has no FTS5: search falls back to LIKE
                return False
            return True

    def _run_script(self, script: str) -> None:
        """Run SQL statements in one transaction (all or none)."""
        try:
            self.db.executescript(f"BEGIN IMMEDIATE;\n{script}\nCOMMIT;")
        except sqlite3.Error:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, under the lock; rolled back on error."""
        with self._lock:
            db = self.db
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # -- changing -----------------------------------------------------------------------------

    def add(self, document: dict[str, Any], file: str, document_text: str) -> None:
        """Index an image (``document`` is its metadata, ``document_text`` the same as JSON); an id
        already there is left as it is."""
        row = (
            document["id"],
            file,
            document["created"],
            document.get("prompt") or "",
            document.get("revised_prompt") or "",
            document.get("model") or "",
            document.get("endpoint") or GENERATIONS,
            document.get("parent_id"),
            document_text,
        )
        with self.transaction() as db:
            db.execute(
                "INSERT INTO images (id, file, created, prompt, revised_prompt, model, endpoint, parent_id,"
                " document) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
                row,
            )

    def remove(self, ids: Iterable[str]) -> None:
        """Drop the rows of these images, in one transaction."""
        with self.transaction() as db:
            db.executemany("DELETE FROM images WHERE id = ?", [(item_id,) for item_id in ids])

    # -- reading ------------------------------------------------------------------------------

    def files(self) -> dict[str, str]:
        """Every indexed id with its file, read over a connection of its own (so that readers of the
        shared one never wait for this long read)."""
        reader = connect(self.path)
        try:
            return dict(reader.execute("SELECT id, file FROM images").fetchall())
        finally:
            reader.close()

    def row(self, item_id: str) -> Row | None:
        with self._lock:
            return self.db.execute("SELECT document, file FROM images WHERE id = ?", (item_id,)).fetchone()

    def __contains__(self, item_id: object) -> bool:
        with self._lock:
            return self.db.execute("SELECT 1 FROM images WHERE id = ?", (item_id,)).fetchone() is not None

    def rows(self, filters: Filters, offset: int = 0, limit: int | None = None) -> list[Row]:
        """The rows ``filters`` keep, newest first; ``limit=None`` returns all."""
        where, values = filters.where(self.full_text)
        query = f"SELECT document, file FROM images{where} ORDER BY created DESC, seq DESC LIMIT ? OFFSET ?"
        with self._lock:
            return self.db.execute(query, [*values, -1 if limit is None else limit, offset]).fetchall()

    def count(self, filters: Filters) -> int:
        where, values = filters.where(self.full_text)
        with self._lock:
            return int(self.db.execute(f"SELECT count(*) FROM images{where}", values).fetchone()[0])

    def total_cost(self, filters: Filters, ids: Iterable[str] | None, billed: bool) -> float:
        """The sum of the estimated dollars in the documents of ``ids``, or of those ``filters`` keep;
        ``billed`` picks what was billed, or what offline results would have cost."""
        where, values = filters.where(self.full_text)
        flag = "json_extract(document, '$.details.cost.billed')"
        condition = f"{flag} = {1 if billed else 0}"
        where = f"{where} AND {condition}" if where else f" WHERE {condition}"
        if ids is not None:
            chosen = list(ids)
            if not chosen:
                return 0.0
            where += f" AND id IN ({', '.join('?' for _ in chosen)})"
            values = [*values, *chosen]
        query = f"SELECT total(json_extract(document, '$.details.cost.usd')) FROM images{where}"
        with self._lock:
            return float(self.db.execute(query, values).fetchone()[0])

    def models(self) -> list[str]:
        """The models of the indexed images, sorted."""
        with self._lock:
            rows = self.db.execute("SELECT DISTINCT model FROM images WHERE model != '' ORDER BY model")
            return [model for (model,) in rows.fetchall()]

    def children(self, item_id: str) -> list[Row]:
        """The rows of the images whose parent is ``item_id``, oldest first."""
        query = "SELECT document, file FROM images WHERE parent_id = ? ORDER BY created, seq"
        with self._lock:
            return self.db.execute(query, [item_id]).fetchall()
