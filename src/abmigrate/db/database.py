"""Connecting to the target database, and the read-only look at what it records.

Everything here only reads: a missing SQLite file is reported as uninitialized without being
created, and the version table is queried, never created.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from abmigrate.db.dialects import dialect_for
from abmigrate.db.url import mask_url
from abmigrate.errors import ConnectionFailed

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine
    from sqlalchemy.engine import URL

# SQLAlchemy is imported inside the functions that use it: a warm `status` reads the version
# table through the driver alone (see _peek_rows).

__all__ = [
    "DEFAULT_VERSION_TABLE",
    "JOURNAL_TABLE",
    "NOT_READ",
    "READ_AHEAD",
    "VERSION_TABLE",
    "DatabaseIdentity",
    "VersionTable",
    "connect",
    "database_identity",
    "journal_question",
    "make_engine",
    "parse_url",
    "peek_postgresql_many",
    "peek_rows",
    "presence_question",
    "read_version_rows",
    "scrub",
    "sqlite_path",
    "sync_url",
    "table_absent",
    "version_rows_on",
    "version_rows_question",
]

VERSION_TABLE = "alembic_version"
# abmigrate's journal of runs (abmigrate.apply.journal), named here so that a `status` can
# ask whether it exists without importing the journal module (and SQLAlchemy with it).
JOURNAL_TABLE = "abmigrate_journal"

# abmigrate's own connections (lock, journal, fingerprints, backups, the migration run itself)
# are synchronous; a project whose URL names an async driver gets the matching sync one.
_SYNC_DRIVERS = {
    "asyncpg": "psycopg",
    "psycopg_async": "psycopg",
    "aiosqlite": "pysqlite",
    "asyncmy": "pymysql",
    "aiomysql": "pymysql",
}


@dataclass(frozen=True)
class VersionTable:
    """Where a project records its revisions: Alembic's ``version_table`` and
    ``version_table_schema`` as env.py passes them to ``context.configure`` (the schema is
    resolved through the search_path env.py sets, when it sets one)."""

    name: str = VERSION_TABLE
    schema: str | None = None

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name

    def to_record(self) -> dict[str, str | None]:
        return {"name": self.name, "schema": self.schema}


DEFAULT_VERSION_TABLE = VersionTable()


@dataclass(frozen=True)
class DatabaseIdentity:
    """Which database a connection really reaches, whatever URL opened it.

    ``cluster`` names the server independently of the address used to reach it
    (PostgreSQL's system identifier; MariaDB's data directory on its host), so a socket and
    a TCP connection to the same server compare equal; ``address`` is only for messages.
    """

    dialect: str
    cluster: str
    database: str
    address: str = ""

    def same_as(self, other: DatabaseIdentity) -> bool:
        return (self.dialect, self.cluster, self.database) == (
            other.dialect,
            other.cluster,
            other.database,
        )

    def describe(self) -> str:
        if dialect_for(self.dialect).file_based:
            return f"SQLite file {self.database}"
        return f"{self.dialect} database {self.database!r} on {self.address or self.cluster}"


# What SQLAlchemy's URL pattern accepts as ``dialect[+driver]``.
_PLAIN_SCHEME = re.compile(r"[\w+]+")


def parse_url(url: str) -> URL:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url)
    except ArgumentError:
        raise ConnectionFailed(
            f"not a database URL: {mask_url(url)!r}",
            hint="write it like postgresql+psycopg://user@host:5432/dbname or sqlite:///file.db",
        ) from None


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for other dialects and in-memory databases.

    Read without SQLAlchemy where the URL's form is plain (``name[+driver]://``, and for
    SQLite ``sqlite:///path``): commands that read only caches would otherwise import it for
    this alone. Anything else is parsed by SQLAlchemy, which also words a malformed URL."""
    scheme, separator, rest = url.partition("://")
    if separator and _PLAIN_SCHEME.fullmatch(scheme):
        if scheme.partition("+")[0].lower() != "sqlite":
            return None
        if rest.startswith("/"):
            database = rest[1:].partition("?")[0]
            if not database or database == ":memory:" or database.startswith("file:"):
                return None
            return Path(database)
    parsed = parse_url(url)
    if not dialect_for(parsed).file_based or not parsed.database:
        return None
    if parsed.database == ":memory:" or parsed.database.startswith("file:"):
        return None
    return Path(parsed.database)


def scrub(message: str, url: str) -> str:
    """Remove the URL's password from a message, whatever the driver put in it."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        password = make_url(url).password
    except ArgumentError:
        password = None
    if password:
        message = message.replace(str(password), "***")
    return re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", message)


def sync_url(url: str | URL) -> URL:
    """``url`` with an async driver replaced by the matching synchronous one."""
    parsed = parse_url(url) if isinstance(url, str) else url
    driver = parsed.get_driver_name()
    if driver in _SYNC_DRIVERS:
        return parsed.set(drivername=f"{parsed.get_backend_name()}+{_SYNC_DRIVERS[driver]}")
    return parsed


def make_engine(url: str, *, schema: str | None = None) -> Engine:
    """An engine without a pool; ``schema`` (PostgreSQL) puts that schema first on the
    search_path of every connection, so it is the default schema reflection looks at (a
    tenant's schema, where env.py works)."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import NoSuchModuleError
    from sqlalchemy.pool import NullPool

    options: dict[str, object] = {}
    connect_args = dialect_for(parse_url(url)).schema_connect_args(schema) if schema else None
    if connect_args:
        options["connect_args"] = connect_args
    try:
        return create_engine(sync_url(url), poolclass=NullPool, **options)
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise ConnectionFailed(
            f"no driver for {mask_url(url)}: {exc}",
            hint="install the driver, e.g. pip install 'psycopg[binary]' or PyMySQL",
        ) from None


@contextmanager
def connect(url: str, *, schema: str | None = None) -> Iterator[Connection]:
    """A connection whose failures become one clear ConnectionFailed line (``schema``: see
    :func:`make_engine`)."""
    from sqlalchemy.exc import DBAPIError

    engine = make_engine(url, schema=schema)
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


def read_version_rows(url: str, table: VersionTable = DEFAULT_VERSION_TABLE) -> list[str] | None:
    """The revisions the database records; None when it has no version table (or no file)."""
    peeked = _peek_rows(url, table)
    if peeked is not _CANNOT:
        return peeked
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return None
    with connect(url) as connection:
        return version_rows_on(connection, table)


_CANNOT: list[Any] = []
# sqlite:///relative.db, sqlite:////absolute.db, with or without +pysqlite; nothing else
# (options, in-memory or URI databases go through SQLAlchemy).
_PLAIN_SQLITE = re.compile(r"^sqlite(?:\+pysqlite)?:///(?P<path>[^?#%]+)$")


def _peek_rows(url: str, table: VersionTable) -> list[str] | None:
    """The version rows through the driver alone, without importing SQLAlchemy (a third
    of what a `status` costs otherwise): a plain SQLite file through sqlite3, PostgreSQL
    through psycopg; ``_CANNOT`` for any other URL or anything unexpected (SQLAlchemy then
    reads, and reports)."""
    quoted, sql = version_rows_question(table)
    if url.startswith("sqlite"):
        rows = _CANNOT if table.schema else _peek_sqlite(url, table.name, sql)
    else:
        rows = _peek_postgresql(url, quoted, sql)
    if rows is None or rows is _CANNOT:
        return rows
    return sorted(str(row[0]) for row in rows)


def version_rows_question(table: VersionTable) -> tuple[str, str]:
    """The relation to look for and the query that reads the revisions ``table`` records."""
    quoted = _quoted(table.name, table.schema)
    return quoted, f"SELECT version_num FROM {quoted}"


def journal_question(schema: str | None) -> tuple[str, str]:
    """The relation and the query that read every journal row (record, outcome, in_flight),
    newest first."""
    quoted = _quoted(JOURNAL_TABLE, schema)
    return quoted, f"SELECT record, outcome, in_flight FROM {quoted} ORDER BY started_at DESC"


def peek_rows(
    url: str, name: str, schema: str | None, question: tuple[str, str]
) -> list[Any] | Literal[False] | None:
    """``question``'s rows (see :func:`journal_question`) through the driver alone: None
    when the table ``name`` is not there, False when only SQLAlchemy can tell."""
    quoted, sql = question
    if url.startswith("sqlite"):
        rows = _CANNOT if schema else _peek_sqlite(url, name, sql)
    else:
        rows = _peek_postgresql(url, quoted, sql)
    return False if rows is _CANNOT else rows


def presence_question(name: str, schema: str | None = None) -> tuple[str, None]:
    """The question :func:`table_absent` asks: is the relation there."""
    return _quoted(name, schema), None


def table_absent(url: str, name: str, schema: str | None = None) -> bool:
    """True when the database has no table ``name`` (or, for SQLite, no file yet), known
    through the driver alone (see :func:`_peek_rows`); False when it has it, or when only
    SQLAlchemy can tell."""
    if url.startswith("sqlite"):
        return schema is None and _peek_sqlite(url, name, None) is None
    return _peek_postgresql(url, *presence_question(name, schema)) is None


def _quoted(name: str, schema: str | None) -> str:
    quoted = '"' + name.replace('"', '""') + '"'
    return f'"{schema.replace(chr(34), chr(34) * 2)}".{quoted}' if schema else quoted


# The drivers abmigrate connects with through psycopg (sync_url maps the async ones).
_PSYCOPG_URL = re.compile(r"^postgresql\+(?:psycopg|psycopg_async|asyncpg)://")


def _peek_postgresql(url: str, quoted: str, sql: str | None) -> list[Any] | None:
    """``sql``'s rows through psycopg alone, None when the relation ``quoted`` does not
    exist, ``_CANNOT`` when psycopg alone cannot tell. A connection failure is reported
    as :func:`connect` reports it. The answer a CLI command had read ahead
    (:mod:`abmigrate.db.prefetch`) is used when there is one."""
    answer: list[Any] | None
    for read_ahead in READ_AHEAD:
        answer = read_ahead(url, quoted, sql)
        if answer is not NOT_READ:
            return answer
    answer = peek_postgresql_many(url, [(quoted, sql)])[0]
    return answer


# What answers a question before it is asked of the database: abmigrate.db.prefetch adds
# itself here when a command reads ahead. Each returns the rows, None, or NOT_READ.
READ_AHEAD: list[Callable[[str, str, str | None], Any]] = []
NOT_READ: Any = object()


def peek_postgresql_many(url: str, questions: Sequence[tuple[str, str | None]]) -> list[Any]:
    """:func:`_peek_postgresql`'s answer to each ``(quoted, sql)`` question, on one
    connection: rows, None (no such relation) or ``_CANNOT``."""
    options = _psycopg_options(url)
    if options is None:
        return [_CANNOT for _ in questions]
    import psycopg

    try:
        connection = psycopg.connect(**options, autocommit=True)
    except psycopg.OperationalError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        raise ConnectionFailed(
            f"cannot connect to {mask_url(url)}: {scrub(first_line, url)}",
            hint="check the host, port, user and password, and that the server is running",
        ) from None
    except psycopg.Error:
        return [_CANNOT for _ in questions]
    try:
        return [_peek_on(connection, quoted, sql) for quoted, sql in questions]
    finally:
        connection.close()


def _psycopg_options(url: str) -> dict[str, Any] | None:
    """psycopg's connection arguments for ``url``; None when psycopg alone cannot connect."""
    from urllib.parse import parse_qsl, unquote, urlsplit

    if not _PSYCOPG_URL.match(url):
        return None
    try:
        parts = urlsplit(url)
        options: dict[str, Any] = dict(parse_qsl(parts.query, keep_blank_values=True))
        port = parts.port
    except ValueError:
        return None
    if parts.hostname and "host" not in options:
        options["host"] = unquote(parts.hostname)
    if port is not None:
        options["port"] = port
    if parts.username is not None:
        options["user"] = unquote(parts.username)
    if parts.password is not None:
        options["password"] = unquote(parts.password)
    if parts.path.strip("/"):
        options["dbname"] = unquote(parts.path.lstrip("/"))
    return options


def _peek_on(connection: Any, quoted: str, sql: str | None) -> list[Any] | None:
    import psycopg

    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (quoted,))
            found = cursor.fetchone()
            if not found or not found[0]:
                return None
            if sql is None:
                return []
            cursor.execute(sql.encode())
            return list(cursor.fetchall())
    except psycopg.Error:
        return _CANNOT


def _peek_sqlite(url: str, table: str, sql: str | None) -> list[Any] | None:
    """``sql``'s rows on a plain SQLite file opened read-only through sqlite3, None when
    the file or ``table`` does not exist, ``_CANNOT`` when sqlite3 alone cannot tell."""
    import sqlite3
    from urllib.parse import quote

    found = _PLAIN_SQLITE.match(url)
    if found is None:
        return _CANNOT
    path = Path(found.group("path"))
    if path.name == ":memory:" or path.name.startswith("file:"):
        return _CANNOT
    if not path.is_file():
        return None if not path.exists() else _CANNOT
    try:
        connection = sqlite3.connect(f"file:{quote(str(path.absolute()))}?mode=ro", uri=True)
    except sqlite3.Error:
        return _CANNOT
    try:
        exists = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
        if exists is None:
            return None
        return connection.execute(sql).fetchall() if sql else []
    except sqlite3.Error:
        return _CANNOT
    finally:
        connection.close()


def version_rows_on(
    connection: Connection, table: VersionTable = DEFAULT_VERSION_TABLE
) -> list[str] | None:
    """:func:`read_version_rows` through an open connection (it sees that connection's
    uncommitted changes: the dry run reads its own transaction)."""
    from sqlalchemy import inspect, text

    if not inspect(connection).has_table(table.name, schema=table.schema):
        return None
    preparer = connection.dialect.identifier_preparer
    name = preparer.quote(table.name)
    if table.schema:
        name = f"{preparer.quote_schema(table.schema)}.{name}"
    rows = connection.execute(text(f"SELECT version_num FROM {name}")).scalars()
    return sorted(str(row) for row in rows)


def database_identity(connection: Connection) -> DatabaseIdentity:
    """The database ``connection`` reaches (see :class:`DatabaseIdentity`)."""
    return DatabaseIdentity(*dialect_for(connection).identity(connection))
