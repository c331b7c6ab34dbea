"""Reliability of the runner on a real PostgreSQL: concurrent runners, runners killed with
SIGKILL, a long reader holding a lock, a second runner waiting for the migration lock."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from runner_helpers import (
    ALL,
    execute,
    journal_runs,
    make_project,
    query,
    schema_revision,
    versions,
    wait_for_lock_request,
    wait_until,
)
from sqlalchemy.engine import make_url

from abmigrate.db.lock import PG_LOCK_KEY


def _libpq(url: str) -> str:
    parsed = make_url(url)
    return f"host={parsed.host} port={parsed.port or 5432} user={parsed.username} dbname={parsed.database}"


def _spawn(
    root: Path, url: str, *args: str, extra: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "DATABASE_URL": url, **(extra or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "abmigrate", *args],
        cwd=root,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _advisory_lock_free(url: str) -> bool:
    rows = query(
        url,
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
        f" AND classid = {PG_LOCK_KEY[0]} AND objid = {PG_LOCK_KEY[1]}"
        # This test's database only: other databases on the server have their own runs.
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    return rows == [(0,)]


def test_eight_concurrent_runners_apply_each_revision_once(copy_scenario, pg_url):
    root = make_project(copy_scenario)
    runners = [
        _spawn(root, pg_url, "upgrade", "--format", "json", extra={"RUNNER_SLEEP": "0.2"})
        for _ in range(8)
    ]
    outputs = [runner.communicate(timeout=180) for runner in runners]
    codes = [runner.returncode for runner in runners]
    assert codes == [0] * 8, outputs
    applied = [json.loads(stdout)["applied"] for stdout, _ in outputs]
    assert sorted(len(steps) for steps in applied) == [0] * 7 + [5]
    assert versions(pg_url) == ["r5"]
    assert schema_revision(pg_url) == "r5"
    runs = journal_runs(pg_url)
    assert len(runs) == 1
    assert [step["revision"] for step in runs[0]["applied"]] == ALL
    # The runners have exited; their sessions end on the server a moment later.
    wait_until(lambda: _advisory_lock_free(pg_url), "the runners' lock to go")


def test_sigkill_at_random_points_leaves_a_well_defined_revision(copy_scenario, pg_url):
    root = make_project(copy_scenario)
    # Every revision transactional: r4's CREATE INDEX CONCURRENTLY commits on its own (an
    # autocommit block), so a kill after it and before the version row is a known, resumable
    # in-between state, not what this test is about.
    script = root / "versions" / "r4_index_orders_item_id.py"
    script.write_text(
        script.read_text().replace(
            'ops.create_index_concurrently("ix_orders_item_id", "orders", ["item_id"])',
            'op.create_index("ix_orders_item_id", "orders", ["item_id"])',
        )
    )
    rng = random.Random(20261125)
    seen = set()
    for _trial in range(7):
        execute(pg_url, "DROP SCHEMA public CASCADE", "CREATE SCHEMA public")
        runner = _spawn(root, pg_url, "upgrade", extra={"RUNNER_SLEEP": "0.3"})
        # Kill somewhere between the first revision's start and the end of the chain
        # (5 revisions of >= 0.3 s each), whatever the start-up time of this machine.
        assert runner.stderr is not None
        for line in runner.stderr:
            if line.startswith("→ upgrade"):
                break
        time.sleep(rng.uniform(0.0, 1.8))
        runner.send_signal(signal.SIGKILL)
        runner.communicate(timeout=30)
        # The version table and the schema always agree: no half-applied revision.
        recorded = versions(pg_url)
        assert len(recorded) <= 1
        expected = recorded[0] if recorded else "base"
        assert schema_revision(pg_url) == expected, (recorded, _trial)
        seen.add(expected)
        # The killed runner's session (and its advisory lock) died with it.
        wait_until(lambda: _advisory_lock_free(pg_url), "the killed runner's lock to go")
        follow = _spawn(root, pg_url, "upgrade", "--lock-wait", "10s")
        out, err = follow.communicate(timeout=120)
        assert follow.returncode == 0, (out, err)
        assert versions(pg_url) == ["r5"]
        assert schema_revision(pg_url) == "r5"
    # The kills landed at different points of the chain.
    assert len(seen) >= 2, seen


def test_second_runner_reports_the_lock_holder_and_gives_up(copy_scenario, run_cli, pg_url):
    root = make_project(copy_scenario)
    with psycopg.connect(_libpq(pg_url), autocommit=True) as holder:
        holder.execute("SET application_name = 'abmigrate lock alice@build-7 pid 4242'")
        holder.execute("SELECT pg_advisory_lock(%s, %s)", PG_LOCK_KEY)
        started = time.monotonic()
        result = run_cli("upgrade", "--lock-wait", "1s", cwd=root, env={"DATABASE_URL": pg_url})
        waited = time.monotonic() - started
    assert result.exit_code == 1, result
    assert "another runner holds the migration lock" in result.stderr
    assert "pid 4242" in result.stderr and "build-7" in result.stderr and "alice" in result.stderr
    assert waited < 30
    assert versions(pg_url) == []


def test_long_reader_migration_retries_and_writers_are_not_stalled(copy_scenario, pg_url):
    root = make_project(
        copy_scenario,
        {"hot": {"lock_timeout": "300ms", "lock_retries": 20, "lock_wait": "500ms"}},
    )
    first = _spawn(root, pg_url, "upgrade", "r2")
    first.communicate(timeout=60)
    assert first.returncode == 0
    execute(pg_url, "INSERT INTO items (id, name) SELECT g, 'n' FROM generate_series(1, 100) g")

    stop = threading.Event()
    latencies: list[float] = []

    def writer() -> None:
        with psycopg.connect(_libpq(pg_url), autocommit=True) as connection:
            while not stop.is_set():
                began = time.monotonic()
                connection.execute("UPDATE items SET name = 'w' WHERE id = 1")
                latencies.append(time.monotonic() - began)
                time.sleep(0.01)

    threads = [threading.Thread(target=writer) for _ in range(2)]
    with psycopg.connect(_libpq(pg_url)) as reader:
        reader.execute("SELECT count(*) FROM items")  # holds ACCESS SHARE until commit
        for thread in threads:
            thread.start()
        migration = _spawn(root, pg_url, "--env", "hot", "upgrade", "r3")
        # Polled, not guessed: on a loaded machine the process may take seconds to reach
        # its ALTER. From then on the reader keeps its lock for 3 s (several lock timeouts).
        wait_for_lock_request(pg_url, "items")
        time.sleep(3)
        reader.rollback()
    out, err = migration.communicate(timeout=120)
    stop.set()
    for thread in threads:
        thread.join()
    assert migration.returncode == 0, (out, err)
    assert "lock timeout (300ms) on attempt 1" in err
    assert "SELECT count(*) FROM items" in err  # the blocker is named, with its query
    assert versions(pg_url) == ["r3"]
    # The reader held its lock for 3 s after the ALTER queued; writers waited at most about
    # one lock_timeout.
    assert max(latencies) < 1.5, max(latencies)


@pytest.mark.parametrize("backend", ["mariadb_url", "sqlite_url"])
def test_concurrent_runners_other_dialects(copy_scenario, request, backend):
    url = request.getfixturevalue(backend)
    root = make_project(copy_scenario)
    runners = [_spawn(root, url, "upgrade", extra={"RUNNER_SLEEP": "0.1"}) for _ in range(4)]
    outputs = [runner.communicate(timeout=180) for runner in runners]
    assert [runner.returncode for runner in runners] == [0] * 4, outputs
    assert versions(url) == ["r5"]
    assert len(journal_runs(url)) == 1


def test_second_runner_waits_on_mariadb_get_lock(copy_scenario, run_cli, mariadb_url):
    import pymysql

    root = make_project(copy_scenario)
    parsed = make_url(mariadb_url)
    holder = pymysql.connect(
        host=parsed.host, port=parsed.port or 3306, user=parsed.username, database=parsed.database
    )
    try:
        with holder.cursor() as cursor:
            cursor.execute("SELECT GET_LOCK(%s, 0)", (f"abmigrate:{parsed.database}",))
            cursor.execute("SELECT CONNECTION_ID()")
            (connection_id,) = cursor.fetchone()
        result = run_cli(
            "upgrade", "--lock-wait", "1s", cwd=root, env={"DATABASE_URL": mariadb_url}
        )
    finally:
        holder.close()
    assert result.exit_code == 1, result
    assert f"pid connection {connection_id}" in result.stderr
    assert versions(mariadb_url) == []
    # The lock died with its session: the next runner goes through.
    done = run_cli("upgrade", cwd=root, env={"DATABASE_URL": mariadb_url})
    assert done.exit_code == 0, done


def test_second_runner_waits_on_the_sqlite_lock_file(
    copy_scenario, run_cli, run_cli_process, sqlite_url
):
    import fcntl

    root = make_project(copy_scenario)
    lock_path = Path(sqlite_url.removeprefix("sqlite:///") + ".abmigrate-lock")
    with lock_path.open("w") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        handle.write(json.dumps({"pid": 777, "host": "ci-3", "user": "bob", "since": "earlier"}))
        handle.flush()
        # flock between two processes, as between two runners.
        result = run_cli_process(
            "upgrade", "--lock-wait", "1s", cwd=root, env={"DATABASE_URL": sqlite_url}
        )
    assert result.exit_code == 1, result
    assert "pid 777, host ci-3, user bob" in result.stderr
    done = run_cli("upgrade", cwd=root, env={"DATABASE_URL": sqlite_url})
    assert done.exit_code == 0, done
