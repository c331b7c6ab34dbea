"""Tests of the test infrastructure itself (tests/conftest.py): real servers, one fresh
database per test, dropped at teardown, failing loudly when no server is reachable."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

# Independent of conftest's own helpers, so the check does not trust the code it checks.


def pg_database_exists(server_url: str, name: str) -> bool:
    u = make_url(server_url)
    with psycopg.connect(
        host=u.host, port=u.port, user=u.username, dbname=u.database, autocommit=True
    ) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


def mariadb_database_exists(server_url: str, name: str) -> bool:
    u = make_url(server_url)
    with (
        pymysql.connect(host=u.host, port=u.port or 3306, user=u.username) as conn,
        conn.cursor() as cur,
    ):
        cur.execute("SHOW DATABASES LIKE %s", (name,))
        return cur.fetchone() is not None


_seen_pg: set[str] = set()
_seen_mariadb: set[str] = set()


@pytest.fixture
def pg_dropped_after(pg_server_url: str) -> Iterator[list[str]]:
    """Request BEFORE pg_url: set up first, so torn down after it; checks the drop happened."""
    names: list[str] = []
    yield names
    for name in names:
        assert not pg_database_exists(pg_server_url, name), f"{name} survived teardown"


@pytest.fixture
def mariadb_dropped_after(mariadb_server_url: str) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        assert not mariadb_database_exists(mariadb_server_url, name), f"{name} survived teardown"


@pytest.mark.parametrize("round_", [1, 2, 3])
def test_pg_url_fresh_empty_distinct_and_dropped(
    pg_dropped_after: list[str], pg_url: str, pg_server_url: str, round_: int
) -> None:
    name = make_url(pg_url).database
    assert name is not None
    assert pg_url == f"postgresql+psycopg://postgres@127.0.0.1:{make_url(pg_url).port}/{name}"
    assert name not in _seen_pg
    for earlier in _seen_pg:  # previous rounds' databases were dropped
        assert not pg_database_exists(pg_server_url, earlier)
    _seen_pg.add(name)
    pg_dropped_after.append(name)
    assert pg_database_exists(pg_server_url, name)

    engine = sa.create_engine(pg_url)
    try:
        with engine.begin() as conn:
            assert conn.scalar(sa.text("SELECT current_database()")) == name
            assert sa.inspect(conn).get_table_names() == []
            # leave an open session and a table behind: teardown must still drop the database
            conn.execute(sa.text("CREATE TABLE leftover (id int)"))
        held = engine.connect()
        held.execute(sa.text("SELECT 1"))
        held.close()
    finally:
        engine.dispose()


@pytest.mark.parametrize("round_", [1, 2, 3])
def test_mariadb_url_fresh_empty_distinct_and_dropped(
    mariadb_dropped_after: list[str], mariadb_url: str, mariadb_server_url: str, round_: int
) -> None:
    name = make_url(mariadb_url).database
    assert name is not None
    assert mariadb_url.startswith("mysql+pymysql://root@127.0.0.1:")
    assert name not in _seen_mariadb
    for earlier in _seen_mariadb:
        assert not mariadb_database_exists(mariadb_server_url, earlier)
    _seen_mariadb.add(name)
    mariadb_dropped_after.append(name)
    assert mariadb_database_exists(mariadb_server_url, name)

    engine = sa.create_engine(mariadb_url)
    try:
        with engine.begin() as conn:
            assert conn.scalar(sa.text("SELECT DATABASE()")) == name
            assert sa.inspect(conn).get_table_names() == []
            conn.execute(sa.text("CREATE TABLE leftover (id int)"))
    finally:
        engine.dispose()


def test_markers_are_added(request: pytest.FixtureRequest, pg_url: str, mariadb_url: str) -> None:
    assert request.node.get_closest_marker("postgres") is not None
    assert request.node.get_closest_marker("mariadb") is not None


def test_sqlite_url(sqlite_url: str, tmp_path: Path) -> None:
    path = tmp_path / "test.db"
    assert sqlite_url == f"sqlite:///{path}"
    assert not path.exists()
    engine = sa.create_engine(sqlite_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (id int)"))
    finally:
        engine.dispose()
    assert path.exists()


def test_unreachable_server_fails_loudly_never_skips(tmp_path: Path) -> None:
    """With the server URL pointing at a closed port, a pg_url test FAILS with a hint."""
    conftest = Path(__file__).resolve().parents[1] / "conftest.py"
    (tmp_path / "conftest.py").write_text(conftest.read_text())
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nmarkers =\n    postgres: pg\n    mariadb: mariadb\n"
    )
    (tmp_path / "test_inner.py").write_text(
        textwrap.dedent(
            """
            def test_needs_pg(pg_url):
                raise AssertionError("must not get here")
            """
        )
    )
    env = {**os.environ, "ABMIGRATE_TEST_PG_URL": "postgresql+psycopg://postgres@127.0.0.1:1/x"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", "test_inner.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "skipped" not in out
    assert "PostgreSQL test server not reachable" in out
    assert "./scripts/test" in out


@pytest.mark.parametrize("runner", ["run_cli", "run_cli_process"])
def test_run_cli_runs_the_real_entry_point(request: pytest.FixtureRequest, runner: str) -> None:
    run_cli = request.getfixturevalue(runner)
    ok = run_cli("--help")
    assert ok.exit_code == 0, ok
    assert "Usage:" in ok.stdout
    bad = run_cli("--no-such-option")
    assert bad.exit_code == 2, bad
    assert "--no-such-option" in bad.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("--no-such-option",),
        ("history", "--format", "json"),
        ("upgrade",),  # no URL: one error line and a hint on stderr, exit 2
    ],
)
def test_in_process_cli_shows_what_the_subprocess_shows(
    run_cli: Any, run_cli_process: Any, copy_scenario: Any, args: tuple[str, ...]
) -> None:
    project = copy_scenario("linear")
    options = ("--alembic-ini", str(project / "alembic.ini"))
    inside = run_cli(*options, *args, cwd=project, env={"DATABASE_URL": None})
    real = run_cli_process(*options, *args, cwd=project, env={"DATABASE_URL": None})
    assert (inside.exit_code, inside.stdout, inside.stderr) == (
        real.exit_code,
        real.stdout,
        real.stderr,
    )


def test_in_process_cli_starts_each_run_afresh(
    run_cli: Any, copy_scenario: Any, tmp_path: Path
) -> None:
    """A project's modules (here settings read once at import) are imported anew by each run,
    and the process is left as it was: environment, directory, sys.path, logging, modules."""
    import logging

    before = (dict(os.environ), os.getcwd(), list(sys.path), list(logging.getLogger().handlers))
    for name in ("one", "two"):
        project = copy_scenario("cached_url_env", dest=tmp_path / name)
        url = f"sqlite:///{tmp_path / name}.db"
        done = run_cli("upgrade", cwd=project, env={"DATABASE_URL": url, "APP_DATABASE_URL": url})
        assert done.exit_code == 0, done
        engine = sa.create_engine(url)
        try:
            with engine.connect() as connection:
                assert sa.inspect(connection).has_table("alembic_version"), name
        finally:
            engine.dispose()
        assert "app_settings" not in sys.modules
        assert not [
            module
            for module in list(sys.modules.values())
            if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path))
        ]
    after = (dict(os.environ), os.getcwd(), list(sys.path), list(logging.getLogger().handlers))
    assert after == before


def test_copy_scenario_rejects_unknown_names(copy_scenario: Any) -> None:
    with pytest.raises(pytest.fail.Exception, match="no scenario 'does-not-exist'"):
        copy_scenario("does-not-exist")
