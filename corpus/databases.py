"""Fresh databases for one corpus run, and their schema dumps.

PostgreSQL databases are created on the server the admin URL names, with names starting
``abm_corpus_``; only databases this process created are ever dropped. SQLite databases are
files in the run's working directory.
"""

from __future__ import annotations

import os
import re
import secrets
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg
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
    async_url: str  # asyncpg / aiosqlite, for env.py files that want an async driver
    plain_url: str  # no driver named (postgresql://, sqlite://)
    path: Path | None = None  # SQLite file


class Server:
    """Creates and drops this run's databases: on a PostgreSQL server, or as SQLite files."""

    def __init__(self, admin_url: str | None, workdir: Path) -> None:
        self.admin: URL | None = make_url(admin_url) if admin_url else None
        self.workdir = workdir
        self.created: list[str] = []

    # -- lifecycle --------------------------------------------------------------------

    def new(self, dialect: str, label: str, driver: str | None = None) -> Database:
        """A new empty database; ``driver`` names the sync driver of its ``url`` (PostgreSQL:
        psycopg unless told)."""
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
        if self.admin is None:
            raise RuntimeError("no PostgreSQL server URL")
        name = f"{PREFIX}{safe}_{os.getpid()}_{secrets.token_hex(2)}"[:63]
        with self._connect() as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.created.append(name)
        base = self.admin.set(database=name)
        return Database(
            dialect="postgresql",
            name=name,
            url=base.set(drivername=f"postgresql+{driver or 'psycopg'}").render_as_string(
                hide_password=False
            ),
            async_url=base.set(drivername="postgresql+asyncpg").render_as_string(
                hide_password=False
            ),
            plain_url=base.set(drivername="postgresql").render_as_string(hide_password=False),
        )

    def reset(self, database: Database) -> None:
        """Make ``database`` empty again (drop and create it, or delete the file)."""
        if database.path is not None:
            database.path.unlink(missing_ok=True)
            return
        assert database.name in self.created, "only this run's databases are dropped"
        with self._connect() as connection:
            identifier = sql.Identifier(database.name)
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(identifier)
            )
            connection.execute(sql.SQL("CREATE DATABASE {}").format(identifier))

    def drop_all(self) -> None:
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
        """The schema as lines: ``pg_dump -s`` or SQLite's sqlite_master, without the journal."""
        if database.path is not None:
            return _sqlite_schema(database.path)
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
