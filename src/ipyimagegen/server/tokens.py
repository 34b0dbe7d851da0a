"""Workshop controls: participant tokens, their image budgets and rate limits, and a usage record.

Tokens live in the state store (:mod:`.store`): a small SQLite file in the server's state folder,
or a PostgreSQL database several servers share. They are stored as SHA-256 hashes: the token
itself is shown once, when it is made, and never again. The CLI (``ipyimagegen tokens ...``) and
a running server share the store, so a token made or revoked while the server runs counts at once.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from .database_address import is_database_address, without_password
from .leases import Holder, charge_again, close_lease, give_back, open_lease
from .store import Database, PostgresDatabase, SqliteDatabase

TOKEN_PREFIX = "igt-"
STATE_DIR_VARIABLE = "IPYIMAGEGEN_SERVER_DIR"
_DATABASE_NAME = "tokens.sqlite3"

_PERIODS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
}
_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*([a-z]+?)s?\s*$")


def default_state_dir() -> Path:
    """``$IPYIMAGEGEN_SERVER_DIR``, else ``$XDG_DATA_HOME/ipyimagegen/server`` (``~/.local/share/...``)."""
    explicit = os.environ.get(STATE_DIR_VARIABLE, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME", "").strip() or "~/.local/share"
    return Path(data_home).expanduser() / "ipyimagegen" / "server"


def token_db_path(state_dir: str | Path) -> Path:
    """The token file of a server state folder."""
    return Path(state_dir).expanduser() / _DATABASE_NAME


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Rate:
    """A request rate such as ``10/min``: ``count`` requests per ``period_s`` seconds."""

    count: int
    period_s: float

    @classmethod
    def parse(cls, text: str) -> Rate:
        """``"10/min"``, ``"2/s"``, ``"100/hour"``, ``"500/day"``."""
        match = _RATE_RE.match(text.lower())
        period = _PERIODS.get(match.group(2)) if match else None
        if match is None or period is None or int(match.group(1)) < 1:
            raise ValueError(
                f"A rate looks like '10/min' (requests per s, min, hour or day, at least 1), got {text!r}."
            )
        return cls(int(match.group(1)), period)

    def describe(self) -> str:
        """``10 requests per minute``."""
        unit = {1.0: "second", 60.0: "minute", 3600.0: "hour", 86400.0: "day"}.get(self.period_s)
        return f"{self.count} requests per {unit or f'{self.period_s:g} s'}"

    def __str__(self) -> str:
        unit = {1.0: "s", 60.0: "min", 3600.0: "hour", 86400.0: "day"}.get(self.period_s)
        return f"{self.count}/{unit}" if unit else f"{self.count}/{self.period_s:g}s"


@dataclass(frozen=True)
class TokenInfo:
    """One participant token's settings and usage (never the token itself)."""

    id: str
    name: str
    budget: int | None
    rate: Rate | None
    admin: bool
    created: float
    revoked: float | None
    requests: int
    images: int
    errors: int
    rejected: int
    last_used: float | None
    expires: float | None = None
    budget_usd: float | None = None
    spent_usd: float = 0.0

    @property
    def expired(self) -> bool:
        return self.expires is not None and time.time() >= self.expires

    @property
    def active(self) -> bool:
        """Not revoked and not expired: the server takes it."""
        return self.revoked is None and not self.expired

    @property
    def images_left(self) -> int | None:
        return None if self.budget is None else max(0, self.budget - self.images)

    @property
    def usd_left(self) -> float | None:
        return None if self.budget_usd is None else max(0.0, self.budget_usd - self.spent_usd)

    def to_dict(self) -> dict[str, Any]:
        """Settings and usage as JSON-ready values (times as Unix seconds)."""
        return {
            "id": self.id,
            "name": self.name,
            "admin": self.admin,
            "active": self.active,
            "budget": self.budget,
            "images_left": self.images_left,
            "rate": str(self.rate) if self.rate else None,
            "requests": self.requests,
            "images": self.images,
            "errors": self.errors,
            "rejected": self.rejected,
            "created": int(self.created),
            "last_used": int(self.last_used) if self.last_used else None,
            "expires": int(self.expires) if self.expires else None,
            "budget_usd": self.budget_usd,
            "spent_usd": round(self.spent_usd, 4),
            "usd_left": round(self.usd_left, 4) if self.usd_left is not None else None,
        }


@dataclass(frozen=True)
class Workshop:
    """The whole room's budget (None: no limit) and what it has used."""

    budget_images: int | None
    budget_usd: float | None
    images: int
    spent_usd: float
    paused: bool = False

    @property
    def images_left(self) -> int | None:
        return None if self.budget_images is None else max(0, self.budget_images - self.images)

    @property
    def usd_left(self) -> float | None:
        return None if self.budget_usd is None else max(0.0, self.budget_usd - self.spent_usd)

    def to_dict(self) -> dict[str, Any]:
        return {
            "budget_images": self.budget_images,
            "budget_usd": self.budget_usd,
            "images": self.images,
            "spent_usd": round(self.spent_usd, 4),
            "paused": self.paused,
        }


_Limit = TypeVar("_Limit", int, float)


def own_usage(info: TokenInfo, room: Workshop) -> dict[str, Any]:
    """``GET /v1/usage``'s answer to a token: what it has used and may still use (the smaller of its own
    budget and the workshop's, None for no limit), in images and estimated dollars, and its expiry."""
    usd_left = _smaller(info.usd_left, room.usd_left)
    return {
        "object": "usage",
        "name": info.name,
        "images": info.images,
        "budget": info.budget,
        "images_left": _smaller(info.images_left, room.images_left),
        "spent_usd": round(info.spent_usd, 4),
        "budget_usd": info.budget_usd,
        "usd_left": round(usd_left, 4) if usd_left is not None else None,
        "expires": int(info.expires) if info.expires else None,
    }


def _smaller(first: _Limit | None, second: _Limit | None) -> _Limit | None:
    """The smaller of two limits, where None is no limit."""
    return second if first is None else first if second is None else min(first, second)


RefusalReason = Literal["images", "usd", "workshop_images", "workshop_usd", "revoked", "expired"]
"""Why a reservation is refused: a budget (the token's images or dollars, the workshop's), or the token."""


class Refusal(Exception):
    """A reservation refused; ``what`` says why (:data:`RefusalReason`)."""

    def __init__(self, what: RefusalReason) -> None:
        super().__init__(what)
        self.what: RefusalReason = what


def _info(row: Any) -> TokenInfo:
    return TokenInfo(
        id=row["id"],
        name=row["name"],
        budget=row["budget"],
        rate=Rate.parse(row["rate"]) if row["rate"] else None,
        admin=bool(row["admin"]),
        created=row["created"],
        revoked=row["revoked"],
        requests=row["requests"],
        images=row["images"],
        errors=row["errors"],
        rejected=row["rejected"],
        last_used=row["last_used"],
        expires=row["expires"],
        budget_usd=row["budget_usd"],
        spent_usd=row["spent_usd"] or 0.0,
    )


class TokenStore:
    """Participant tokens, their budgets and usage, the workshop's budget and pause switch, in a
    :class:`~.store.Database`: a SQLite file given its path (safe to share between the CLI and a
    running server), or any database given as such.

    :class:`PostgresTokenStore` keeps the same records in PostgreSQL, for several servers at once.
    """

    def __init__(self, database: str | Path | Database) -> None:
        self.database = database if isinstance(database, Database) else SqliteDatabase(database)
        self._limiter = RateLimiter()

    @classmethod
    def in_dir(cls, state_dir: str | Path | None = None) -> TokenStore:
        """The store of a server state folder (default: :func:`default_state_dir`)."""
        folder = Path(state_dir).expanduser() if state_dir is not None else default_state_dir()
        return cls(token_db_path(folder))

    @property
    def path(self) -> Path:
        """The SQLite file of the store."""
        if not isinstance(self.database, SqliteDatabase):
            raise AttributeError("A store in PostgreSQL has a url, not a path.")
        return self.database.path

    def __repr__(self) -> str:
        return f"TokenStore({str(self.path)!r})"

    @property
    def shared(self) -> bool:
        """Whether servers on other machines share these records (and so their rate windows)."""
        return self.database.shared

    def take_rate(self, token_id: str, rate: Rate) -> float:
        """One request from the token's rate: 0.0 if allowed, else the seconds until one is.

        A database that several servers share holds each token's rate window (the bucket of
        :func:`take_one`), timed by its clock; else this server holds it, in its memory."""
        if not self.database.shared:
            return self._limiter.acquire(token_id, rate)
        with self.database.transaction() as db:
            now = db.now()
            db.execute(
                "INSERT INTO rate_windows (token_id, level, at) VALUES ({id}, {level}, {now}) "
                "ON CONFLICT DO NOTHING",
                id=token_id,
                level=float(rate.count),
                now=now,
            )
            found = db.execute(
                "SELECT level, at FROM rate_windows WHERE token_id = {id} {FOR_UPDATE}", id=token_id
            ).fetchone()
            level, wait = take_one(found["level"], found["at"], now, rate)
            db.execute(
                "UPDATE rate_windows SET level = {level}, at = {now} WHERE token_id = {id}",
                level=level,
                now=now,
                id=token_id,
            )
        return wait

    def close(self) -> None:
        """Let go of the database (a SQLite file holds nothing open between calls)."""
        self.database.close()

    # -- the host's commands -------------------------------------------------------------------

    def create(
        self,
        name: str,
        *,
        budget: int | None = None,
        rate: Rate | str | None = None,
        admin: bool = False,
        expires: float | None = None,
        budget_usd: float | None = None,
    ) -> tuple[str, TokenInfo]:
        """A new token for ``name``: returns the token (to show once) and its record. ``expires``:
        Unix time from which it is refused (None: never); ``budget_usd``: estimated dollars it may
        spend (None: no limit)."""
        name = name.strip()
        if not name:
            raise ValueError("A token needs a name (the participant's, to read in the usage report).")
        if budget is not None and budget < 0:
            raise ValueError(f"budget must be a number of images, 0 or more, got {budget}.")
        if budget_usd is not None and not budget_usd >= 0:
            raise ValueError(f"budget_usd must be an amount of dollars, 0 or more, got {budget_usd}.")
        if isinstance(rate, str):
            rate = Rate.parse(rate)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token_id = "tok_" + secrets.token_hex(4)
        try:
            with self.database.transaction() as db:
                db.execute(
                    "INSERT INTO tokens (id, name, hash, budget, rate, admin, created, expires, budget_usd) "
                    "VALUES ({id}, {name}, {hash}, {budget}, {rate}, {admin}, {created}, {expires}, {budget_usd})",
                    id=token_id,
                    name=name,
                    hash=hash_token(token),
                    budget=budget,
                    rate=str(rate) if rate else None,
                    admin=int(admin),
                    created=time.time(),
                    expires=expires,
                    budget_usd=budget_usd,
                )
        except self.database.duplicate:
            raise ValueError(
                f"There is already an active token named {name!r}: revoke it first, or choose another name."
            ) from None
        return token, self.get(token_id)

    def get(self, name_or_id: str) -> TokenInfo:
        """The active token with this name or id (else the newest revoked one); KeyError if none."""
        with self.database.transaction() as db:
            row = db.execute(
                "SELECT * FROM tokens WHERE id = {key} OR name = {key} "
                "ORDER BY revoked IS NOT NULL, created DESC",
                key=name_or_id,
            ).fetchone()
        if row is None:
            raise KeyError(f"No token named {name_or_id!r} (see: ipyimagegen tokens list).")
        return _info(row)

    def standing(self, token_id: str) -> tuple[TokenInfo, Workshop]:
        """A token's record and the workshop's, read together (what :func:`own_usage` answers)."""
        with self.database.transaction() as db:
            row = db.execute("SELECT * FROM tokens WHERE id = {id}", id=token_id).fetchone()
            room = db.execute("SELECT * FROM workshop WHERE id = 1").fetchone()
        if row is None:
            raise KeyError(f"No token with the id {token_id!r}.")
        return _info(row), _workshop(room)

    def tokens(self, *, include_revoked: bool = True) -> list[TokenInfo]:
        """Every token, oldest first."""
        query = "SELECT * FROM tokens" + ("" if include_revoked else " WHERE revoked IS NULL")
        with self.database.transaction() as db:
            return [_info(row) for row in db.execute(query + " ORDER BY created")]

    def revoke(self, name_or_id: str) -> TokenInfo:
        """Revoke the active token with this name or id; it is refused from the next request on."""
        with self.database.transaction() as db:
            cursor = db.execute(
                "UPDATE tokens SET revoked = {now} WHERE (id = {key} OR name = {key}) AND revoked IS NULL",
                now=time.time(),
                key=name_or_id,
            )
        if cursor.rowcount == 0:
            raise KeyError(f"No active token named {name_or_id!r} (see: ipyimagegen tokens list).")
        return self.get(name_or_id)

    # -- what the server asks --------------------------------------------------------------------

    def authenticate(self, token: str) -> TokenInfo | None:
        """The record of a token (revoked ones too: the caller says why it is refused), or None."""
        with self.database.transaction() as db:
            row = db.execute("SELECT * FROM tokens WHERE hash = {hash}", hash=hash_token(token)).fetchone()
        return _info(row) if row is not None else None

    def reserve(
        self, token_id: str, images: int, usd: float = 0.0, holder: Holder | None = None
    ) -> str | None:
        """Count a request for ``images`` images costing at most ``usd`` against the token's budgets and
        the workshop's, all or nothing; :class:`Refusal` (saying which budget, or that the token was
        revoked or has expired, checked in the same statement) when they do not fit. With a ``holder``
        (the server running the call) the reservation is a lease (:mod:`.leases`): returns its id."""
        try:
            return self._reserve(token_id, images, usd, holder)
        except Refusal:
            self.record_rejected(token_id)
            raise

    def _reserve(self, token_id: str, images: int, usd: float, holder: Holder | None) -> str | None:
        now = time.time()
        with self.database.transaction() as db:  # one transaction: both updates and the lease, or none
            cursor = db.execute(  # a token revoked or expired since it was read reserves nothing
                "UPDATE tokens SET requests = requests + 1, images = images + {images}, "
                "spent_usd = spent_usd + {usd}, last_used = {now} "
                "WHERE id = {id} AND revoked IS NULL AND (expires IS NULL OR expires > {now}) "
                "AND (budget IS NULL OR images + {images} <= budget) "
                "AND (budget_usd IS NULL OR spent_usd + {usd} <= budget_usd + 1e-9)",
                images=images,
                usd=usd,
                now=now,
                id=token_id,
            )
            if cursor.rowcount == 0:
                found = db.execute(
                    "SELECT images, budget, revoked, expires FROM tokens WHERE id = {id}", id=token_id
                ).fetchone()
                raise Refusal(_why_token_refused(found, images, now))
            cursor = db.execute(
                "UPDATE workshop SET images = images + {images}, spent_usd = spent_usd + {usd} WHERE id = 1 "
                "AND (budget_images IS NULL OR images + {images} <= budget_images) "
                "AND (budget_usd IS NULL OR spent_usd + {usd} <= budget_usd + 1e-9)",
                images=images,
                usd=usd,
            )
            if cursor.rowcount == 0:
                room = db.execute("SELECT images, budget_images FROM workshop WHERE id = 1").fetchone()
                over_images = (
                    room["budget_images"] is not None and room["images"] + images > room["budget_images"]
                )
                raise Refusal("workshop_images" if over_images else "workshop_usd")  # rolls the token's back
            return open_lease(db, holder, token_id, images, usd, db.now()) if holder is not None else None

    def settle(
        self,
        token_id: str,
        reserved_usd: float,
        spent_usd: float,
        lease_id: str | None = None,
        images: int = 0,
    ) -> None:
        """A call of ``images`` images is answered: its cost as estimated from its usage replaces the bound
        reserved, and its lease is settled. A lease refunded meanwhile (its server was taken for dead) is
        charged again: what was delivered counts."""
        with self.database.transaction() as db:
            if lease_id is not None and not close_lease(db, lease_id):
                charge_again(db, token_id, images, spent_usd)
                return
            change = spent_usd - reserved_usd
            if abs(change) < 1e-12:
                return
            db.execute(
                "UPDATE tokens SET spent_usd = {GREATEST}(0, spent_usd + {change}) WHERE id = {id}",
                change=change,
                id=token_id,
            )
            db.execute(
                "UPDATE workshop SET spent_usd = {GREATEST}(0, spent_usd + {change}) WHERE id = 1",
                change=change,
            )

    def record_failure(
        self, token_id: str, images: int, usd: float = 0.0, lease_id: str | None = None
    ) -> None:
        """A reserved request failed: count the error and give its images and dollars back to the budgets
        (once: a lease refunded already, because its server was taken for dead, is not refunded again)."""
        with self.database.transaction() as db:  # the lease first, then the token, then the workshop
            given_back = lease_id is None or close_lease(db, lease_id)
            db.execute("UPDATE tokens SET errors = errors + 1 WHERE id = {id}", id=token_id)
            if given_back:
                give_back(db, token_id, images, usd)

    # -- the workshop's budget and top-ups -----------------------------------------------------

    def workshop(self) -> Workshop:
        with self.database.transaction() as db:
            row = db.execute("SELECT * FROM workshop WHERE id = 1").fetchone()
        return _workshop(row)

    def set_paused(self, paused: bool) -> Workshop:
        """Pause (or resume) every participant's calls, on every server sharing this store."""
        with self.database.transaction() as db:
            db.execute("UPDATE workshop SET paused = {paused} WHERE id = 1", paused=int(paused))
        return self.workshop()

    def set_workshop_budget(
        self, *, images: int | None | str = "keep", usd: float | None | str = "keep"
    ) -> Workshop:
        """The whole room's budget: a number, None for no limit, or ``"keep"`` to leave it as it is."""
        with self.database.transaction() as db:
            if images != "keep":
                db.execute("UPDATE workshop SET budget_images = {images} WHERE id = 1", images=images)
            if usd != "keep":
                db.execute("UPDATE workshop SET budget_usd = {usd} WHERE id = 1", usd=usd)
        return self.workshop()

    def top_up(self, name_or_id: str, *, images: int = 0, usd: float = 0.0) -> TokenInfo:
        """Raise an active token's budgets by ``images`` and ``usd`` (a budget with no limit stays so)."""
        if images < 0 or usd < 0:
            raise ValueError("A top-up adds images or dollars: give amounts of 0 or more.")
        with self.database.transaction() as db:
            cursor = db.execute(
                "UPDATE tokens SET budget = CASE WHEN budget IS NULL THEN NULL ELSE budget + {images} END, "
                "budget_usd = CASE WHEN budget_usd IS NULL THEN NULL ELSE budget_usd + {usd} END "
                "WHERE (id = {key} OR name = {key}) AND revoked IS NULL",
                images=images,
                usd=usd,
                key=name_or_id,
            )
        if cursor.rowcount == 0:
            raise KeyError(f"No active token named {name_or_id!r} (see: ipyimagegen tokens list).")
        return self.get(name_or_id)

    def record_rejected(self, token_id: str) -> None:
        """A request refused before it ran (rate limit, budget)."""
        with self.database.transaction() as db:
            db.execute(
                "UPDATE tokens SET rejected = rejected + 1, last_used = {now} WHERE id = {id}",
                now=time.time(),
                id=token_id,
            )


def _workshop(row: Any) -> Workshop:
    return Workshop(
        row["budget_images"], row["budget_usd"], row["images"], row["spent_usd"], bool(row["paused"])
    )


def _why_token_refused(found: Any, images: int, now: float) -> RefusalReason:
    """Why the token's row took no reservation: revoked, expired, else the budget it would pass."""
    if found is None:
        return "images"
    if found["revoked"] is not None:
        return "revoked"
    if found["expires"] is not None and found["expires"] <= now:
        return "expired"
    over_images = found["budget"] is not None and found["images"] + images > found["budget"]
    return "images" if over_images else "usd"


def take_one(level: float, last: float, now: float, rate: Rate) -> tuple[float, float]:
    """One request from a token bucket holding ``level`` at ``last``: its level after, and the seconds to
    wait (0.0: allowed). It holds ``rate.count`` requests at most, refilled at ``count / period``."""
    refill_per_s = rate.count / rate.period_s
    level = min(float(rate.count), level + max(0.0, now - last) * refill_per_s)
    if level >= 1.0:
        return level - 1.0, 0.0
    return level, (1.0 - level) / refill_per_s


class RateLimiter:
    """A token bucket per key, in memory (:func:`take_one`)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, rate: Rate) -> float:
        """Take one request from ``key``'s bucket: 0.0 if allowed, else the seconds until one is."""
        with self._lock:
            now = self._clock()
            level, wait = take_one(*self._buckets.get(key, (float(rate.count), now)), now, rate)
            self._buckets[key] = (level, now)
            return wait


class PostgresTokenStore(TokenStore):
    """The tokens, budgets, usage and rate windows in PostgreSQL, shared by every server given the
    same ``postgresql://`` address (the ``postgres`` extra: psycopg and its pool).

    A reservation is one conditional ``UPDATE`` of the token's row and the workshop's, in one
    transaction: PostgreSQL locks each row and checks the condition again after the lock, so N
    servers agree exactly however their calls interleave. Rate windows are rows too, timed by the
    database's clock, so replicas agree however their own clocks drift.
    """

    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        database = PostgresDatabase(url, pool_size=pool_size)
        super().__init__(database)
        self.url = database.url
        """The database's address, as it may be shown (its password as ``***``)."""

    def __repr__(self) -> str:
        return f"PostgresTokenStore({without_password(self.url)!r})"


DATABASE_VARIABLE = "IPYIMAGEGEN_DATABASE"


def open_store(database: str | None, state_dir: str | Path | None = None) -> TokenStore:
    """The store of ``database``, else the SQLite file of ``state_dir``. ``database`` is a PostgreSQL
    address as libpq takes it: a ``postgresql://`` URL or ``key=value`` settings (``host=... dbname=...``)."""
    if database:
        if not is_database_address(database):
            scheme = re.match(r"\s*([A-Za-z][A-Za-z0-9+.-]*)://", database)
            got = f"; got a {scheme.group(1)}:// address." if scheme else "."
            raise ValueError(
                "--database takes a PostgreSQL address: postgresql://USER@HOST:PORT/DBNAME, or settings such as "
                f"'host=HOST dbname=NAME user=USER'{got}"
            )
        return PostgresTokenStore(database)
    return TokenStore.in_dir(state_dir)
