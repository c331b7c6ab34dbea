"""Scratch runs (diagnose's and drift's replays, check's round trips) of env.py files that
are unusual in how they treat the connection or the URL, through the real CLI on PostgreSQL
and SQLite:

- ``own_transaction_env`` (shaped like Arize Phoenix's): on the handed connection env.py
  begins its own transaction around the whole run, so nothing is committed before the run
  ends; its tables have serial, bigserial and identity primary keys (sequences);
- ``cached_url_env`` (shaped like prefect's): env.py takes its URL from application settings
  read once per process at import, ignoring ``sqlalchemy.url`` and the handed connection, so
  once a process has run it against the real database it cannot be pointed at a scratch one:
  abmigrate runs that work in a fresh process whose environment names the scratch database.

At head, every read-only command must say the database is up to date and leave it exactly as
it was.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from abmigrate.db.database import read_version_rows
from abmigrate.db.fingerprint import fingerprint_url

PASSWORD = "s3cr3t-pw"


@pytest.fixture(params=["postgresql", "sqlite"])
def target(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        url: str = request.getfixturevalue("pg_url")
        # The test server trusts every connection: a password is accepted and must never show.
        return make_url(url).set(password=PASSWORD).render_as_string(hide_password=False)
    sqlite: str = request.getfixturevalue("sqlite_url")
    return sqlite


def _snapshot(url: str) -> tuple[list[str] | None, str]:
    return read_version_rows(url), fingerprint_url(url).digest


def _read_only_commands_at_head(run_cli: Any, root: Path, env: dict[str, str], url: str) -> None:
    before = _snapshot(url)

    diagnosis = run_cli("--format", "json", "diagnose", cwd=root, env=env)
    assert diagnosis.exit_code in (0, 1), diagnosis
    record = json.loads(diagnosis.stdout)
    assert record["state"] == "up_to_date", record["recommendation"]
    assert record["exact_matches"][-1:] == [record["heads"][0]], record
    assert not record["model_drift"], record["model_drift"]
    assert diagnosis.exit_code == 0, diagnosis

    drift = run_cli("drift", "--against", "head", cwd=root, env=env)
    assert drift.exit_code == 0, drift
    assert "no drift" in drift.stdout, drift

    check = run_cli("check", "--url", url, "--skip", "lint", cwd=root, env=env)
    assert check.exit_code == 0, check
    assert "3 revision(s) round-tripped" in check.stdout, check
    assert "✗" not in check.stdout, check

    for result in (diagnosis, drift, check):
        shown = result.stdout + result.stderr
        assert PASSWORD not in shown, result
        assert "Traceback" not in shown, result
    assert _snapshot(url) == before


def test_env_py_with_its_own_transaction_round_trips_and_matches_its_replay(
    copy_scenario: Any, run_cli: Any, target: str
) -> None:
    root = copy_scenario("own_transaction_env")
    env = {"DATABASE_URL": target}
    upgraded = run_cli("upgrade", cwd=root, env=env)
    assert upgraded.exit_code == 0, upgraded
    assert read_version_rows(target) == ["t3"]
    if target.startswith("postgresql"):
        # The sequences behind the serial and identity keys are part of the schema the
        # replay must produce too.
        sequences = [key for key in fingerprint_url(target).objects if key.startswith("sequence")]
        assert len(sequences) == 3, sequences
    _read_only_commands_at_head(run_cli, root, env, target)


def _runs(log: Path) -> list[tuple[str, str, str]]:
    """(process id, database, command line) of each env.py run logged since the last call."""
    lines = log.read_text().splitlines() if log.exists() else []
    log.write_text("")
    return [(pid, database, command) for pid, database, command in (x.split("\t") for x in lines)]


def _processes(runs: list[tuple[str, str, str]], database_part: str) -> set[str]:
    return {pid for pid, database, _ in runs if database_part in database}


def test_env_py_caching_its_url_gets_a_fresh_process_for_scratch_runs(
    copy_scenario: Any, run_cli: Any, target: str, tmp_path: Path
) -> None:
    root = copy_scenario("cached_url_env")
    log = tmp_path / "env_runs.log"
    env = {"DATABASE_URL": target, "APP_DATABASE_URL": target, "APP_RUN_LOG": str(log)}
    target_name = str(make_url(target).database)

    # The upgrade runs env.py on the real database, then verifies the result against a
    # replay on a scratch database: env.py's settings name the real one in that process.
    upgraded = run_cli("--env", "verified", "upgrade", cwd=root, env=env)
    assert upgraded.exit_code == 0, upgraded
    assert "verified" in upgraded.stdout + upgraded.stderr, upgraded
    assert read_version_rows(target) == ["c3"]
    runs = _runs(log)
    on_target = _processes(runs, target_name)
    on_scratch = _processes(runs, "abm_scratch_replay")
    assert len(on_target) == 1 and on_scratch, runs
    assert not on_target & on_scratch, runs
    # Scratch URLs (with the password) travel by environment and standard input, never on
    # a command line.
    assert all(PASSWORD not in command_line for _, _, command_line in runs), runs

    _read_only_commands_at_head(run_cli, root, env, target)

    # check: the models check's scratch database is cached by env.py's settings, so the
    # round trip on the next one runs in a fresh process.
    runs = _runs(log)
    models = _processes(runs, "abm_scratch_models")
    walk = _processes(runs, "abm_scratch_round_trip")
    assert models and walk and not models & walk, runs
    fresh = [command for pid, _, command in runs if pid in walk]
    assert all(PASSWORD not in command_line for command_line in fresh), runs


ENUM_REVISION = '''"""create tickets with an enum column

Revision ID: a5
Revises: a4
"""
import sqlalchemy as sa
from alembic import op

revision = "a5"
down_revision = "a4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("priority", sa.Enum("low", "high", name="ticket_priority"), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tickets")
    sa.Enum(name="ticket_priority").drop(op.get_bind(), checkfirst=True)
'''


def test_round_trip_of_an_enum_on_an_async_env_py(
    copy_scenario: Any, run_cli: Any, pg_url: str
) -> None:
    # Between steps the round trip asks which enum types still exist, on env.py's own
    # connection: through asyncpg here, whose placeholders are not psycopg's.
    root = copy_scenario("async_env")
    (root / "versions" / "a5_create_tickets.py").write_text(ENUM_REVISION)
    async_url = make_url(pg_url).set(drivername="postgresql+asyncpg")
    url = async_url.render_as_string(hide_password=False)
    checked = run_cli("check", "--url", url, "--checks", "round_trip", cwd=root, env={})
    assert checked.exit_code == 0, checked
    assert "5 revision(s) round-tripped" in checked.stdout, checked
