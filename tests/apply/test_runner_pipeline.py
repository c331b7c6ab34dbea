"""The guarded pipeline end to end through the real CLI: journal, gate, confirmation,
dry run, incident report, checksums, maintenance window, health check, data-loss estimate."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from runner_helpers import (
    ALL,
    PRODUCTION,
    execute,
    journal_runs,
    make_project,
    query,
    schema_revision,
    versions,
)


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def any_url(request: pytest.FixtureRequest) -> str:
    fixture = {"sqlite": "sqlite_url", "postgres": "pg_url", "mariadb": "mariadb_url"}
    return str(request.getfixturevalue(fixture[request.param]))


def test_upgrade_journals_and_status_shows_last_run(copy_scenario, run_cli, any_url):
    root = make_project(copy_scenario)
    env = {"DATABASE_URL": any_url}
    result = run_cli("upgrade", "--format", "json", cwd=root, env=env)
    assert result.exit_code == 0, result
    record = json.loads(result.stdout)
    assert [step["revision"] for step in record["applied"]] == ALL
    assert all(len(step["script_sha256"]) == 64 for step in record["applied"])
    assert versions(any_url) == ["r5"]
    assert schema_revision(any_url) == "r5"

    runs = journal_runs(any_url)
    assert len(runs) == 1
    assert runs[0]["outcome"] == "succeeded"
    assert runs[0]["actor"]["user"]
    assert runs[0]["versions"]["alembic"]
    local = (root / ".abmigrate" / "journal.jsonl").read_text().splitlines()
    assert [json.loads(line)["event"] for line in local] == ["start", "finish"]

    status = run_cli("status", "--format", "json", cwd=root, env=env)
    assert status.exit_code == 0, status
    last = json.loads(status.stdout)["last_run"]
    assert last["run_id"] == record["run_id"]
    assert last["outcome"] == "succeeded"

    shown = run_cli("journal", cwd=root, env=env)
    assert shown.exit_code == 0, shown
    # One row per run, named by the part of its id after the time (what `journal RUN` takes).
    assert record["run_id"].rpartition("-")[2] in shown.stdout

    again = run_cli("upgrade", cwd=root, env=env)
    assert again.exit_code == 0, again
    assert "nothing to do" in again.stdout
    assert len(journal_runs(any_url)) == 1  # a run with nothing to do records nothing


def test_production_needs_typed_confirmation_or_yes(copy_scenario, run_cli, sqlite_url):
    root = make_project(copy_scenario, {"production": PRODUCTION})
    env = {"DATABASE_URL": sqlite_url}
    refused = run_cli("--env", "production", "upgrade", cwd=root, env=env)
    assert refused.exit_code == 1, refused
    assert "requires confirmation" in refused.stderr
    assert versions(sqlite_url) == []

    wrong = run_cli("--env", "production", "upgrade", cwd=root, env=env, input="prod\n")
    # stdin is not a terminal here: the run must refuse rather than read it or hang.
    assert wrong.exit_code == 1, wrong

    done = run_cli("--env", "production", "upgrade", "--yes", cwd=root, env=env)
    assert done.exit_code == 0, done
    assert versions(sqlite_url) == ["r5"]


def test_dry_run_changes_nothing(copy_scenario, run_cli, pg_url):
    root = make_project(copy_scenario)
    env = {"DATABASE_URL": pg_url}
    result = run_cli("upgrade", "--dry-run", cwd=root, env=env)
    assert result.exit_code == 0, result
    assert "dry run" in result.stdout
    assert "r1" in result.stdout
    assert query(pg_url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]


def test_failure_mid_chain_on_postgres(copy_scenario, run_cli, pg_url):
    # A password the server ignores (trust auth) but that must never be written anywhere.
    url = pg_url.replace("postgres@", "postgres:Sup3rS3cret@")
    root = make_project(copy_scenario, {"production": PRODUCTION})
    env = {"DATABASE_URL": url, "RUNNER_FAIL": "r3"}
    result = run_cli("--env", "production", "upgrade", "--yes", cwd=root, env=env)
    assert result.exit_code == 1, result
    assert "simulated failure in r3" in result.stderr
    # Earlier revisions stay applied; the failed one was rolled back with its transaction.
    assert versions(pg_url) == ["r2"]
    assert schema_revision(pg_url) == "r2"

    incidents = list((root / "incidents").glob("*-production.md"))
    assert len(incidents) == 1
    report = incidents[0].read_text()
    assert "Failed revision: `r3`" in report
    assert "It records revision: **r2**" in report
    assert "rolled back" in report
    assert "upgrade head" in report and "downgrade base" in report
    assert "Backup" in report and "none was taken" in report
    assert str(incidents[0]) in result.stderr

    [run] = journal_runs(pg_url)
    assert run["outcome"] == "failed"
    assert run["in_flight"] == "r3"
    assert [step["revision"] for step in run["applied"]] == ["r1", "r2"]
    assert run["incident_path"] == str(incidents[0])
    journal_log = (root / ".abmigrate" / "journal.jsonl").read_text()
    for text in (report, journal_log, result.stdout, result.stderr, json.dumps(run)):
        assert "Sup3rS3cret" not in text

    resumed = run_cli(
        "--env", "production", "upgrade", "--yes", cwd=root, env={"DATABASE_URL": url}
    )
    assert resumed.exit_code == 0, resumed
    assert versions(pg_url) == ["r5"]


def test_mariadb_partial_revision_detected_by_status(copy_scenario, run_cli, mariadb_url):
    root = make_project(copy_scenario, {"production": PRODUCTION})
    env = {"DATABASE_URL": mariadb_url}
    failed = run_cli("upgrade", cwd=root, env={**env, "RUNNER_FAIL": "r3"})
    assert failed.exit_code == 1, failed
    # MariaDB committed r3's ADD COLUMN before the script raised: half applied.
    assert versions(mariadb_url) == ["r2"]
    assert schema_revision(mariadb_url) == "r3"

    status = run_cli("status", "--format", "json", cwd=root, env=env)
    assert status.exit_code == 0, status
    record = json.loads(status.stdout)
    assert record["last_run"]["in_flight"] == "r3"
    assert any("r3 may be partially applied" in w for w in record["warnings"]), record
    human = run_cli("status", cwd=root, env=env)
    assert "partially applied" in human.stdout

    refused = run_cli("--env", "production", "upgrade", "--yes", cwd=root, env=env)
    assert refused.exit_code == 1, refused
    assert "partially applied" in refused.stderr


def test_production_downgrade_estimates_data_loss_and_needs_override(
    copy_scenario, run_cli, pg_url
):
    root = make_project(copy_scenario, {"production": PRODUCTION})
    env = {"DATABASE_URL": pg_url}
    assert run_cli("upgrade", cwd=root, env=env).exit_code == 0
    execute(
        pg_url,
        "INSERT INTO items (id, name, price) VALUES (1, 'a', 10), (2, 'b', NULL), (3, 'c', 7)",
        "INSERT INTO orders (id, item_id, qty) VALUES (1, 1, 1)",
    )
    dry = run_cli("downgrade", "r2", "--dry-run", "--format", "json", cwd=root, env=env)
    assert dry.exit_code == 0, dry
    losses = {(d["table"], d["column"]): d["rows"] for d in json.loads(dry.stdout)["data_loss"]}
    # The downgrade SQL is shown before anything is decided.
    assert "ALTER TABLE items DROP COLUMN price" in dry.stderr
    assert "DROP TABLE notes" in dry.stderr
    assert losses == {("notes", None): 0, ("items", "price"): 2}

    refused = run_cli("--env", "production", "downgrade", "r2", "--yes", cwd=root, env=env)
    assert refused.exit_code == 1, refused
    assert "forbids destructive changes" in refused.stderr
    assert "items.price (2 non-null values)" in refused.stderr
    assert versions(pg_url) == ["r5"]

    # Development asks before destroying data too; without a terminal it refuses.
    unconfirmed = run_cli("downgrade", "r2", cwd=root, env=env)
    assert unconfirmed.exit_code == 1, unconfirmed

    done = run_cli(
        "--env",
        "production",
        "downgrade",
        "r2",
        "--yes",
        "--override",
        "rolling back release 41",
        cwd=root,
        env=env,
    )
    assert done.exit_code == 0, done
    assert versions(pg_url) == ["r2"]
    last = journal_runs(pg_url)[-1]
    assert last["direction"] == "downgrade"
    assert last["overrides"][0]["reason"] == "rolling back release 41"
    assert last["data_loss"]


def test_changed_script_warns_and_production_refuses_until_acknowledged(
    copy_scenario, run_cli, sqlite_url
):
    root = make_project(copy_scenario, {"production": PRODUCTION})
    env = {"DATABASE_URL": sqlite_url}
    assert run_cli("upgrade", "r3", cwd=root, env=env).exit_code == 0
    script = root / "versions" / "r2_create_orders.py"
    script.write_text(script.read_text() + "\n# edited after it was applied\n")

    status = run_cli("status", "--format", "json", cwd=root, env=env)
    assert any("r2's script changed" in w for w in json.loads(status.stdout)["warnings"])
    refused = run_cli("--env", "production", "upgrade", "--yes", cwd=root, env=env)
    assert refused.exit_code == 1, refused
    assert "r2's script changed" in refused.stderr

    ack = run_cli(
        "journal", "--acknowledge-checksums", "--reason", "comment only", cwd=root, env=env
    )
    assert ack.exit_code == 0, ack
    status = run_cli("status", "--format", "json", cwd=root, env=env)
    assert json.loads(status.stdout)["warnings"] == []
    done = run_cli("--env", "production", "upgrade", "--yes", cwd=root, env=env)
    assert done.exit_code == 0, done


def test_outside_maintenance_window_refused_unless_overridden(copy_scenario, run_cli, sqlite_url):
    from datetime import UTC, datetime, timedelta

    later = datetime.now(UTC) + timedelta(hours=3)
    window = f"{later:%H}:00-{later:%H}:30 UTC"
    root = make_project(copy_scenario, {"production": {**PRODUCTION, "maintenance_window": window}})
    env = {"DATABASE_URL": sqlite_url}
    refused = run_cli("--env", "production", "upgrade", "--yes", cwd=root, env=env)
    assert refused.exit_code == 1, refused
    assert "outside the maintenance window" in refused.stderr
    done = run_cli(
        "--env", "production", "upgrade", "--yes", "--override", "hotfix", cwd=root, env=env
    )
    assert done.exit_code == 0, done
    assert journal_runs(sqlite_url)[0]["overrides"][0]["gate"] == "maintenance_window"


def test_no_backup_refused_where_policy_requires_it(copy_scenario, run_cli, sqlite_url):
    root = make_project(copy_scenario, {"production": {**PRODUCTION, "require_backup": True}})
    env = {"DATABASE_URL": sqlite_url}
    assert run_cli("upgrade", "r1", cwd=root, env=env).exit_code == 0
    refused = run_cli("--env", "production", "upgrade", "--yes", "--no-backup", cwd=root, env=env)
    assert refused.exit_code == 1, refused
    assert "requires a backup" in refused.stderr
    assert versions(sqlite_url) == ["r1"]


@pytest.fixture
def health_server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/health" else 503)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_health_check_passes_and_failed_verification_writes_incident(
    copy_scenario, run_cli, sqlite_url, health_server
):
    root = make_project(
        copy_scenario,
        {
            "healthy": {"health_url": f"{health_server}/health", "health_sql": "SELECT 1"},
            "sick": {"health_url": f"{health_server}/broken"},
        },
    )
    env = {"DATABASE_URL": sqlite_url}
    ok = run_cli("--env", "healthy", "upgrade", "r2", "--format", "json", cwd=root, env=env)
    assert ok.exit_code == 0, ok
    checks = json.loads(ok.stdout)["verification"]["health"]["checks"]
    assert [c["ok"] for c in checks] == [True, True]

    sick = run_cli("--env", "sick", "upgrade", cwd=root, env=env)
    assert sick.exit_code == 1, sick
    assert "verification failed" in sick.stderr
    assert "HTTP 503" in sick.stderr
    report = next((root / "incidents").glob("*-sick.md")).read_text()
    assert "downgrade r2" in report


def test_data_loss_on_sqlite_batch_rebuild(copy_scenario, run_cli, sqlite_url):
    root = make_project(copy_scenario)
    env = {"DATABASE_URL": sqlite_url}
    assert run_cli("upgrade", cwd=root, env=env).exit_code == 0
    execute(sqlite_url, "INSERT INTO notes (id, body) VALUES (1, 'x'), (2, 'y')")
    result = run_cli("downgrade", "r4", "--yes", "--format", "json", cwd=root, env=env)
    assert result.exit_code == 0, result
    assert json.loads(result.stdout)["data_loss"][0]["rows"] == 2
    assert schema_revision(sqlite_url) == "r4"


def test_override_needs_a_reason(copy_scenario, run_cli, sqlite_url, tmp_path: Path):
    root = make_project(copy_scenario)
    result = run_cli("upgrade", "--override", " ", cwd=root, env={"DATABASE_URL": sqlite_url})
    assert result.exit_code == 1, result
    assert "needs a reason" in result.stderr


def test_production_refuses_lint_errors_unless_overridden(copy_scenario, run_cli, pg_url):
    # small_table_rows = 0: the finding on the existing (empty) orders table is not judged
    # by its size (tests/lint/test_judge.py covers the judging)
    root = make_project(copy_scenario, {"production": {**PRODUCTION, "small_table_rows": 0}})
    script = root / "versions" / "r4_index_orders_item_id.py"
    script.write_text(
        script.read_text().replace(
            'ops.create_index_concurrently("ix_orders_item_id", "orders", ["item_id"])',
            'op.create_index("ix_orders_item_id", "orders", ["item_id"])',
        )
    )
    env = {"DATABASE_URL": pg_url}
    assert run_cli("upgrade", "r3", cwd=root, env=env).exit_code == 0
    refused = run_cli("--env", "production", "upgrade", "--yes", cwd=root, env=env)
    assert refused.exit_code == 1, refused
    assert "r4 AM101" in refused.stderr
    assert versions(pg_url) == ["r3"]
    done = run_cli(
        "--env", "production", "upgrade", "--yes", "--override", "empty table", cwd=root, env=env
    )
    assert done.exit_code == 0, done
    [_, run] = journal_runs(pg_url)  # the development run to r3, then this one
    assert [o["gate"] for o in run["overrides"]] == ["lint"]
    assert run["overrides"][0]["reason"] == "empty table"


def test_statement_timeout_reaches_env_py_own_engine(copy_scenario, run_cli, pg_url):
    # runner_chain's env.py builds its own engine: the timeout must reach it anyway.
    root = make_project(copy_scenario, {"strict": {"statement_timeout": "500ms"}})
    script = root / "versions" / "r2_create_orders.py"
    script.write_text(
        script.read_text().replace(
            "def upgrade() -> None:\n",
            'def upgrade() -> None:\n    op.execute("SELECT pg_sleep(3)")\n',
        )
    )
    env = {"DATABASE_URL": pg_url}
    result = run_cli("--env", "strict", "upgrade", cwd=root, env=env)
    assert result.exit_code == 1, result
    assert "statement timeout" in result.stderr
    assert "statement_timeout is 0.5s" in result.stderr
    assert versions(pg_url) == ["r1"]
    assert schema_revision(pg_url) == "r1"
    assert list((root / "incidents").glob("*-strict.md"))
    # Without the policy the same revision simply takes its 3 seconds.
    assert run_cli("upgrade", cwd=root, env=env).exit_code == 0


def test_mariadb_lock_timeout_stops_a_migration_queued_behind_a_reader(
    copy_scenario, run_cli, mariadb_url
):
    import time

    import pymysql
    from sqlalchemy.engine import make_url

    root = make_project(copy_scenario, {"hot": {"lock_timeout": "1s"}})
    env = {"DATABASE_URL": mariadb_url}
    assert run_cli("upgrade", "r2", cwd=root, env=env).exit_code == 0
    parsed = make_url(mariadb_url)
    reader = pymysql.connect(
        host=parsed.host, port=parsed.port or 3306, user=parsed.username, database=parsed.database
    )
    try:
        with reader.cursor() as cursor:  # an open transaction holds a metadata lock on items
            cursor.execute("START TRANSACTION")
            cursor.execute("SELECT count(*) FROM items")
        started = time.monotonic()
        result = run_cli("--env", "hot", "upgrade", "r3", cwd=root, env=env)
        took = time.monotonic() - started
    finally:
        reader.close()
    assert result.exit_code == 1, result
    assert "Lock wait timeout exceeded" in result.stderr
    assert took < 30  # not stuck behind the reader
    assert versions(mariadb_url) == ["r2"]
