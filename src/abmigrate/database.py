"""Connecting to the target database, and the read-only look at what it records.

Everything here only reads: a missing SQLite file is reported as uninitialized without being
created, and the version table is queried, never created.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.pool import NullPool

from abmigrate.errors import ConnectionFailed
from abmigrate.settings import mask_url

__all__ = [
    "VERSION_TABLE",
    "connect",
    "make_engine",
    "parse_url",
    "read_version_rows",
    "scrub",
    "sqlite_path",
    "version_rows_on",
]

VERSION_TABLE = "alembic_version"


def parse_url(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError:
        raise ConnectionFailed(
            f"not a database URL: {mask_url(url)!r}",
            hint="write it like postgresql+psycopg://user@host:5432/dbname or sqlite:///file.db",
        ) from None


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for other dialects and in-memory databases."""
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:" or parsed.database.startswith("file:"):
        return None
    return Path(parsed.database)


def scrub(message: str, url: str) -> str:
    """Remove the URL's password from a message, whatever the driver put in it."""
    try:
        password = make_url(url).password
    except ArgumentError:
        password = None
    if password:
        message = message.replace(str(password), "***")
    return re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", message)


def make_engine(url: str) -> Engine:
    try:
        return create_engine(parse_url(url), poolclass=NullPool)
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise ConnectionFailed(
            f"no driver for {mask_url(url)}: {exc}",
            hint="install the driver, e.g. pip install 'psycopg[binary]' or PyMySQL",
        ) from None


@contextmanager
def connect(url: str) -> Iterator[Connection]:
    """A connection whose failures become one clear ConnectionFailed line."""
    engine = make_engine(url)
    try:
        try:
            connection = engine.connect()
        except DBAPIError as exc:
            first_line = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise ConnectionFailed(
                f"cannot connect to {mask_url(url)}: {scrub(first_line, url)}",
                hint="check the host, port, user and password, and that the server is running",
            ) from None
        with connection:
            yield connection
    finally:
        engine.dispose()


def read_version_rows(url: str) -> list[str] | None:
    """The revisions the database records; None when it has no version table (or no file)."""
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return None
    with connect(url) as connection:
        return version_rows_on(connection)


def version_rows_on(connection: Connection) -> list[str] | None:
    """:func:`read_version_rows` through an open connection (it sees that connection's
    uncommitted changes: the dry run reads its own transaction)."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    rows = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars()
    return sorted(str(row) for row in rows)
