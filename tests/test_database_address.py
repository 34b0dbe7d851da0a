"""Database addresses in every form libpq reads, and their passwords kept out of output and logs."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from absent import require_modules
from ipyimagegen.server.database_address import (
    hide_in_logs,
    holds_password,
    is_database_address,
    shown,
    split_secrets,
    without_password,
)
from ipyimagegen.server.tokens import open_store
from postgres_helpers import Cluster, postgres_cluster

HOSTILE = [
    "pa@ss#TAILword",
    "p:a/s@s?w=1&Qx9z",
    "tw0 w0rdz h3r3",
    "it's-qu0ted",
    'say "ch33se" n0w',
    "back\\sl4sh\\x9",
]
"""Passwords with the characters that break a naive reading: @ : / ? & # spaces quotes backslashes."""


def _url(password: str, host: str = "db.example", tail: str = "/workshop") -> str:
    return f"postgresql://host-user:{password}@{host}{tail}"


def _setting(password: str) -> str:
    escaped = password.replace("\\", "\\\\").replace("'", "\\'")
    return f"host=db.example port=5432 password='{escaped}' dbname=workshop"


def _forms(password: str) -> list[str]:
    """``password`` in each form an address may give it."""
    forms = [
        _url(quote(password, safe="")),
        f"postgresql://host-user@db.example/workshop?sslmode=require&password={quote(password, safe='')}",
        _setting(password),
    ]
    if not any(c.isspace() or c in "'\"" for c in password):
        forms.append(_url(password))  # raw in the URL: as people paste it
    return forms


def _fragments(password: str) -> list[str]:
    """Pieces of ``password`` that a wrong reading leaks (libpq takes what follows an @ for the host)."""
    pieces = [password]
    pieces += [piece for piece in password.replace("@", " ").replace("'", " ").split() if len(piece) >= 4]
    return pieces


# -- reading addresses -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address, without, secrets",
    [
        ("postgresql://u:pa@ss@host/db", "postgresql://u@host/db", {"password": "pa@ss"}),
        (
            "postgresql://u:p:a/s@s@h1:5432,h2:5433/db?sslmode=require",
            "postgresql://u@h1:5432,h2:5433/db?sslmode=require",
            {"password": "p:a/s@s"},
        ),
        ("postgresql://u:pa%40ss%20x@host/db", "postgresql://u@host/db", {"password": "pa@ss x"}),
        ("postgres://:only@host", "postgres://host", {"password": "only"}),
        (
            "postgresql://host/db?password=S%26CRET&sslmode=require&sslpassword=k",
            "postgresql://host/db?sslmode=require",
            {"password": "S&CRET", "sslpassword": "k"},
        ),
        ("host=h password=SECRET dbname=d", "host=h dbname=d", {"password": "SECRET"}),
        ("host=h password='a b\\'c\\\\' dbname=d", "host=h dbname=d", {"password": "a b'c\\"}),
        ("host = h   password = 'x\"y'  sslpassword=z", "host = h", {"password": 'x"y', "sslpassword": "z"}),
        ("postgresql://u@h/db", "postgresql://u@h/db", {}),
        ("host=h dbname=d", "host=h dbname=d", {}),
    ],
)
def test_the_password_is_taken_out_of_every_form(address: str, without: str, secrets: dict[str, str]) -> None:
    assert is_database_address(address)
    assert split_secrets(address) == (without, secrets)
    assert holds_password(address) == bool(secrets)


@pytest.mark.parametrize("password", HOSTILE)
def test_libpq_reads_the_address_and_its_password_as_meant(password: str) -> None:
    conninfo = require_modules("psycopg.conninfo", install='pip install "ipyimagegen[postgres]"')
    for address in _forms(password):
        rest, secrets = split_secrets(address)
        settings = conninfo.conninfo_to_dict(rest, **secrets)
        assert (settings["host"], settings["dbname"], settings["password"]) == (
            "db.example",
            "workshop",
            password,
        )


@pytest.mark.parametrize("address", ["tokens.sqlite3", "mysql://u:pw@h/db", "", "=x"])
def test_other_text_is_no_database_address(address: str) -> None:
    assert not is_database_address(address)


@pytest.mark.parametrize(
    "address", ["host=h password=abcd efgh dbname=d", "host=h password='abcd efgh", "host=h abcd efgh"]
)
def test_settings_libpq_could_not_read_are_refused_without_showing_them(address: str) -> None:
    with pytest.raises(ValueError) as refused:
        split_secrets(address)
    assert "abcd" not in str(refused.value) and "efgh" not in str(refused.value)
    assert "key=value" in str(refused.value) or "closing quote" in str(refused.value)


# -- redaction -------------------------------------------------------------------------------------


@pytest.mark.parametrize("password", HOSTILE)
def test_no_piece_of_a_hostile_password_is_shown(password: str) -> None:
    for address in _forms(password):
        for text in (shown(address), without_password(f"could not connect to {address!r}: no", [password])):
            assert "***" in text
            for piece in _fragments(password) + [quote(password, safe="")]:
                assert piece not in text, (address, text)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("at postgresql://u:pa@ss@host/db now", "at postgresql://u:***@host/db now"),
        ("failed for 'postgres://:p/w@h:1/x'", "failed for 'postgres://:***@h:1/x'"),
        ("?password=abc&sslmode=require", "?password=***&sslmode=require"),
        ("host=h password = 'a b' dbname=d", "host=h password = *** dbname=d"),
        ("host=h sslpassword=k'ey port=1", "host=h sslpassword=*** port=1"),
        ("no address here: password policy", "no address here: password policy"),
    ],
)
def test_addresses_in_free_text_are_redacted(text: str, expected: str) -> None:
    assert without_password(text) == expected


# -- logs ------------------------------------------------------------------------------------------


@pytest.fixture
def database_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    require_modules("psycopg", "psycopg_pool", install='pip install "ipyimagegen[postgres]"')
    with (
        caplog.at_level(logging.DEBUG, logger="psycopg"),
        caplog.at_level(logging.DEBUG, logger="psycopg_pool"),
    ):
        yield caplog


@pytest.mark.parametrize("logger", ["psycopg", "psycopg.pool", "psycopg.pq", "psycopg_pool.sched"])
def test_the_filter_redacts_psycopg_records_message_arguments_and_traceback(
    database_logs, logger: str
) -> None:
    hide_in_logs(["Hunter2 @ home"])
    log = logging.getLogger(logger)
    log.warning("error connecting in %r: %s", "pool-1", "password 'Hunter2 @ home' was refused")
    log.info("dialling postgresql://u:x@y@h/db and host=h password=plain dbname=d")
    try:
        raise RuntimeError("connection to host=h password='Hunter2 @ home' failed")
    except RuntimeError:
        log.exception("giving up")
    records = [r for r in database_logs.records if r.name == logger]
    assert len(records) == 3  # redacted, never dropped
    shown_text = "\n".join(database_logs.text.splitlines() + [r.exc_text or "" for r in records])
    for secret in ("Hunter2", "x@y", "plain"):
        assert secret not in shown_text
    assert "giving up" in shown_text and "RuntimeError" in shown_text and shown_text.count("***") >= 4


def test_opening_an_unreachable_database_logs_and_raises_no_piece_of_the_password(database_logs) -> None:
    password = "pa@ssTAILword"
    with pytest.raises(Exception) as failed:
        open_store(_url(password, host="nohost.invalid"))
    told = database_logs.text + str(failed.value)
    assert "nohost.invalid" in str(failed.value)  # the host as meant, not the password's tail
    assert "TAILword" not in told and password not in told


# -- the command line ------------------------------------------------------------------------------


def _ipyimagegen(*arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ipyimagegen", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize("password", HOSTILE)
def test_serve_against_an_unreachable_database_never_prints_the_password(password: str, tmp_path) -> None:
    require_modules("psycopg", "psycopg_pool", install='pip install "ipyimagegen[postgres]"')
    raw = not any(c.isspace() or c in "'\"" for c in password)
    for address in (
        _url(password if raw else quote(password, safe=""), host="nohost.invalid"),
        _setting(password).replace("db.example", "127.0.0.1").replace("5432", "1"),
    ):
        done = _ipyimagegen(
            "serve", "--log-level", "debug", "--state-dir", str(tmp_path), "--database", address
        )
        output = done.stdout + done.stderr
        assert done.returncode == 2
        assert "Could not open the database" in output
        assert "PGPASSWORD" in done.stderr and "~/.pgpass" in done.stderr  # the warning about ps
        for piece in _fragments(password) + [quote(password, safe="")]:
            assert piece not in output, (address, output)


def test_an_address_in_the_environment_is_not_warned_about_and_its_password_not_printed(tmp_path) -> None:
    done = _ipyimagegen(
        "tokens", "list", "--state-dir", str(tmp_path),
        env={"IPYIMAGEGEN_DATABASE": "host=127.0.0.1 port=1 password='s3cr3t pass' dbname=d connect_timeout=5"},
    )  # fmt: skip
    assert done.returncode == 2 and "Could not open the database" in done.stderr
    assert "PGPASSWORD" not in done.stderr and "s3cr3t" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    "address, told",
    [
        ("mysql://root:s3cr3t@db/x", "got a mysql:// address"),
        ("s3cr3t@db/x", "--database takes a PostgreSQL address"),
        ("host=db password=s3cr3t more", "a word without '=' after the value of 'password'"),
    ],
)
def test_a_wrong_address_is_refused_clearly_without_its_password(address: str, told: str, tmp_path) -> None:
    done = _ipyimagegen("tokens", "list", "--state-dir", str(tmp_path), "--database", address)
    assert done.returncode == 2 and told in done.stderr
    assert "s3cr3t" not in done.stdout + done.stderr


# -- a real database -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with postgres_cluster() as running:
        yield running


def test_a_database_opens_from_a_url_with_a_raw_hostile_password_and_from_settings(cluster: Cluster) -> None:
    """The cluster trusts loopback, so any password is taken: what counts is that libpq finds the host."""
    database = cluster.database()
    name = database.rsplit("/", 1)[1]
    addresses = {
        "url": database.replace("ipyimagegen@", "ipyimagegen:pa@ss:w/rd?x=1@"),
        "settings": f"host=127.0.0.1 port={cluster.port} user=ipyimagegen dbname={name} password='a b\\'c'",
    }
    for form, address in addresses.items():
        store = open_store(address)
        try:
            token, _ = store.create(f"via-{form}")
            assert store.authenticate(token).name == f"via-{form}"
            assert "***" in repr(store) and "pa@ss" not in repr(store) and "a b" not in repr(store)
        finally:
            store.close()
