"""The database abmigrate names is the one that changes.

env.py runs unchanged, but on abmigrate's connection: an env.py that builds its engine from
its own setting and reaches another database is refused before any revision runs and before
any backup is taken (exit 2, both databases named, passwords masked, the setting named);
env.py's own version table and search_path are followed instead of refused.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from runner_helpers import make_project, query, versions
from sqlalchemy.engine import make_url

PASSWORD = "s3cr3t-pw"


def _patch_env(root: Path, old: str, new: str) -> None:
    env_py = root / "env.py"
    text = env_py.read_text()
    assert old in text
    env_py.write_text(text.replace(old, new))


def _with_password(url: str) -> str:
    # The test server trusts every connection: a password is accepted and must never show.
    return make_url(url).set(password=PASSWORD).render_as_string(hide_password=False)


@pytest.fixture
def other_pg_url(pg_server_url: str) -> Iterator[str]:
    """A second fresh PostgreSQL database: the one env.py's own setting names."""
    server = make_url(pg_server_url)
    name = f"abm_other_{secrets.token_hex(6)}"
    dsn = f"host={server.host} port={server.port or 5432} user={server.username} dbname=postgres"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _own_url_project(copy_scenario, policies=None) -> Path:
    """runner_chain whose env.py ignores sqlalchemy.url and reads $APP_DATABASE_URL."""
    root = make_project(copy_scenario, policies)
    _patch_env(
        root,
        'engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)',
        "import os\n"
        '    engine = create_engine(os.environ["APP_DATABASE_URL"], poolclass=pool.NullPool)',
    )
    return root


def _tables(url: str) -> list[str]:
    rows = query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return sorted(str(row[0]) for row in rows)


def test_env_py_reaching_another_database_is_refused_by_every_command(
    copy_scenario, run_cli, pg_url, other_pg_url, pg_server_url
):
    root = _own_url_project(
        copy_scenario,
        {"production": {"require_backup": True, "require_confirmation": True}},
    )
    target, elsewhere = _with_password(pg_url), _with_password(other_pg_url)
    env = {"DATABASE_URL": target, "APP_DATABASE_URL": elsewhere}
    commands = [
        ("upgrade",),
        ("upgrade", "--dry-run"),
        ("--env", "production", "upgrade", "--yes"),
        ("downgrade", "-1", "--yes"),
        ("stamp", "r2"),
        ("diagnose",),
        ("check", "--url", _with_password(pg_server_url), "--checks", "round_trip"),
    ]
    for args in commands:
        result = run_cli(*args, cwd=root, env=env)
        shown = result.stdout + result.stderr
        assert result.exit_code == 2, (args, result)
        assert "env.py connects to postgresql database" in result.stderr, (args, result)
        assert make_url(other_pg_url).database in result.stderr, (args, result)
        assert "$APP_DATABASE_URL" in result.stderr, (args, result)
        assert PASSWORD not in shown, (args, result)
        assert "Traceback" not in shown, (args, result)
    # Nothing changed anywhere: no revision, no table, no journal, no backup.
    assert _tables(pg_url) == []
    assert _tables(other_pg_url) == []
    backups = root / "backups"
    assert not backups.exists() or not any(backups.iterdir())


def test_env_py_with_its_own_engine_on_the_same_database_is_followed(
    copy_scenario, run_cli, pg_url
):
    root = _own_url_project(copy_scenario)
    # Another spelling of the same database (the socket-less address, no password).
    env = {"DATABASE_URL": _with_password(pg_url), "APP_DATABASE_URL": pg_url}
    result = run_cli("upgrade", cwd=root, env=env)
    assert result.exit_code == 0, result
    assert versions(pg_url) == ["r5"]
    assert "abmigrate_journal" in _tables(pg_url)
    status = run_cli("status", cwd=root, env=env)
    assert status.exit_code == 0, status
    assert "r5" in status.stdout


def test_a_custom_version_table_is_used_by_every_command(copy_scenario, run_cli, sqlite_url):
    root = make_project(copy_scenario)
    _patch_env(
        root,
        "context.configure(connection=connection, transaction_per_migration=True)",
        "context.configure(connection=connection, transaction_per_migration=True,"
        ' version_table="schema_revisions")',
    )
    env = {"DATABASE_URL": sqlite_url}
    dry = run_cli("upgrade", "--dry-run", cwd=root, env=env)
    assert dry.exit_code == 0, dry
    applied = run_cli("upgrade", "r4", cwd=root, env=env)
    assert applied.exit_code == 0, applied
    assert "verified" in applied.stderr + applied.stdout
    assert query(sqlite_url, "SELECT version_num FROM schema_revisions") == [("r4",)]
    assert query(sqlite_url, "SELECT name FROM sqlite_master WHERE name = 'alembic_version'") == []
    status = run_cli("status", "--format", "json", cwd=root, env=env)
    assert status.exit_code == 0, status
    assert '"r4"' in status.stdout
    assert '"behind"' in status.stdout
    rest = run_cli("upgrade", cwd=root, env=env)
    assert rest.exit_code == 0, rest
    assert query(sqlite_url, "SELECT version_num FROM schema_revisions") == [("r5",)]
    down = run_cli("downgrade", "-1", "--yes", cwd=root, env=env)
    assert down.exit_code == 0, down
    assert query(sqlite_url, "SELECT version_num FROM schema_revisions") == [("r4",)]


def test_a_search_path_set_by_env_py_is_followed(copy_scenario, run_cli, pg_url):
    root = make_project(copy_scenario)
    _patch_env(
        root,
        "        with engine.connect() as connection:\n",
        "        with engine.connect() as connection:\n"
        '            connection.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS app")\n'
        '            connection.exec_driver_sql("SET search_path TO app")\n'
        "            connection.commit()\n",
    )
    env = {"DATABASE_URL": pg_url}
    result = run_cli("upgrade", cwd=root, env=env)
    assert result.exit_code == 0, result
    assert query(pg_url, "SELECT version_num FROM app.alembic_version") == [("r5",)]
    assert query(pg_url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'app'")[0][0] >= 3
    assert _tables(pg_url) == []  # nothing in public: the journal lives next to app.alembic_version
    assert query(pg_url, "SELECT count(*) FROM app.abmigrate_journal") == [(1,)]
    status = run_cli("status", "--format", "json", cwd=root, env=env)
    assert status.exit_code == 0, status
    assert '"r5"' in status.stdout
    assert '"up_to_date"' in status.stdout
