"""Fresh databases for one corpus run, and their schema dumps.

PostgreSQL and MariaDB (dialect ``mysql``, as SQLAlchemy names it) databases are created on
the servers the admin URLs name, with names starting ``abm_corpus_``; only databases this
process created are ever dropped. SQLite databases are files in the run's working directory.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pymysql
from psycopg import sql
from sqlalchemy.engine import URL, make_url

PREFIX = "abm_corpus_"
# abmigrate's own bookkeeping, left out of the comparison with plain Alembic.
JOURNAL_TABLE = "abmigrate_journal"


@dataclass
class Database:
    """One database of a run. The URLs carry credentials: they are not printed masked."""

    dialect: str
    name: str
    url: str  # sync driver: what abmigrate and the project's sqlalchemy.url get
    async_url: str  # asyncpg / aiomysql / aiosqlite, for env.py files that want an async driver
    plain_url: str  # no driver named (postgresql://, mysql://, sqlite://)
    path: Path | None = None  # SQLite file


# The sync driver of each server dialect's URLs unless a project names another (`drivers`),
# and the async one of `{async_url}`.
DRIVERS = {"postgresql": "psycopg", "mysql": "pymysql"}
ASYNC_DRIVERS = {"postgresql": "asyncpg", "mysql": "aiomysql"}


class Server:
    """Creates and drops this run's databases: on a PostgreSQL or MariaDB server, or as SQLite
    files."""

    def __init__(self, admin_url: str | None, workdir: Path, mysql_url: str | None = None) -> None:
        self.admin: URL | None = make_url(admin_url) if admin_url else None
        self.mysql_admin: URL | None = make_url(mysql_url) if mysql_url else None
        self.workdir = workdir
        self.created: list[str] = []
        self.created_mysql: list[str] = []

    # -- lifecycle --------------------------------------------------------------------

    def new(self, dialect: str, label: str, driver: str | None = None) -> Database:
        """A new empty database; ``driver`` names the sync driver of its ``url`` (PostgreSQL:
        psycopg, MariaDB: pymysql, unless told)."""
        safe = re.sub(r"[^a-z0-9_]", "_", label.lower())
        if dialect == "sqlite":
            path = self.workdir / f"{safe}.db"
            path.unlink(missing_ok=True)
            return Database(
                dialect="sqlite",
                name=path.name,
                url=f"sqlite:///{path}",
                async_url=f"sqlite+aiosqlite:///{path}",
                plain_url=f"sqlite:///{path}",
                path=path,
            )
        name = f"{PREFIX}{safe}_{os.getpid()}_{secrets.token_hex(2)}"[:63]
        if dialect == "mysql":
            if self.mysql_admin is None:
                raise RuntimeError("no MariaDB server URL")
            with self._mysql() as connection, connection.cursor() as cursor:
                cursor.execute(_MYSQL_CREATE.format(name=name))
            self.created_mysql.append(name)
            base = self.mysql_admin.set(database=name)
        else:
            if self.admin is None:
                raise RuntimeError("no PostgreSQL server URL")
            with self._connect() as connection:
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            self.created.append(name)
            base = self.admin.set(database=name)

        def render(drivername: str) -> str:
            return base.set(drivername=drivername).render_as_string(hide_password=False)

        return Database(
            dialect=dialect,
            name=name,
            url=render(f"{dialect}+{driver or DRIVERS[dialect]}"),
            async_url=render(f"{dialect}+{ASYNC_DRIVERS[dialect]}"),
            plain_url=render(dialect),
        )

    def reset(self, database: Database) -> None:
        """Make ``database`` empty again (drop and create it, or delete the file)."""
        if database.path is not None:
            database.path.unlink(missing_ok=True)
            return
        if database.dialect == "mysql":
            assert database.name in self.created_mysql, "only this run's databases are dropped"
            self._mysql_drop(database.name)
            with self._mysql() as connection, connection.cursor() as cursor:
                cursor.execute(_MYSQL_CREATE.format(name=database.name))
            return
        assert database.name in self.created, "only this run's databases are dropped"
        with self._connect() as connection:
            identifier = sql.Identifier(database.name)
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(identifier)
            )
            connection.execute(sql.SQL("CREATE DATABASE {}").format(identifier))

    def drop_all(self) -> None:
        for name in self.created_mysql:
            self._mysql_drop(name)
        self.created_mysql.clear()
        if not self.created:
            return
        with self._connect() as connection:
            for name in self.created:
                connection.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
        self.created.clear()

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        assert self.admin is not None
        return self._connect_to(self.admin.database or "postgres")

    def server_version(self) -> str:
        if self.admin is None:
            return ""
        with self._connect() as connection:
            row = connection.execute("SHOW server_version").fetchone()
        return str(row[0]).split()[0] if row else ""

    def mysql_version(self) -> str:
        if self.mysql_admin is None:
            return ""
        with self._mysql() as connection, connection.cursor() as cursor:
            cursor.execute("SELECT VERSION()")
            row = cursor.fetchone()
        # 11.4.5-MariaDB-log, 10.11.6-MariaDB-0+deb12u1: the version and the server's name.
        return str(row[0]).split("-", 1)[0] if row else ""

    def _mysql(self, database: str | None = None) -> pymysql.connections.Connection[Any]:
        assert self.mysql_admin is not None
        return pymysql.connect(
            host=self.mysql_admin.host or "127.0.0.1",
            port=self.mysql_admin.port or 3306,
            user=self.mysql_admin.username or "root",
            password=self.mysql_admin.password or "",
            database=database,
            autocommit=True,
            connect_timeout=10,
        )

    def _mysql_drop(self, name: str) -> None:
        """DROP DATABASE after killing the sessions still in it (PostgreSQL's WITH FORCE)."""
        with self._mysql() as connection, connection.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM information_schema.processlist"
                " WHERE db = %s AND id <> CONNECTION_ID()",
                (name,),
            )
            for (session,) in cursor.fetchall():
                with contextlib.suppress(pymysql.err.OperationalError):  # gone meanwhile
                    cursor.execute(f"KILL {int(session)}")
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")

    def recorded(self, database: Database) -> list[str] | None:
        """The rows of alembic_version (sorted), or None when the table does not exist."""
        query = "SELECT version_num FROM alembic_version"
        if database.path is not None:
            if not database.path.exists():
                return None
            connection = sqlite3.connect(database.path)
            try:
                rows = connection.execute(query).fetchall()
            except sqlite3.OperationalError:
                return None
            finally:
                connection.close()
            return sorted(str(row[0]) for row in rows)
        if database.dialect == "mysql":
            with self._mysql(database.name) as connection, connection.cursor() as cursor:
                try:
                    cursor.execute(query)
                except pymysql.err.ProgrammingError as exc:
                    if exc.args[0] == _ER_NO_SUCH_TABLE:
                        return None
                    raise
                return sorted(str(row[0]) for row in cursor.fetchall())
        with self._connect_to(database.name) as pg:
            try:
                pg_rows = pg.execute(query).fetchall()
            except psycopg.errors.UndefinedTable:
                return None
        return sorted(str(row[0]) for row in pg_rows)

    def _connect_to(self, name: str) -> psycopg.Connection[tuple[object, ...]]:
        assert self.admin is not None
        return psycopg.connect(
            host=self.admin.host or "127.0.0.1",
            port=self.admin.port or 5432,
            user=self.admin.username or "postgres",
            password=self.admin.password,
            dbname=name,
            autocommit=True,
            connect_timeout=10,
        )

    # -- schema dumps -----------------------------------------------------------------

    def dump(self, database: Database) -> list[str]:
        """The schema as lines: ``pg_dump -s``, ``mariadb-dump --no-data`` or SQLite's
        sqlite_master, without the journal."""
        if database.path is not None:
            return _sqlite_schema(database.path)
        if database.dialect == "mysql":
            return self._mysql_dump(database.name)
        assert self.admin is not None
        environment = dict(os.environ)
        if self.admin.password:
            environment["PGPASSWORD"] = self.admin.password
        command = [
            "pg_dump",
            "--schema-only",
            "--exclude-table",
            f"{JOURNAL_TABLE}*",
            "-h",
            self.admin.host or "127.0.0.1",
            "-p",
            str(self.admin.port or 5432),
            "-U",
            self.admin.username or "postgres",
            database.name,
        ]
        result = subprocess.run(
            command, capture_output=True, text=True, env=environment, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"pg_dump failed: {result.stderr.strip().splitlines()[:1]}")
        # \restrict / \unrestrict carry a random key per dump (pg_dump 15.14+).
        return [
            line
            for line in result.stdout.splitlines()
            if line.strip() and not line.startswith(("\\restrict", "\\unrestrict"))
        ]

    def _mysql_dump(self, name: str) -> list[str]:
        assert self.mysql_admin is not None
        with self._mysql() as connection, connection.cursor() as cursor:
            cursor.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = %s AND table_name LIKE %s",
                (name, f"{JOURNAL_TABLE}%"),
            )
            journal = sorted(str(row[0]) for row in cursor.fetchall())
        program = shutil.which("mariadb-dump") or shutil.which("mysqldump") or "mysqldump"
        environment = dict(os.environ)
        if self.mysql_admin.password:
            environment["MYSQL_PWD"] = self.mysql_admin.password
        command = [
            program,
            "--no-defaults",
            "--no-data",
            "--skip-comments",
            "--skip-dump-date",
            "--routines",
            "--triggers",
            "--protocol=tcp",
            "-h",
            self.mysql_admin.host or "127.0.0.1",
            "-P",
            str(self.mysql_admin.port or 3306),
            "-u",
            self.mysql_admin.username or "root",
            *(f"--ignore-table={name}.{table}" for table in journal),
            name,
        ]
        result = subprocess.run(
            command, capture_output=True, text=True, env=environment, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed: {result.stderr.strip().splitlines()[:1]}")
        return _canonical_mysql_dump(result.stdout)


# CHARACTER SET as the tests' databases have it (tests/conftest.py) and the throwaway server's
# default (scripts/ensure-databases).
_MYSQL_CREATE = "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
_ER_NO_SUCH_TABLE = 1146
_AUTO_INCREMENT = re.compile(r" AUTO_INCREMENT=\d+(?= |;|$)")


def _canonical_mysql_dump(text: str) -> list[str]:
    """The dump's lines, with each CREATE TABLE's keys and constraints in a fixed order.

    MariaDB lists a table's secondary keys in the order they were created, and Alembic's
    ``create_table`` creates a table's ``index=True`` indexes by iterating a set
    (``Table.indexes``): plain ``alembic upgrade head`` itself creates them in a different
    order from one run to the next (string hash seed). Columns keep their order. The
    AUTO_INCREMENT=N table option is the counter's current value (rows written), not schema.
    """
    lines: list[str] = []
    items: list[str] | None = None
    for line in text.splitlines():
        if not line.strip():
            continue
        if items is None:
            lines.append(line)
            if line.startswith("CREATE TABLE ") and line.endswith("("):
                items = []
            continue
        if not line.startswith(")"):
            items.append(line.rstrip().rstrip(","))
            continue
        columns = [item for item in items if item.lstrip().startswith("`")]
        keys = sorted(item for item in items if not item.lstrip().startswith("`"))
        lines.extend(columns + keys)
        lines.append(_AUTO_INCREMENT.sub("", line))
        items = None
    return lines


def _sqlite_schema(path: Path) -> list[str]:
    if not path.exists():
        return []
    connection = sqlite3.connect(path)
    try:
        rows = connection.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master"
            " WHERE tbl_name NOT LIKE ? AND name != 'sqlite_sequence' ORDER BY type, name",
            (f"{JOURNAL_TABLE}%",),
        ).fetchall()
    finally:
        connection.close()
    lines: list[str] = []
    for kind, name, table, text in rows:
        # One line per line of the statement, each prefixed, so a difference shows precisely.
        statement = _canonical_create_table(text) if kind == "table" and text else text
        lines.extend(f"{kind} {name} on {table}: {line}" for line in (statement or "").split("\n"))
    return lines


_CONSTRAINT = re.compile(r"^(CONSTRAINT|PRIMARY KEY|UNIQUE|FOREIGN KEY|CHECK)\b", re.IGNORECASE)


def _canonical_create_table(statement: str) -> str:
    """The CREATE TABLE text with its table constraints in a fixed order.

    Alembic's batch mode rewrites a table from a reflected copy whose constraints come out of
    a set: plain ``alembic upgrade head`` itself writes UNIQUE and FOREIGN KEY clauses in a
    different order from one run to the next (string hash seed). Columns keep their order.
    """
    lines = [line.rstrip() for line in statement.split("\n")]
    if len(lines) < 3 or not lines[-1].startswith(")"):
        return "\n".join(lines)
    items = [line.strip().rstrip(",").rstrip() for line in lines[1:-1]]
    columns = [item for item in items if not _CONSTRAINT.match(item)]
    constraints = sorted(item for item in items if _CONSTRAINT.match(item))
    return "\n".join([lines[0], *(f"\t{item}" for item in columns + constraints), lines[-1]])
