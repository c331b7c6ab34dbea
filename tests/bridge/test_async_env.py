"""Async env.py files work unchanged, through the real CLI, on PostgreSQL (asyncpg) and SQLite
(aiosqlite).

Two scenario projects, the same four revisions (a table, a second table with a NOT NULL
foreign key, a NOT NULL column with a default, an index built CONCURRENTLY on PostgreSQL):

- ``async_env``: Alembic's ``async`` template (``async_engine_from_config``,
  ``asyncio.run``, ``connection.run_sync``), its URL from ``sqlalchemy.url``;
- ``worker_thread_env``: shaped like prefect 3's env.py, whose online run is
  ``anyio.from_thread.run(apply_migrations)`` at module level: it only works when started in
  an AnyIO worker thread.

The project's URL names the async driver (``postgresql+asyncpg://``, ``sqlite+aiosqlite://``);
abmigrate's own connections (lock, journal, fingerprints, backups) use the sync driver. The
assertions read the database through a sync driver of their own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

SCENARIOS = ["async_env", "worker_thread_env"]
ALL = ["a1", "a2", "a3", "a4"]
ASYNC_DRIVERS = {"postgresql": "postgresql+asyncpg", "sqlite": "sqlite+aiosqlite"}


class Target:
    """The test's own database: the async URL the project uses, the sync one tests read."""

    def __init__(self, sync_url: str) -> None:
        self.sync = sync_url
        parsed = make_url(sync_url)
        self.dialect = parsed.get_backend_name()
        self.url = parsed.set(drivername=ASYNC_DRIVERS[self.dialect]).render_as_string(
            hide_password=False
        )

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        engine = sa.create_engine(self.sync, poolclass=NullPool)
        try:
            with engine.connect() as connection:
                return [tuple(row) for row in connection.execute(sa.text(sql))]
        finally:
            engine.dispose()

    def execute(self, *statements: str) -> None:
        engine = sa.create_engine(self.sync, poolclass=NullPool)
        try:
            with engine.begin() as connection:
                for statement in statements:
                    connection.execute(sa.text(statement))
        finally:
            engine.dispose()

    def tables(self) -> set[str]:
        engine = sa.create_engine(self.sync, poolclass=NullPool)
        try:
            with engine.connect() as connection:
                return set(sa.inspect(connection).get_table_names())
        finally:
            engine.dispose()

    def versions(self) -> list[str]:
        if "alembic_version" not in self.tables():
            return []
        return sorted(str(row[0]) for row in self.query("SELECT version_num FROM alembic_version"))

    def shape(self) -> dict[str, Any]:
        """What the revisions built: tables, customers' columns (nullability), orders' indexes."""
        engine = sa.create_engine(self.sync, poolclass=NullPool)
        try:
            with engine.connect() as connection:
                inspector = sa.inspect(connection)
                tables = set(inspector.get_table_names()) - {"alembic_version", "abmigrate_journal"}
                columns = (
                    {c["name"]: c["nullable"] for c in inspector.get_columns("customers")}
                    if "customers" in tables
                    else {}
                )
                indexes = (
                    sorted(str(i["name"]) for i in inspector.get_indexes("orders"))
                    if "orders" in tables
                    else []
                )
        finally:
            engine.dispose()
        return {"tables": tables, "customers": columns, "orders_indexes": indexes}

    def journal(self) -> list[dict[str, Any]]:
        rows = self.query("SELECT record, outcome FROM abmigrate_journal ORDER BY started_at")
        return [{**json.loads(record), "outcome": outcome} for record, outcome in rows]


AT_HEAD = {
    "tables": {"customers", "orders"},
    "customers": {"id": False, "email": False, "status": False},
    "orders_indexes": ["ix_orders_customer_id"],
}
AT_A3 = {**AT_HEAD, "orders_indexes": []}


PROBE_REVISION = '''"""probe the connection the revisions run on

Revision ID: a5
Revises: a4
"""
from alembic import op

revision = "a5"
down_revision = "a4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    found = [bind.dialect.driver]
    if bind.dialect.name == "postgresql":
        found.append(bind.exec_driver_sql("SHOW lock_timeout").scalar())
    if found not in (["asyncpg", "2s"], ["aiosqlite"]):
        raise RuntimeError(f"revision ran on {found}")


def downgrade() -> None:
    pass
'''


@pytest.fixture(params=["postgres", "sqlite"])
def target(request: pytest.FixtureRequest) -> Target:
    fixture = {"postgres": "pg_url", "sqlite": "sqlite_url"}[request.param]
    return Target(str(request.getfixturevalue(fixture)))


@pytest.fixture(params=SCENARIOS)
def project(request: pytest.FixtureRequest, copy_scenario: Callable[..., Path]) -> Path:
    return copy_scenario(request.param)


@pytest.fixture
def cli(project: Path, run_cli: Any, target: Target) -> Callable[..., Any]:
    def run(*args: str, **kwargs: Any) -> Any:
        return run_cli(*args, cwd=project, env={"DATABASE_URL": target.url}, **kwargs)

    return run


def test_upgrade_status_journal_downgrade_and_dry_run(cli, target: Target) -> None:  # type: ignore[no-untyped-def]
    upgraded = cli("upgrade")
    assert upgraded.exit_code == 0, upgraded
    assert "applied 4 revision(s) (upgrade)" in upgraded.stdout
    assert "development is now at a4" in upgraded.stdout
    assert "schema matches the models" in upgraded.stderr
    assert target.versions() == ["a4"]
    assert target.shape() == AT_HEAD

    status = cli("status", "--format", "json")
    assert status.exit_code == 0, status
    record = json.loads(status.stdout)
    assert record["database"] == target.url  # the project's own (async) URL, no password
    assert (record["current"], record["heads"], record["state"]) == (["a4"], ["a4"], "up_to_date")
    assert record["last_run"]["outcome"] == "succeeded"
    shown = cli("status")
    assert shown.exit_code == 0, shown
    assert "up_to_date" in shown.stdout

    runs = target.journal()
    assert len(runs) == 1
    assert runs[0]["outcome"] == "succeeded"
    assert [step["revision"] for step in runs[0]["applied"]] == ALL

    down = cli("downgrade", "-1")
    assert down.exit_code == 0, down
    assert "development is now at a3" in down.stdout
    assert target.versions() == ["a3"]
    assert target.shape() == AT_A3

    dry = cli("upgrade", "--dry-run")
    assert dry.exit_code == 0, dry
    assert "was undone" in dry.stdout
    assert "development stays at a3" in dry.stdout
    assert target.versions() == ["a3"]
    assert target.shape() == AT_A3
    assert [run["outcome"] for run in target.journal()] == ["succeeded", "succeeded"]

    again = cli("upgrade")
    assert again.exit_code == 0, again
    assert target.versions() == ["a4"]
    assert target.shape() == AT_HEAD

    diagnosed = cli("diagnose", "--format", "json")
    assert diagnosed.exit_code == 0, diagnosed
    report = json.loads(diagnosed.stdout)
    assert report["state"] == "up_to_date"
    assert report["exact_matches"] == ["a4"]
    assert report["recommendation"]["summary"] == (
        "the schema matches the recorded revision a4 (head)"
    )
    assert report["recommendation"]["commands"] == []
    assert target.versions() == ["a4"]  # diagnose replays on scratch databases only


def test_production_upgrade_backs_up_the_target_first(  # type: ignore[no-untyped-def]
    cli, target: Target, project: Path
) -> None:
    assert cli("upgrade", "a3").exit_code == 0
    target.execute(
        "INSERT INTO customers (id, email) VALUES (1, 'a@example.com')",
        "INSERT INTO customers (id, email, status) VALUES (2, 'b@example.com', 'gone')",
    )

    # A last revision that fails unless it runs on env.py's own async connection (the
    # project's driver: asyncpg / aiosqlite), with production's lock_timeout in force.
    (project / "versions" / "a5_probe_connection.py").write_text(PROBE_REVISION)

    upgraded = cli("--env", "production", "upgrade", "--yes")
    assert upgraded.exit_code == 0, upgraded
    assert "production is now at a5" in upgraded.stdout
    assert "backup: " in upgraded.stdout
    assert target.versions() == ["a5"]
    assert target.shape() == AT_HEAD

    listed = cli("--env", "production", "backups", "--format", "json")
    assert listed.exit_code == 0, listed
    backups = json.loads(listed.stdout)["backups"]
    assert len(backups) == 1
    backup = backups[0]
    assert backup["database"] == target.url
    assert backup["dialect"] == target.dialect
    assert backup["reason"] == "pre-upgrade"
    assert backup["revisions"] == ["a3"]
    assert backup["verified"] is True
    manifest = json.loads((Path(backup["path"]) / "manifest.json").read_text())
    assert manifest["database"] == target.url
    tables = {name.removeprefix("public."): facts for name, facts in manifest["tables"].items()}
    assert tables["customers"]["rows"] == 2
    assert tables["orders"]["rows"] == 0
    assert tables["alembic_version"]["rows"] == 1
    assert Path(backup["path"]).parent.parent == project / "backups"

    verified = cli("--env", "production", "verify-backup", "latest", "--restore-test")
    assert verified.exit_code == 0, verified
    assert f"backup {backup['id']} verified" in verified.stdout
    assert "restore test" in verified.stdout


def test_check_round_trips_on_scratch_databases(cli, target: Target) -> None:  # type: ignore[no-untyped-def]
    # Scratch databases are created next to the URL (on its server; temporary files for
    # SQLite) with the same async driver, so env.py builds its async engine there too; the
    # database the URL names is never written to.
    checked = cli("check", "--url", target.url)
    assert checked.exit_code == 0, checked
    assert "passed: 6 of 6 checks" in checked.stdout
    assert "4 revision(s) round-tripped" in checked.stdout
    assert "the schema at a4 matches the models" in checked.stdout

    # Without --url the scratch databases are temporary SQLite files, through aiosqlite
    # since the environment's URL names an async driver.
    default = cli("check", "--checks", "round_trip")
    assert default.exit_code == 0, default
    assert "scratch databases: sqlite+aiosqlite://" in default.stdout
    assert "4 revision(s) round-tripped" in default.stdout

    if target.dialect == "sqlite":
        assert not Path(str(make_url(target.sync).database)).exists()
    else:
        assert target.tables() == set()


def test_wrong_async_database_is_refused_before_anything_runs(  # type: ignore[no-untyped-def]
    project: Path, run_cli: Any, target: Target, tmp_path: Path
) -> None:
    # env.py's async engine reaches another database than the one abmigrate was told to
    # change: the run stops before any revision, naming the line that builds that engine.
    other = Target(f"sqlite:///{tmp_path / 'other.db'}")
    env_py = project / "env.py"
    source = env_py.read_text()
    edited = source.replace(
        "config.get_section(config.config_ini_section, {})",  # async_env
        f"{{'sqlalchemy.url': {other.url!r}}}",
    ).replace(
        'create_async_engine(config.get_main_option("sqlalchemy.url")',  # worker_thread_env
        f"create_async_engine({other.url!r}",
    )
    assert edited != source
    env_py.write_text(edited)

    refused = run_cli("upgrade", cwd=project, env={"DATABASE_URL": target.url})
    assert refused.exit_code == 2, refused
    assert f"env.py connects to SQLite file {tmp_path / 'other.db'}" in refused.stderr
    assert "nothing was run" in refused.stderr
    assert "env.py:" in refused.stderr  # the line that builds the engine
    assert target.versions() == []
    assert other.versions() == []


def test_env_py_asking_for_the_current_event_loop(  # type: ignore[no-untyped-def]
    copy_scenario: Callable[..., Path], run_cli: Any, target: Target
) -> None:
    # The pre-asyncio.run idiom, `asyncio.get_event_loop().run_until_complete(...)`, after the
    # application's settings module ran asyncio.run() at import (which leaves the main thread
    # without a current event loop): env.py fails before configuring anything, and abmigrate
    # starts it again with an event loop set. Every revision runs env.py again, in one process.
    project = copy_scenario("async_env")
    (project / "app_settings.py").write_text(
        "import asyncio\n\n\nasync def _load() -> str:\n    return 'loaded'\n\n\n"
        "SECRETS = asyncio.run(_load())\n"
    )
    env_py = project / "env.py"
    source = env_py.read_text()
    edited = source.replace(
        "asyncio.run(run_async_migrations())",
        "asyncio.get_event_loop().run_until_complete(run_async_migrations())",
    ).replace(
        "from alembic import context\n",
        "import app_settings  # noqa: F401\nfrom alembic import context\n",
    )
    assert edited.count("get_event_loop") == 1 and "app_settings" in edited
    env_py.write_text(edited)
    env = {"DATABASE_URL": target.url}

    upgraded = run_cli("upgrade", cwd=project, env=env)
    assert upgraded.exit_code == 0, upgraded
    assert "development is now at a4" in upgraded.stdout
    assert target.versions() == ["a4"]
    assert target.shape() == AT_HEAD

    down = run_cli("downgrade", "-2", cwd=project, env=env)
    assert down.exit_code == 0, down
    assert target.versions() == ["a2"]
    assert "status" not in target.shape()["customers"]
