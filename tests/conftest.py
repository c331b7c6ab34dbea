"""Shared test fixtures.

Databases are real servers, never mocks. Every database fixture gives the test its OWN fresh
database, dropped at teardown:

- ``sqlite_url``: ``sqlite:///<tmp_path>/test.db`` (the file is not created).
- ``pg_url``: a new database on the PostgreSQL server named by ``ABMIGRATE_TEST_PG_URL``.
- ``mariadb_url``: a new database on the MariaDB server named by ``ABMIGRATE_TEST_MYSQL_URL``.
- ``pg_server_url`` / ``mariadb_server_url`` (session): the admin URLs, for tests that create
  their own databases.

Run the suite with ``./scripts/test``: it starts the servers when needed and sets the variables.
Without them the fixtures try the local defaults and FAIL (never skip) when nothing answers.

Other helpers: ``run_cli`` (the CLI run in this process as ``python -m abmigrate`` would run
it; ``run_cli_process`` for the real subprocess where a process matters) and
``copy_scenario`` (copies ``tests/scenarios/<name>/`` into the test's tmp_path).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
from psycopg import sql
from sqlalchemy.engine import URL, make_url

TESTS_DIR = Path(__file__).resolve().parent
SCENARIOS_DIR = TESTS_DIR / "scenarios"

PG_ENV = "ABMIGRATE_TEST_PG_URL"
MYSQL_ENV = "ABMIGRATE_TEST_MYSQL_URL"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_MYSQL_URL = "mysql+pymysql://root@127.0.0.1:3306/"
CONNECT_TIMEOUT = 5

_db_counter = itertools.count(1)


def unique_db_name() -> str:
    """A database name unique across tests, processes and runs (PostgreSQL/MySQL-safe)."""
    return f"abm_{os.getpid()}_{next(_db_counter)}_{secrets.token_hex(3)}"


def _server_url(env_var: str, default: str, what: str) -> URL:
    raw = os.environ.get(env_var) or default
    source = (
        f"{env_var}={raw}" if os.environ.get(env_var) else f"the default {raw} ({env_var} unset)"
    )
    url = make_url(raw)
    try:
        if what == "PostgreSQL":
            with _pg_admin(url) as conn:
                conn.execute("SELECT 1")
        else:
            with _mysql_admin(url) as conn, conn.cursor() as cur:
                cur.execute("SELECT 1")
    except Exception as exc:
        pytest.fail(
            f"{what} test server not reachable at {source}: {exc}\n"
            f"Run the tests with ./scripts/test, which starts PostgreSQL and MariaDB when needed "
            f"and sets {PG_ENV} / {MYSQL_ENV} (or export {env_var} yourself).",
            pytrace=False,
        )
    return url


# --------------------------------------------------------------------------- PostgreSQL


def _pg_admin(url: URL) -> psycopg.Connection[Any]:
    params: dict[str, Any] = {str(k): v for k, v in url.query.items()}
    return psycopg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password or None,
        dbname=url.database or "postgres",
        connect_timeout=CONNECT_TIMEOUT,
        autocommit=True,
        **params,
    )


def pg_database_exists(server_url: str | URL, name: str) -> bool:
    with _pg_admin(make_url(server_url)) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
    return bool(row and row[0])


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """Admin URL (SQLAlchemy string) of the PostgreSQL test server; fails if unreachable."""
    return _server_url(PG_ENV, DEFAULT_PG_URL, "PostgreSQL").render_as_string(hide_password=False)


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test only; dropped (WITH FORCE) afterwards."""
    server = make_url(pg_server_url)
    name = unique_db_name()
    with _pg_admin(server) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with _pg_admin(server) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


# --------------------------------------------------------------------------- MariaDB


def _mysql_admin(url: URL) -> pymysql.connections.Connection[Any]:
    return pymysql.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
        connect_timeout=CONNECT_TIMEOUT,
        autocommit=True,
    )


def mariadb_database_exists(server_url: str | URL, name: str) -> bool:
    with _mysql_admin(make_url(server_url)) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = %s", (name,)
        )
        row = cur.fetchone()
    return bool(row and row[0])


@pytest.fixture(scope="session")
def mariadb_server_url() -> str:
    """Admin URL (SQLAlchemy string) of the MariaDB test server; fails if unreachable."""
    return _server_url(MYSQL_ENV, DEFAULT_MYSQL_URL, "MariaDB").render_as_string(
        hide_password=False
    )


@pytest.fixture
def mariadb_url(mariadb_server_url: str) -> Iterator[str]:
    """A fresh, empty MariaDB database for this test only; dropped afterwards.

    Sessions still connected to it at teardown are killed first (like PostgreSQL's FORCE).
    """
    server = make_url(mariadb_server_url)
    name = unique_db_name()
    with _mysql_admin(server) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with _mysql_admin(server) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT id FROM information_schema.processlist WHERE db = %s AND id <> CONNECTION_ID()",
                (name,),
            )
            for (session_id,) in cur.fetchall():
                with contextlib.suppress(pymysql.err.OperationalError):  # already gone
                    cur.execute(f"KILL {int(session_id)}")
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


# --------------------------------------------------------------------------- SQLite


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """``sqlite:///<tmp_path>/test.db``; the file is not created."""
    return f"sqlite:///{tmp_path / 'test.db'}"


# --------------------------------------------------------------------------- markers


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [
        f"abmigrate test servers: {PG_ENV}={os.environ.get(PG_ENV) or '(unset)'} "
        f"{MYSQL_ENV}={os.environ.get(MYSQL_ENV) or '(unset)'}"
    ]


_MARKERS_BY_FIXTURE = {
    "pg_url": "postgres",
    "pg_server_url": "postgres",
    "mariadb_url": "mariadb",
    "mariadb_server_url": "mariadb",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        fixturenames = getattr(item, "fixturenames", ())
        for marker in sorted({m for f, m in _MARKERS_BY_FIXTURE.items() if f in fixturenames}):
            item.add_marker(getattr(pytest.mark, marker))


# --------------------------------------------------------------------------- CLI


@dataclass(frozen=True)
class CliResult:
    args: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str

    def __str__(self) -> str:  # handy in assertion messages: assert r.exit_code == 0, r
        return (
            f"$ abmigrate {' '.join(self.args)}\n[exit {self.exit_code}]\n"
            f"--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr}"
        )


RunCli = Callable[..., CliResult]


def _cli_environment(env: Mapping[str, str | None] | None) -> dict[str, str]:
    # A developer's shell may select an environment; tests choose theirs explicitly.
    inherited = {
        key: value
        for key, value in os.environ.items()
        if key not in ("ABMIGRATE_ENV", "ENVIRONMENT", "DATABASE_URL")
    }
    full_env = {**inherited, "NO_COLOR": "1", "COLUMNS": "200"}
    for key, value in (env or {}).items():
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = value
    return full_env


def _cli_runner(tmp_path: Path, *, in_process: bool) -> RunCli:
    def run(
        *args: str | os.PathLike[str],
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str | None] | None = None,
        input: str | None = None,
        timeout: float = 120,
    ) -> CliResult:
        str_args = tuple(os.fspath(a) for a in args)
        where = Path(cwd) if cwd is not None else tmp_path
        if in_process:
            from cli_inprocess import run_in_process

            code, stdout, stderr = run_in_process(
                str_args, cwd=where, env=_cli_environment(env), input=input
            )
            return CliResult(str_args, code, stdout, stderr)
        proc = subprocess.run(
            [sys.executable, "-m", "abmigrate", *str_args],
            cwd=where,
            env=_cli_environment(env),
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return CliResult(str_args, proc.returncode, proc.stdout, proc.stderr)

    return run


@pytest.fixture
def run_cli(tmp_path: Path) -> RunCli:
    """Run the CLI in this process, as ``python -m abmigrate`` would (see ``cli_inprocess``).

    ``run_cli(*args, cwd=tmp_path, env=None, input=None, timeout=120) -> CliResult``

    The environment is ``os.environ`` + ``NO_COLOR=1`` + ``COLUMNS=200``, updated with ``env``
    (a value of None removes that variable); it is restored afterwards, like the working
    directory, ``sys.path``, logging and the project's modules. stdin is empty unless
    ``input`` is given. ``timeout`` is accepted for ``run_cli_process``'s sake and not
    enforced here. Use ``run_cli_process`` where a real process matters.
    """
    return _cli_runner(tmp_path, in_process=True)


@pytest.fixture
def run_cli_process(tmp_path: Path) -> RunCli:
    """Run the real CLI: ``[sys.executable, "-m", "abmigrate", *args]`` in a subprocess.

    Same signature and environment as ``run_cli``; for what needs a real process (start-up,
    signals, locks between processes, resource limits).
    """
    return _cli_runner(tmp_path, in_process=False)


# --------------------------------------------------------------------------- scenarios


@pytest.fixture
def copy_scenario(tmp_path: Path) -> Callable[..., Path]:
    """``copy_scenario(name, dest=tmp_path) -> Path``: copy ``tests/scenarios/<name>/`` to
    ``dest/<name>`` and return that path."""

    def copy(name: str, dest: Path | None = None) -> Path:
        source = SCENARIOS_DIR / name
        if not source.is_dir():
            known: Sequence[str] = (
                sorted(
                    p.name
                    for p in SCENARIOS_DIR.iterdir()
                    if p.is_dir() and not p.name.startswith("_")
                )
                if SCENARIOS_DIR.is_dir()
                else []
            )
            pytest.fail(f"no scenario {name!r} in {SCENARIOS_DIR} (known: {', '.join(known)})")
        target = (dest if dest is not None else tmp_path) / name
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        return target

    return copy
