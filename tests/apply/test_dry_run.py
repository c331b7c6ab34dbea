"""``upgrade/downgrade --dry-run``: the revisions really run (so a failing one fails), are
verified, and nothing is kept: a rolled-back transaction on PostgreSQL and SQLite, a scratch
copy on MariaDB."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path

import psycopg
from runner_helpers import (
    PRODUCTION,
    execute,
    journal_runs,
    make_project,
    query,
    versions,
    wait_for_lock_request,
)
from sqlalchemy.engine import make_url

REPO_ROOT = Path(__file__).resolve().parents[2]


def _local_log(root: Path) -> list[dict[str, object]]:
    path = root / ".abmigrate" / "journal.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def _columns(url: str, table: str) -> set[str]:
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return {column["name"] for column in sa.inspect(connection).get_columns(table)}
    finally:
        engine.dispose()


def test_postgres_dry_run_applies_verifies_and_rolls_back(copy_scenario, run_cli, pg_url):
    root = make_project(copy_scenario)
    env = {"DATABASE_URL": pg_url}
    assert run_cli("upgrade", "r2", cwd=root, env=env).exit_code == 0
    execute(pg_url, "INSERT INTO items (id, name) VALUES (1, 'bolt')")

    result = run_cli("upgrade", "--dry-run", "--format", "json", cwd=root, env=env)
    assert result.exit_code == 0, result
    record = json.loads(result.stdout)
    assert record["dry_run"] is True
    assert "rolled back" in record["dry_run_method"]
    assert [step["revision"] for step in record["applied"]] == ["r3", "r4", "r5"]
    assert record["to_revisions"] == ["r5"]  # what the transaction held before the rollback
    assert record["verification"]["ok"] is True
    assert record["verification"]["current"] == ["r5"]
    # r4 builds its index CONCURRENTLY, which cannot run in the dry run's transaction.
    [skipped] = record["skipped"]
    assert skipped["revision"] == "r4"
    assert skipped["sql"].startswith("CREATE INDEX CONCURRENTLY ix_orders_item_id")
    assert "ALTER TABLE items ADD COLUMN price" in result.stderr  # the statements really ran

    # Nothing was kept: revision, schema, data, journal table.
    assert versions(pg_url) == ["r2"]
    assert "price" not in _columns(pg_url, "items")
    assert query(pg_url, "SELECT to_regclass('notes') IS NULL") == [(True,)]
    assert query(pg_url, "SELECT name FROM items") == [("bolt",)]
    assert len(journal_runs(pg_url)) == 1  # only the real `upgrade r2`
    dry = [entry for entry in _local_log(root) if entry.get("event") == "dry_run"]
    assert [entry["outcome"] for entry in dry] == ["dry run succeeded"]

    human = run_cli("upgrade", "--dry-run", cwd=root, env=env)
    assert human.exit_code == 0, human
    assert "was undone" in human.stdout and "stays at r2" in human.stdout
    assert "not run in the dry run (cannot run inside a transaction): r4" in human.stdout


def test_postgres_dry_run_failure_changes_nothing(copy_scenario, run_cli, pg_url):
    url = pg_url.replace("postgres@", "postgres:Sup3rS3cret@")
    root = make_project(copy_scenario, {"production": PRODUCTION})
    env = {"DATABASE_URL": url, "RUNNER_FAIL": "r5"}
    assert run_cli("upgrade", "r2", cwd=root, env={"DATABASE_URL": pg_url}).exit_code == 0

    # No --yes: a dry run changes nothing, so it asks for no confirmation.
    result = run_cli("--env", "production", "upgrade", "--dry-run", cwd=root, env=env)
    assert result.exit_code == 1, result
    assert "dry run: upgrade of revision r5 (create notes) failed" in result.stderr
    assert "simulated failure in r5" in result.stderr
    assert "nothing was changed" in result.stderr
    assert "still records r2" in result.stderr
    assert "Traceback" not in result.stderr
    # r3 and r4 ran before r5 failed: all of it was rolled back.
    assert versions(pg_url) == ["r2"]
    assert "price" not in _columns(pg_url, "items")
    assert not (root / "incidents").exists()  # nothing happened to the database
    log = (root / ".abmigrate" / "journal.jsonl").read_text()
    assert "Sup3rS3cret" not in log and "Sup3rS3cret" not in result.stderr
    [entry] = [e for e in _local_log(root) if e.get("event") == "dry_run"]
    assert entry["outcome"] == "dry run failed"
    assert "simulated failure in r5" in str(entry["error"])


def test_postgres_dry_run_retries_a_lock_timeout_inside_its_transaction(
    copy_scenario, run_cli, pg_url
):
    root = make_project(
        copy_scenario,
        {"hot": {"lock_timeout": "200ms", "lock_retries": 20, "lock_wait": "200ms"}},
    )
    env = {"DATABASE_URL": pg_url}
    assert run_cli("upgrade", "r2", cwd=root, env=env).exit_code == 0
    parsed = make_url(pg_url)
    dsn = f"host={parsed.host} port={parsed.port or 5432} user={parsed.username} dbname={parsed.database}"
    failures: list[BaseException] = []

    with psycopg.connect(dsn) as reader:
        reader.execute("SELECT count(*) FROM items")  # ACCESS SHARE until the rollback below

        def release() -> None:
            # Held until r3's ALTER queues behind the reader, then past its 200ms lock timeout.
            try:
                wait_for_lock_request(pg_url, "items")
                time.sleep(1)
            except BaseException as exc:
                failures.append(exc)
            finally:
                reader.rollback()

        releaser = threading.Thread(target=release)
        releaser.start()
        try:
            result = run_cli("--env", "hot", "upgrade", "--dry-run", cwd=root, env=env)
        finally:
            releaser.join()
    assert not failures, failures
    assert result.exit_code == 0, result
    err = result.stderr
    # r3 timed out on its lock, rolled back to its savepoint and succeeded on a later try.
    assert "lock timeout (200ms) on attempt 1" in err
    assert "SELECT count(*) FROM items" in err
    assert "✓ upgrade r3" in err
    assert versions(pg_url) == ["r2"]
    assert "price" not in _columns(pg_url, "items")


def test_sqlite_dry_run_keeps_the_file_as_it_was(copy_scenario, run_cli, sqlite_url):
    root = make_project(copy_scenario)
    env = {"DATABASE_URL": sqlite_url}
    path = Path(make_url(sqlite_url).database or "")

    missing = run_cli("upgrade", "--dry-run", cwd=root, env=env)
    assert missing.exit_code == 0, missing
    assert "scratch copy" in missing.stdout
    assert not path.exists()  # a dry run never creates the database
    failed = run_cli("upgrade", "--dry-run", cwd=root, env={**env, "RUNNER_FAIL": "r3"})
    assert failed.exit_code == 1, failed
    # r1 and r2 reached the empty copy before r3 failed; the database records nothing.
    assert "the database still records no revision." in failed.stderr
    assert not path.exists()

    assert run_cli("upgrade", "r2", cwd=root, env=env).exit_code == 0
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    result = run_cli("upgrade", "--dry-run", "--format", "json", cwd=root, env=env)
    assert result.exit_code == 0, result
    record = json.loads(result.stdout)
    assert "rolled back" in record["dry_run_method"]
    assert record["verification"]["current"] == ["r5"]
    assert record["skipped"] == []  # SQLite builds every index inside the transaction
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert versions(sqlite_url) == ["r2"]

    failing = run_cli("upgrade", "--dry-run", cwd=root, env={**env, "RUNNER_FAIL": "r3"})
    assert failing.exit_code == 1, failing
    assert "simulated failure in r3" in failing.stderr
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_mariadb_dry_run_uses_a_scratch_copy(copy_scenario, run_cli, mariadb_url):
    root = make_project(copy_scenario)
    env = {"DATABASE_URL": mariadb_url}
    assert run_cli("upgrade", "r2", cwd=root, env=env).exit_code == 0
    execute(mariadb_url, "INSERT INTO items (id, name) VALUES (1, 'bolt')")

    result = run_cli("upgrade", "--dry-run", "--format", "json", cwd=root, env=env)
    assert result.exit_code == 0, result
    record = json.loads(result.stdout)
    assert "scratch copy" in record["dry_run_method"]
    assert record["verification"]["current"] == ["r5"]
    assert versions(mariadb_url) == ["r2"]
    assert "price" not in _columns(mariadb_url, "items")

    # MariaDB commits DDL statement by statement: a revision failing half way in a real run
    # leaves part of it behind. In the dry run that part lands in the copy, not here.
    failing = run_cli("upgrade", "--dry-run", cwd=root, env={**env, "RUNNER_FAIL": "r3"})
    assert failing.exit_code == 1, failing
    assert "simulated failure in r3" in failing.stderr
    assert "scratch copy" in failing.stderr
    # The copy got r1..r2 of the chain before r3 failed there; the database itself did not.
    assert "the database still records r2." in failing.stderr
    assert "price" not in _columns(mariadb_url, "items")
    assert versions(mariadb_url) == ["r2"]


def test_guarded_dry_run_takes_no_backup(copy_scenario, run_cli, sqlite_url):
    guarded = {**PRODUCTION, "require_backup": True}
    root = make_project(copy_scenario, {"production": guarded})
    env = {"DATABASE_URL": sqlite_url}
    assert run_cli("upgrade", "r2", cwd=root, env=env).exit_code == 0
    result = run_cli("--env", "production", "upgrade", "--dry-run", cwd=root, env=env)
    assert result.exit_code == 0, result
    assert "backing up" not in result.stderr
    assert not (root / "backups").exists()  # the policy's backup_dir: nothing written
    assert versions(sqlite_url) == ["r2"]


def test_abparts_dry_run_on_postgres_matches_the_models(run_cli, pg_url):
    result = run_cli("--url", pg_url, "upgrade", "--dry-run", "--format", "json", cwd=REPO_ROOT)
    assert result.exit_code == 0, result
    record = json.loads(result.stdout)
    verification = record["verification"]
    assert verification["ok"] is True
    assert verification["drift"] == []
    # The CONCURRENTLY index is the one thing a dry run cannot build, and it says so.
    assert [skipped["object"] for skipped in record["skipped"]] == [
        "ix_transactions_transaction_date"
    ]
    assert any("ix_transactions_transaction_date" in d for d in verification["drift_not_checked"])
    assert query(pg_url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]
