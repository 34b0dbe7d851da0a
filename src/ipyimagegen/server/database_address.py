"""PostgreSQL addresses, in the forms libpq reads, and keeping their passwords out of sight.

An address gives its password in one of three ways, all understood here:

- a URL's user part: ``postgresql://user:PASSWORD@host/db``, raw or percent-encoded. A raw password
  may hold any character but spaces and quotes (``@ : / ? & #`` included): the user part runs to the
  address's last ``@`` (libpq itself stops at the first, so it would take the rest of the password
  for the host's name, and print it in its errors); an ``@`` after the host, in the database's name
  or a query value, must be percent-encoded (``%40``);
- a URL's query parameter: ``postgresql://host/db?password=PASSWORD`` (or ``&password=``);
- a ``key=value`` setting: ``host=db password=PASSWORD``, or ``password='a b'`` quoted, with ``\\'``
  and ``\\\\`` escapes.

:func:`split_secrets` takes the password (and ``sslpassword``) out of an address, so the connection
gets it as a separate setting and the address can be shown; :func:`without_password` redacts every
form in any text; :func:`hide_in_logs` keeps known passwords out of psycopg's and its pool's logs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import quote, unquote

SECRET_SETTINGS = ("password", "sslpassword")
HIDDEN = "***"

_URL = re.compile(r"^\s*(postgres(?:ql)?)://", re.IGNORECASE)
_KEY_VALUE = re.compile(r"^\s*[A-Za-z_][A-Za-z0-9_]*\s*=")

# In free text: a URL's user part (greedy: to the last "@" of the word), a query parameter, a setting.
_URL_USER_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@'\"]*:)[^\s'\"]*@")
_QUERY_PASSWORD = re.compile(r"(?i)([?&](?:ssl)?password=)[^&\s'\"]*")
_SETTING_PASSWORD = re.compile(  # a quote inside a word (as a repr shows \') does not end a quoted value
    r"(?i)(?<![?&\w])((?:ssl)?password\s*=\s*)('(?:\\.|[^'\\]|'(?=[^\s\"'),\]}]))*'?|(?:\\.|[^\s\\])+)"
)


def is_database_address(text: str) -> bool:
    """Whether ``text`` has the form of a PostgreSQL address: a ``postgresql://`` (or ``postgres://``)
    URL, or ``key=value`` settings."""
    return bool(_URL.match(text) or _KEY_VALUE.match(text))


def split_secrets(address: str) -> tuple[str, dict[str, str]]:
    """``address`` without its password and ``sslpassword``, and those settings by name (percent-encoding
    and quoting undone). ValueError, naming no value, for ``key=value`` settings libpq could not read."""
    if _URL.match(address):
        return _split_url(address.strip())
    return _split_settings(address)


def without_password(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every password in it shown as ``***``: those of database addresses in any form,
    and each of ``secrets`` wherever it appears (raw or percent-encoded)."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        for form in dict.fromkeys((secret, quote(secret, safe=""), quote(secret, safe="@:/"))):
            text = text.replace(form, HIDDEN)
    text = _URL_USER_PASSWORD.sub(rf"\1{HIDDEN}@", text)
    text = _QUERY_PASSWORD.sub(rf"\1{HIDDEN}", text)
    return _SETTING_PASSWORD.sub(rf"\1{HIDDEN}", text)


def secrets_of(address: str) -> list[str]:
    """The password and ``sslpassword`` that ``address`` gives (none where its settings cannot be read)."""
    try:
        return [secret for secret in split_secrets(address)[1].values() if secret]
    except ValueError:
        return []


def holds_password(address: str) -> bool:
    """Whether ``address`` gives a password (or ``sslpassword``), in any form."""
    return bool(secrets_of(address)) or without_password(address) != address


def shown(address: str) -> str:
    """``address`` as it may be printed: its password, in whichever form, as ``***``."""
    return without_password(address, secrets_of(address))


# -- the URL form ------------------------------------------------------------------------------


def _split_url(address: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = address.partition("://")
    secrets: dict[str, str] = {}
    user_part, at, rest = rest.rpartition("@")
    if at:
        user, colon, password = user_part.partition(":")
        if colon:
            secrets["password"] = unquote(password)
        user = quote(unquote(user), safe="")
    before_query, question, query = rest.partition("?")
    if at and user:
        before_query = f"{user}@{before_query}"
    kept = []
    for parameter in query.split("&") if question else []:
        name, _, value = parameter.partition("=")
        if unquote(name).lower() in SECRET_SETTINGS:
            secrets[unquote(name).lower()] = unquote(value)
        elif parameter:
            kept.append(parameter)
    return f"{scheme}://{before_query}" + (f"?{'&'.join(kept)}" if kept else ""), secrets


# -- the key=value form ------------------------------------------------------------------------


def _split_settings(address: str) -> tuple[str, dict[str, str]]:
    kept: list[str] = []
    secrets: dict[str, str] = {}
    for key, value, text in _settings(address):
        if key.lower() in SECRET_SETTINGS:
            secrets[key.lower()] = value
        else:
            kept.append(text)
    return " ".join(kept), secrets


def _settings(address: str) -> list[tuple[str, str, str]]:
    """``(key, value, its text)`` for each setting, read as libpq reads them."""
    found: list[tuple[str, str, str]] = []
    i, end = 0, len(address)
    while True:
        while i < end and address[i].isspace():
            i += 1
        if i == end:
            return found
        start = i
        while i < end and address[i] != "=" and not address[i].isspace():
            i += 1
        key = address[start:i]
        while i < end and address[i].isspace():
            i += 1
        if i == end or address[i] != "=" or not key:
            after = f" after the value of {found[-1][0]!r}" if found else ""
            raise ValueError(
                f"The database settings hold a word without '='{after}: write key=value settings, and put a "
                "value that holds spaces in single quotes (dbname='my db')."
            )
        i += 1
        while i < end and address[i].isspace():
            i += 1
        value, i = _value(address, i, key)
        found.append((key, value, address[start:i]))


def _value(address: str, i: int, key: str) -> tuple[str, int]:
    quoted = i < len(address) and address[i] == "'"
    i += quoted
    value: list[str] = []
    while i < len(address):
        char = address[i]
        if char == "\\" and i + 1 < len(address):
            value.append(address[i + 1])
            i += 2
            continue
        if (quoted and char == "'") or (not quoted and char.isspace()):
            return "".join(value), i + quoted
        value.append(char)
        i += 1
    if quoted:
        raise ValueError(f"The quoted value of {key!r} in the database settings has no closing quote.")
    return "".join(value), i


# -- logs ------------------------------------------------------------------------------------


class PasswordFilter(logging.Filter):
    """Redacts database passwords (every address form, and the known ``secrets``) from the records it
    sees: their message, its arguments, and a traceback's text. Never drops a record."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: set[str] = {s for s in secrets if s}

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the message: logging reports it itself
            return True
        redacted = without_password(message, self.secrets)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = without_password(record.exc_text, self.secrets)
        return True


_LOG_FILTER = PasswordFilter()
_DATABASE_LOGGERS = ("psycopg", "psycopg_pool")


def hide_in_logs(secrets: Iterable[str]) -> None:
    """Keep ``secrets`` (and any address's password) out of the records of psycopg's loggers and its
    pool's (``psycopg``, ``psycopg.pool``, ...), once psycopg is imported: a logger's filter does not
    reach the loggers below it, so each gets it."""
    _LOG_FILTER.secrets.update(s for s in secrets if s)
    names = {"psycopg", "psycopg.pool"} | {
        name
        for name in logging.root.manager.loggerDict
        if any(name == top or name.startswith(f"{top}.") for top in _DATABASE_LOGGERS)
    }
    for name in names:
        logger = logging.getLogger(name)
        if _LOG_FILTER not in logger.filters:
            logger.addFilter(_LOG_FILTER)
