"""`rehearse`: pending revisions applied to a scratch copy, measured, reversed, re-applied —
and the scratch database gone afterwards, whatever happened."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from runner_helpers import execute_all as execute
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from abmigrate.db.scratch import SCRATCH_PREFIX

ABPARTS = Path(__file__).resolve().parents[2] / "examples" / "abparts"
I1, I2, I3 = "7e0000000001", "7e0000000002", "7e0000000003"


def scalar(url: str, query: str) -> Any:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return connection.execute(sa.text(query)).scalar()
    finally:
        engine.dispose()


def pg_databases(server_url: str) -> set[str]:
    engine = sa.create_engine(server_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return set(connection.exec_driver_sql("SELECT datname FROM pg_database").scalars())
    finally:
        engine.dispose()


def cli_for(run_cli: Any, project: Path, url: str) -> Any:
    def cli(*args: str, **kwargs: Any) -> Any:
        return run_cli(
            "--alembic-ini", project / "alembic.ini", "--url", url, *args, cwd=project, **kwargs
        )

    return cli


def test_rehearsal_on_a_copy_reports_rewrites_locks_and_rows(
    copy_scenario: Any, run_cli: Any, pg_url: str, pg_server_url: str
) -> None:
    cli = cli_for(run_cli, copy_scenario("state_rehearse"), pg_url)
    assert cli("upgrade", I1).exit_code == 0
    execute(pg_url, ["INSERT INTO items (qty) SELECT g FROM generate_series(1, 50) g"])

    result = cli("rehearse", "--clone", "--format", "json")
    assert result.exit_code == 0, result
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["source"] == "a fresh copy of the database"
    assert report["start"] == [I1]
    steps = {(step["direction"], step["revision"]): step for step in report["steps"]}
    assert list(steps) == [
        ("upgrade", I2),
        ("upgrade", I3),
        ("downgrade", I3),
        ("downgrade", I2),
        ("re-upgrade", I2),
        ("re-upgrade", I3),
    ]
    widen = steps[("upgrade", I2)]
    assert widen["rewritten"] == ["items"]  # ALTER TYPE int -> bigint rewrote the table
    assert widen["locks"]["items"] == "AccessExclusiveLock"
    assert widen["rows_touched"] == {"items": 50}
    assert widen["elapsed_s"] > 0
    add_flag = steps[("upgrade", I3)]
    assert add_flag["rewritten"] == []  # ADD COLUMN without default: no rewrite
    assert add_flag["locks"] == {"items": "AccessExclusiveLock"}
    assert add_flag["rows_touched"] == {}

    # The copy is gone; the database itself was not touched.
    assert report["scratch_database"].startswith(SCRATCH_PREFIX)
    assert report["scratch_database"] not in pg_databases(pg_server_url)
    assert scalar(pg_url, "SELECT version_num FROM alembic_version") == I1
    assert scalar(pg_url, "SELECT count(*) FROM items WHERE note IS NOT NULL") == 0


def test_failing_revision_fails_the_rehearsal_and_drops_the_copy(
    copy_scenario: Any, run_cli: Any, pg_url: str, pg_server_url: str
) -> None:
    # state_shop's last revision adds a unique constraint the data violates.
    cli = cli_for(run_cli, copy_scenario("state_shop"), pg_url)
    assert cli("upgrade", "5a1e00000003").exit_code == 0
    execute(pg_url, ["INSERT INTO customers (name) VALUES ('ada'), ('ada')"])

    result = cli("rehearse", "--clone", "--format", "json")
    assert result.exit_code == 1, result
    report = json.loads(result.stdout)
    assert report["ok"] is False
    failed = report["steps"][-1]
    assert (failed["direction"], failed["revision"], failed["ok"]) == (
        "upgrade",
        "5a1e00000004",
        False,
    )
    assert "uq_customers_name" in failed["error"] or "duplicate" in failed["error"].lower()
    assert report["scratch_database"] not in pg_databases(pg_server_url)
    human = cli("rehearse", "--clone")
    assert human.exit_code == 1
    assert "✗ upgrade    5a1e00000004" in human.stdout
    assert "rehearsal failed" in human.stdout
    assert scalar(pg_url, "SELECT version_num FROM alembic_version") == "5a1e00000003"


def test_interrupted_rehearsal_drops_the_copy(
    copy_scenario: Any, pg_url: str, pg_server_url: str
) -> None:
    project = copy_scenario("state_rehearse")
    base = [sys.executable, "-m", "abmigrate", "--alembic-ini", str(project / "alembic.ini")]
    subprocess.run([*base, "--url", pg_url, "upgrade", I2], check=True, capture_output=True)
    for signum in (signal.SIGTERM, signal.SIGINT):
        process = subprocess.Popen(
            [*base, "--url", pg_url, "rehearse", "--clone"],
            cwd=project,
            env={**os.environ, "REHEARSE_SLEEP": "60", "NO_COLOR": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        mine = f"{SCRATCH_PREFIX}rehearse_{process.pid}_"
        try:
            # Generous bounds, not waits: each ends as soon as its state is reached (a clone
            # and DROP DATABASE on a loaded CI machine can take minutes).
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                sleeping = scalar(
                    pg_server_url,
                    "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'"
                    f" AND datname LIKE '{mine}%'",
                )
                if sleeping:
                    break
                assert process.poll() is None, process.communicate()
                time.sleep(0.1)
            else:
                raise AssertionError("the slow revision never started")
            process.send_signal(signum)
            _, stderr = process.communicate(timeout=300)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        assert process.returncode != 0
        assert "Traceback" not in stderr
        assert not [name for name in pg_databases(pg_server_url) if name.startswith(mine)]
    assert scalar(pg_url, "SELECT version_num FROM alembic_version") == I2


def test_abparts_rehearsal_on_synthetic_rows(
    run_cli: Any, pg_url: str, pg_server_url: str, tmp_path: Path
) -> None:
    cli = cli_for(run_cli, ABPARTS, pg_url)
    env = {"ABMIGRATE_CACHE_DIR": str(tmp_path / "cache")}
    assert cli("upgrade", "4f2a9c1e7b30", env=env).exit_code == 0
    result = cli("rehearse", "--scale-rows", "40", "--format", "json", env=env)
    assert result.exit_code == 0, result
    report = json.loads(result.stdout)
    assert report["source"].startswith("40 synthetic rows per table at 4f2a9c1e7b30")
    assert "not filled" not in report["source"]
    upgrades = [step for step in report["steps"] if step["direction"] == "upgrade"]
    assert len(upgrades) == 9
    assert all(step["ok"] and step["elapsed_s"] > 0 for step in report["steps"])
    # Every pending revision is measured; the backfill of parts touches the 40 synthetic rows.
    backfill = next(step for step in upgrades if step["revision"] == "0b4d8f2c6e35")
    assert backfill["rows_touched"].get("parts") == 40
    assert backfill["locks"].get("parts") == "AccessExclusiveLock"
    assert {step["direction"] for step in report["steps"]} == {"upgrade", "downgrade", "re-upgrade"}
    assert report["scratch_database"] not in pg_databases(pg_server_url)
    assert scalar(pg_url, "SELECT count(*) FROM parts") == 0  # the synthetic rows stayed there


def test_sqlite_rehearsal_from_the_latest_backup(
    copy_scenario: Any, run_cli: Any, sqlite_url: str
) -> None:
    project = copy_scenario("state_rehearse")
    cli = cli_for(run_cli, project, sqlite_url)
    assert cli("upgrade", I1).exit_code == 0
    execute(sqlite_url, ["INSERT INTO items (qty) VALUES (1), (2), (3)"])
    backup = cli("backup", "--format", "json")
    assert backup.exit_code == 0, backup
    backup_id = json.loads(backup.stdout)["id"]

    result = cli("rehearse", "--format", "json")
    assert result.exit_code == 0, result
    report = json.loads(result.stdout)
    assert report["source"] == f"backup {backup_id}"
    widen = report["steps"][0]
    assert (widen["direction"], widen["revision"]) == ("upgrade", I2)
    assert widen["rewritten"] == ["items"]  # batch mode recreated the table
    assert widen["rows_touched"]["(all tables)"] >= 3
    assert len(report["steps"]) == 6
    assert make_url(sqlite_url).database is not None
    assert scalar(sqlite_url, "SELECT version_num FROM alembic_version") == I1
